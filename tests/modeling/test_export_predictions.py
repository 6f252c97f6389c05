"""Item exports carry each item's latest prediction (added by modeling through webapp.extensions)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from labeling.services.exports import export_rows
from modeling.models import ModelVersion, Prediction
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


def _predict(version, item, label, confidence):
    return Prediction.objects.create(
        model_version=version,
        item=item,
        label=label,
        probs=[confidence],
        confidence=confidence,
        margin=0.1,
        entropy=0.5,
    )


@pytest.fixture
def scored(project, owner):
    negative, positive = project.labels.get(name="negative"), project.labels.get(name="positive")
    old = ModelVersion.objects.create(project=project, number=1, base_checkpoint="x", status="candidate")
    new = ModelVersion.objects.create(project=project, number=2, base_checkpoint="x", status="candidate")
    both, only_old, none = (ItemFactory(project=project) for _ in range(3))
    _predict(old, both, negative, 0.6)
    _predict(new, both, positive, 0.9)
    _predict(old, only_old, negative, 0.7)
    return both, only_old, none


def test_export_rows_carry_the_newest_versions_prediction(project, scored):
    both, only_old, none = scored
    rows = {row["id"]: row for row in export_rows(project=project)}
    assert (rows[both.pk]["prediction"], rows[both.pk]["prediction_score"], rows[both.pk]["prediction_version"]) == (
        "positive",
        0.9,
        2,
    )
    assert (rows[only_old.pk]["prediction"], rows[only_old.pk]["prediction_version"]) == ("negative", 1)
    assert (rows[none.pk]["prediction"], rows[none.pk]["prediction_score"]) == (None, None)


def test_csv_and_jsonl_downloads_include_the_prediction_columns(project, scored, client_for, owner):
    both = scored[0]
    body = b"".join(client_for(owner).get(f"/projects/{project.slug}/export/csv/").streaming_content).decode()
    header, *rows = list(csv.reader(io.StringIO(body)))
    assert header[-3:] == ["prediction", "prediction_score", "prediction_version"]
    by_id = {row[0]: row for row in rows}
    assert by_id[str(both.pk)][-3:] == ["positive", "0.9", "2"]
    body = b"".join(client_for(owner).get(f"/projects/{project.slug}/export/jsonl/").streaming_content).decode()
    first = next(json.loads(line) for line in body.splitlines() if json.loads(line)["id"] == both.pk)
    assert first["prediction"] == "positive"

"""Pool scoring with a trained version's artifact: what is scored, what is stored, what is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labeling.models import Item
from modeling.ml.artifacts import manifest_checksum
from modeling.models import ModelVersion, Prediction
from modeling.services import scoring
from modeling.services.scoring import embedding_from_bytes
from modeling.services.training import training_start
from modeling.tasks import score_pool, train_model_version
from tests.modeling.conftest import LABELS, TINY_OVERRIDES
from webapp.models import Job


@pytest.fixture
def trained(roberta_project, owner, artifact_root) -> tuple[ModelVersion, Job]:
    """A candidate version of tiny RoBERTa and its queued pool-scoring job."""
    version = training_start(project=roberta_project, user=owner, overrides=TINY_OVERRIDES)
    train_model_version(str(version.job_id))
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.CANDIDATE, version.error
    return version, Job.objects.get(kind=Job.Kind.SCORE)


def _run(job: Job) -> Job:
    score_pool(str(job.pk))
    job.refresh_from_db()
    return job


@pytest.mark.django_db
def test_every_unlabeled_and_queued_pool_item_gets_one_calibrated_prediction(trained, monkeypatch):
    version, job = trained
    monkeypatch.setattr(scoring, "CHUNK_SIZE", 7)  # several keyset chunks over the 30 pool items
    job = _run(job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    expected = set(
        Item.objects.filter(split=Item.Split.POOL, status__in=(Item.Status.UNLABELED, Item.Status.QUEUED)).values_list(
            "id", flat=True
        )
    )
    predictions = list(Prediction.objects.filter(model_version=version).select_related("label"))
    assert len(expected) == 30 and {p.item_id for p in predictions} == expected
    assert job.result == {"model_version": 1, "scored": 30, "replaced": 0, "stop_set": 30}
    assert job.progress == 1.0
    for p in predictions:
        probs = np.array(p.probs)
        assert probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert p.label.name == LABELS[int(probs.argmax())] and p.confidence == pytest.approx(probs.max(), abs=1e-5)
        assert p.margin == pytest.approx(abs(probs[0] - probs[1]), abs=1e-5) and p.entropy >= 0
        embedding = embedding_from_bytes(bytes(p.embedding))
        assert embedding.shape == (32,) and np.isfinite(embedding).all() and np.abs(embedding).sum() > 0


@pytest.mark.django_db
def test_a_rerun_replaces_the_versions_earlier_predictions(trained):
    version, job = trained
    _run(job)
    first_ids = set(Prediction.objects.filter(model_version=version).values_list("id", flat=True))
    # Six pool items get labeled between the runs (the first run queued the whole small pool).
    labeled = (
        Item.objects.filter(split=Item.Split.POOL, status=Item.Status.QUEUED)
        .order_by("id")
        .values_list("id", flat=True)[:6]
    )
    Item.objects.filter(pk__in=list(labeled)).update(status=Item.Status.LABELED)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)  # redelivered after a crash
    job = _run(job)
    rows = Prediction.objects.filter(model_version=version)
    assert job.result["replaced"] == 30 and job.result["scored"] == 24 and rows.count() == 24
    assert first_ids.isdisjoint(rows.values_list("id", flat=True))


@pytest.mark.django_db
def test_a_tampered_artifact_is_refused_with_an_actionable_message(trained):
    version, job = trained
    manifest_path = Path(version.artifact_path) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["temperature"] = 0.05  # sharpen every prediction, then hide the edit from the checksum
    manifest["checksum"] = manifest_checksum(manifest)
    manifest_path.write_text(json.dumps(manifest))
    job = _run(job)
    assert job.status == Job.Status.FAILED
    assert job.error.startswith("The artifact of version 1 failed verification and was not used:")
    assert "sha256 differs" in job.error and "train a new version" in job.error
    assert job.result["code"] == "artifact_invalid"
    assert not Prediction.objects.exists()


@pytest.mark.django_db
def test_modified_weights_are_refused(trained):
    version, job = trained
    weights = Path(version.artifact_path) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\x00" * 8)
    job = _run(job)
    assert job.status == Job.Status.FAILED and "model.safetensors does not match its sha256" in job.error


@pytest.mark.django_db
def test_a_version_that_never_trained_cannot_score(roberta_project, owner):
    version = training_start(project=roberta_project, user=owner, overrides=TINY_OVERRIDES)
    job = scoring.pool_score_enqueue(version=version, user=owner)
    job = _run(job)
    assert job.status == Job.Status.FAILED and "only a trained version can score" in job.error


@pytest.mark.django_db
def test_the_gold_items_are_embedded_for_the_default_strategy_only_while_they_are_few(trained, monkeypatch):
    from modeling.ml.artifacts import load_artifact
    from modeling.ml.sampling import margin_diversity

    version, _ = trained
    classifier = load_artifact(version.artifact_path, expected_manifest_sha256=version.manifest_sha256)
    gold = Item.objects.filter(project=version.project, gold_label__isnull=False).exclude(split=Item.Split.EVAL)
    n = gold.count()
    assert n > 0
    # The pool is English with every third item Spanish: 2 classes x 2 languages = 4 cells.
    cells = len(classifier.labels) * 2
    monkeypatch.setattr(margin_diversity, "LOW_BUDGET_LABELS_PER_CELL", n // cells + 1)  # limit just above n
    scored = scoring._few_labeled_predictions(classifier, version)
    assert scored is not None and scored.embeddings is not None
    assert scored.embeddings.shape[0] == n and np.isfinite(scored.embeddings).all()
    assert scored.probabilities.shape == (n, len(classifier.labels))
    assert np.allclose(scored.probabilities.sum(axis=1), 1.0, atol=1e-5)
    # Counted for one language, the same threshold would already be past: the languages multiply it.
    assert not margin_diversity.is_low_budget(n, len(classifier.labels), 1)
    # With a lower threshold the same labels are enough: no embeddings, no extra forward pass.
    monkeypatch.setattr(margin_diversity, "LOW_BUDGET_LABELS_PER_CELL", max(1, n // cells))
    assert scoring._few_labeled_predictions(classifier, version) is None

"""The Quality page and the quality API: measured (from outcomes) beside estimated accuracy, slices, confusion."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from monitoring.models import OutcomeRollup
from monitoring.services.rollups import floor_hour, floor_minute, rollup_minutes
from tests.monitoring.traffic import log_row, save_logs

pytestmark = pytest.mark.django_db


def _figures(response) -> dict:
    html = response.content.decode()
    marker = '<script id="monitoring-figures" type="application/json">'
    start = html.index(marker) + len(marker)
    return json.loads(html[start : html.index("</script>", start)])


def _cell(project, hour, true, predicted, count, *, source="audit", version=1, language="en"):
    OutcomeRollup.objects.create(
        project=project,
        bucket_start=hour,
        version_number=version,
        language=language,
        source=source,
        true_label=true,
        predicted_label=predicted,
        count=count,
        confidence_sum=0.8 * count,
    )


@pytest.fixture
def labeled(project):
    now = timezone.now()
    hour = floor_hour(now) - timedelta(hours=2)
    _cell(project, hour, "positive", "positive", 40)
    _cell(project, hour, "negative", "positive", 10)
    _cell(project, hour, "negative", "negative", 30, language="ar", version=2)
    _cell(project, hour, "positive", "negative", 20, language="ar", version=2)
    _cell(project, hour, "neutral", "neutral", 7, source="feedback")
    at = floor_minute(now) - timedelta(minutes=30)
    save_logs(
        [log_row(project, at, confidence=0.9, text="sure of it") for _ in range(30)]
        + [log_row(project, at, confidence=0.6, language="ar", version=2, text="not so sure") for _ in range(10)]
        + [log_row(project, at, confidence=0.2, route="shadow") for _ in range(5)]
    )
    rollup_minutes(now=now)
    return now


def test_quality_api_measures_audit_accuracy_beside_the_estimate(api_client_for, reviewer, project, labeled):
    response = api_client_for(reviewer).get(reverse("api-monitoring-quality", kwargs={"slug": project.slug}))
    assert response.status_code == 200
    data = response.json()
    overall = data["overall"]
    assert (overall["n"], overall["accuracy"]) == (100, pytest.approx(0.7))
    assert overall["low"] < 0.7 < overall["high"]
    # Estimated: mean confidence of the 40 served predictions (shadow excluded): (30*0.9 + 10*0.6) / 40.
    assert overall["estimated"] == pytest.approx(33 / 40) and overall["served"] == 40
    assert overall["macro_f1"]["low"] < overall["macro_f1"]["value"] < overall["macro_f1"]["high"]
    languages = {s["key"]: s for s in data["by_language"]}
    assert languages["en"]["accuracy"] == pytest.approx(0.8) and languages["ar"]["accuracy"] == pytest.approx(0.6)
    assert languages["ar"]["estimated"] == pytest.approx(0.6)
    versions = {s["key"]: s for s in data["by_version"]}
    assert versions["2"]["n"] == 50
    classes = {c["label"]: c for c in data["classes"]}
    assert classes["positive"]["precision"] == pytest.approx(40 / 50)
    assert classes["positive"]["recall"] == pytest.approx(40 / 60)
    assert data["confusion"]["labels"] == ["negative", "neutral", "positive"]
    assert data["confusion"]["matrix"] == [[30, 0, 10], [0, 0, 0], [20, 0, 40]]
    lowest = data["lowest_confidence"]
    assert len(lowest) == 20 and lowest[0]["confidence"] == pytest.approx(0.6)  # shadow rows are not listed
    assert "calibrated" in data["estimate_assumptions"]


def test_quality_api_feedback_source_is_kept_apart(api_client_for, reviewer, project, labeled):
    response = api_client_for(reviewer).get(
        reverse("api-monitoring-quality", kwargs={"slug": project.slug}), {"source": "feedback"}
    )
    data = response.json()
    assert (data["overall"]["n"], data["overall"]["accuracy"]) == (7, 1.0)
    assert data["confusion"]["matrix"][2] == [20, 0, 40]  # the confusion matrix is always the audit sample's


def test_quality_api_refuses_bad_parameters(api_client_for, reviewer, project):
    url = reverse("api-monitoring-quality", kwargs={"slug": project.slug})
    for params in ({"source": "gut-feeling"}, {"range": "1y"}, {"from": "2026-13-01T00:00:00Z"}):
        response = api_client_for(reviewer).get(url, params)
        assert response.status_code == 400, params
        assert response.json()["error"]["message"]


def test_quality_page_draws_its_charts_and_lists_doubtful_predictions(client_for, reviewer, project, labeled):
    response = client_for(reviewer).get(reverse("monitoring:quality", kwargs={"slug": project.slug}), {"range": "24h"})
    assert response.status_code == 200
    figures = _figures(response)
    for name in ("accuracy", "languages", "versions", "classes", "confusion"):
        assert figures[name] is not None, name
    body = response.content.decode()
    assert 'id="measured-accuracy"><strong>0.700</strong>' in body
    assert "not so sure" in body
    assert "mean calibrated max-probability" in body


def test_quality_page_with_no_data_says_so(client_for, reviewer, project):
    response = client_for(reviewer).get(reverse("monitoring:quality", kwargs={"slug": project.slug}))
    assert response.status_code == 200
    body = response.content.decode()
    assert all(figure is None for figure in _figures(response).values())
    assert 'data-empty="accuracy"' in body and 'data-empty="confusion"' in body
    assert "No prediction served in the last hour." in body
    assert "No audit labels for predictions made in this time range yet" in body


def test_each_point_over_time_carries_its_n_and_both_intervals(api_client_for, reviewer, project, labeled):
    data = api_client_for(reviewer).get(reverse("api-monitoring-quality", kwargs={"slug": project.slug})).json()
    measured = [p for p in data["series"] if p["n"]]
    assert len(measured) == 1 and measured[0]["n"] == 100
    point = measured[0]
    assert point["low"] < point["accuracy"] < point["high"]
    assert point["macro_f1"]["low"] <= point["macro_f1"]["value"] <= point["macro_f1"]["high"]
    assert sum(p["served"] for p in data["series"]) == 40

"""The Service page and the traffic API: figures from the rollups, honest "no data", range validation."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from modeling.models import ModelServerStatus
from monitoring.models import RollupWatermark
from monitoring.services.rollups import floor_minute, rollup_minutes
from tests.factories import JobFactory
from tests.monitoring.traffic import error_row, log_row, save_logs

pytestmark = pytest.mark.django_db


def _figures(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="monitoring-figures" type="application/json">') + len(
        '<script id="monitoring-figures" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


@pytest.fixture
def traffic(project):
    """An hour of traffic: 10 production predictions a minute (fast), 2 canary (slow), some 503s."""
    now = timezone.now()
    start = floor_minute(now) - timedelta(minutes=30)
    rows = []
    for minute in range(20):
        at = start + timedelta(minutes=minute, seconds=5)
        rows += [log_row(project, at, latency_ms=40.0, label="positive") for _ in range(10)]
        rows += [log_row(project, at, version=2, route="canary", latency_ms=400.0, label="negative") for _ in range(2)]
    save_logs(rows)
    for minute in range(5):
        error_row(
            project,
            start + timedelta(minutes=minute),
            kind="overloaded",
            texts=6,
            version_number=1,
            route="production",
            language="en",
        )
    rollup_minutes(now=now)
    return {"predictions": 240, "failed": 30}


def test_service_page_draws_every_chart_from_the_rollups(client_for, reviewer, project, traffic):
    response = client_for(reviewer).get(reverse("monitoring:service", kwargs={"slug": project.slug}), {"range": "1h"})
    assert response.status_code == 200
    figures = _figures(response)
    for name in ("volume", "latency", "errors", "routes"):
        assert figures[name] is not None, name
    body = response.content.decode()
    assert 'id="total-predictions">240<' in body
    assert 'id="total-failed">30<' in body
    routes = figures["routes"]["data"][0]
    assert dict(zip(routes["x"], routes["y"], strict=True)) == {"canary": 40, "production": 200}
    assert "No model server reporting" in body
    assert 'data-figure="volume"' in body


def test_service_page_says_no_data_for_an_empty_range(client_for, reviewer, project):
    response = client_for(reviewer).get(reverse("monitoring:service", kwargs={"slug": project.slug}))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-empty="volume"' in body and 'data-empty="latency"' in body
    assert "No predictions and no failed requests in this time range." in body
    assert "The rollup job has never run" in body
    assert all(figure is None for figure in _figures(response).values())


def test_traffic_api_summary(api_client_for, reviewer, project, traffic):
    response = api_client_for(reviewer).get(
        reverse("api-monitoring-traffic", kwargs={"slug": project.slug}), {"range": "1h"}
    )
    assert response.status_code == 200
    totals = response.json()["totals"]
    assert totals["predictions"] == traffic["predictions"]
    assert totals["failed"] == traffic["failed"]
    assert totals["errors"] == {"overloaded": 30}
    assert totals["error_rate"] == pytest.approx(30 / 270)
    # 200 of 240 in (25, 50] ms, 40 in (300, 500] ms: p50 interpolates inside 25-50, p99 inside 300-500.
    assert 25 < totals["latency_ms"]["p50"] <= 50
    assert 300 < totals["latency_ms"]["p99"] <= 500
    assert totals["labels"] == {"negative": 40, "positive": 200}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"range": "2w"}, "range"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-11-20T10:00:00Z", "to": "2026-11-19T10:00:00Z"}, "from"),
    ],
)
def test_traffic_api_refuses_a_bad_range(api_client_for, reviewer, project, params, field):
    response = api_client_for(reviewer).get(reverse("api-monitoring-traffic", kwargs={"slug": project.slug}), params)
    assert response.status_code == 400
    assert field in response.json()["error"]["message"]


def test_service_page_refuses_a_bad_range_with_a_400_page(client_for, reviewer, project):
    response = client_for(reviewer).get(
        reverse("monitoring:service", kwargs={"slug": project.slug}), {"range": "forever"}
    )
    assert response.status_code == 400


def test_model_server_snapshot_and_job_health(client_for, reviewer, project):
    now = timezone.now()
    ModelServerStatus.objects.create(
        name="host:1",
        updated_at=now,
        stats={
            "models": {
                f"{project.pk}:production": {
                    "version": 3,
                    "batches": 4,
                    "texts": 20,
                    "queued_texts": 7,
                    "batch_size_counts": {"1": 1, "8": 3},
                },
                "999:production": {"version": 1, "batches": 1, "texts": 1},
            },
            "log": {"pending": 2, "dropped": 0},
        },
    )
    ModelServerStatus.objects.create(name="old:2", updated_at=now - timedelta(minutes=5), stats={})
    JobFactory(
        project=project, status="failed", finished_at=now - timedelta(minutes=5), error="Traceback\nValueError: boom"
    )
    JobFactory(project=project, status="running")
    RollupWatermark.objects.create(name="minute", done_until=now)
    response = client_for(reviewer).get(reverse("monitoring:service", kwargs={"slug": project.slug}))
    body = response.content.decode()
    assert "host:1" in body and "old:2" not in body
    assert "production v3" in body and "v1</td>" not in body
    assert _figures(response)["batches"] is not None
    assert "<strong>1</strong> running" in body and "<strong>1</strong> failed" in body
    assert "ValueError: boom" in body
    assert "stale" not in body


def test_a_new_fold_shows_new_traffic_at_once_though_results_are_cached(project):
    from monitoring.selectors.traffic import traffic as traffic_of
    from monitoring.timerange import parse_time_range

    now = timezone.now()
    at = floor_minute(now) - timedelta(minutes=10)
    save_logs([log_row(project, at) for _ in range(3)])
    rollup_minutes(now=now)
    window = parse_time_range({"range": "1h"}, now=now)
    assert traffic_of(project=project, time_range=window).totals.predictions == 3
    save_logs([log_row(project, at + timedelta(minutes=8)) for _ in range(2)])
    assert traffic_of(project=project, time_range=window).totals.predictions == 3  # same rollups: cached
    rollup_minutes(now=now, since=at)  # the fold moves its watermark: a new cache key
    assert traffic_of(project=project, time_range=window).totals.predictions == 5


def test_an_hour_grain_window_reads_folded_hours_and_the_newest_minutes_once_each(project):
    from monitoring.selectors.traffic import traffic as traffic_of
    from monitoring.services.rollups import rollup_hours
    from monitoring.timerange import parse_time_range

    now = timezone.now()
    old = floor_minute(now) - timedelta(hours=3)
    recent = floor_minute(now) - timedelta(minutes=2)
    save_logs([log_row(project, old) for _ in range(4)] + [log_row(project, recent) for _ in range(3)])
    rollup_minutes(now=now, since=old)
    rollup_hours(now=now)
    assert RollupWatermark.objects.get(name="hour").done_until <= recent  # the newest hour is not folded yet
    window = parse_time_range({"range": "7d"}, now=now)
    assert window.grain == "hour"
    assert traffic_of(project=project, time_range=window).totals.predictions == 7


def test_an_hour_grain_window_counts_its_partial_first_hour_to_the_minute(project):
    from monitoring.selectors.traffic import traffic as traffic_of
    from monitoring.services.rollups import rollup_hours
    from monitoring.timerange import parse_time_range

    now = timezone.now()
    start = floor_minute(now) - timedelta(days=3) + timedelta(minutes=1)
    start = start.replace(minute=30) if start.minute < 30 else start  # mid-hour: the first hour is partial
    before, inside, later = start - timedelta(minutes=20), start + timedelta(minutes=5), start + timedelta(hours=5)
    save_logs([log_row(project, before), log_row(project, inside), log_row(project, later)])
    rollup_minutes(now=now, since=before)
    rollup_hours(now=now)
    window = parse_time_range({"from": start.isoformat(), "to": now.isoformat()}, now=now)
    assert window.grain == "hour"
    assert traffic_of(project=project, time_range=window).totals.predictions == 2  # not the row before the start

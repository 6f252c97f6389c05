"""The monitoring Overview page and its API: every tile from the rollups and small tables, honest "no data",
the drift status without a version or reference, the accuracy's ground truth, range validation."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from modeling.models import Alias, ModelVersion, PredictionLog
from monitoring.models import Alert, DriftReference, DriftRun, OutcomeRollup, ServiceObjective
from monitoring.services.rollups import floor_hour, floor_minute, rollup_minutes
from tests.monitoring.traffic import error_row, log_row, save_logs

pytestmark = pytest.mark.django_db


def _figures(response) -> dict:
    html = response.content.decode()
    tag = '<script id="monitoring-figures" type="application/json">'
    start = html.index(tag) + len(tag)
    return json.loads(html[start : html.index("</script>", start)])


def _api(api_client_for, user, project, **params):
    return api_client_for(user).get(reverse("api-monitoring-overview", kwargs={"slug": project.slug}), params)


def _page(client_for, user, project, **params):
    return client_for(user).get(reverse("monitoring:overview", kwargs={"slug": project.slug}), params)


def _production(project, number: int = 3, *, reference: bool = True) -> ModelVersion:
    version = ModelVersion.objects.create(project=project, number=number, status="production", base_checkpoint="x")
    Alias.objects.create(project=project, name="production", version=version)
    if reference:
        DriftReference.objects.create(model_version=version, project=project, labels=["a"], arrays=b"", n_items=120)
    return version


def _outcomes(project, bucket, *, source: str, right: int, wrong: int) -> None:
    common = {"project": project, "bucket_start": bucket, "version_number": 3, "language": "en", "source": source}
    OutcomeRollup.objects.create(**common, true_label="positive", predicted_label="positive", count=right)
    OutcomeRollup.objects.create(**common, true_label="negative", predicted_label="positive", count=wrong)


@pytest.fixture
def monitored(project):
    """Twenty minutes of traffic (10 fast production and 2 slow canary predictions a minute, 30 failed texts),
    audited and feedback outcomes, drift runs, and alerts."""
    now = timezone.now()
    start = floor_minute(now) - timedelta(minutes=30)
    rows = []
    for minute in range(20):
        at = start + timedelta(minutes=minute, seconds=5)
        rows += [log_row(project, at, version=3, latency_ms=40.0) for _ in range(10)]
        rows += [log_row(project, at, version=4, route="canary", latency_ms=400.0, confidence=0.6) for _ in range(2)]
    save_logs(rows)
    for minute in range(5):
        error_row(project, start + timedelta(minutes=minute), texts=6, version_number=3, route="production")
    rollup_minutes(now=now)
    version = _production(project)
    hour = floor_hour(now) - timedelta(hours=1)
    _outcomes(project, hour, source="audit", right=8, wrong=2)
    _outcomes(project, hour, source="feedback", right=30, wrong=10)
    results = {
        "overall": {
            "prediction": {"p_value": 0.0004, "alert": True},
            "length": {"p_value": 0.41, "alert": False},
            "embedding_mmd": {"p_value": None, "alert": False},
        },
        "alerts": ["prediction"],
    }
    hourly = floor_hour(now)
    DriftRun.objects.create(
        project=project,
        version_number=version.number,
        window="hourly",
        window_start=hourly - timedelta(hours=2),
        window_end=hourly - timedelta(hours=1),
        n_current=500,
        results={"overall": {"prediction": {"p_value": 0.3, "alert": False}}, "alerts": []},
    )
    DriftRun.objects.create(
        project=project,
        version_number=version.number,
        window="hourly",
        window_start=hourly - timedelta(hours=1),
        window_end=hourly,
        n_current=640,
        results=results,
        drifted=True,
    )
    DriftRun.objects.create(
        project=project,
        version_number=version.number,
        window="on_demand",
        window_start=hourly - timedelta(hours=24),
        window_end=now,
        n_current=9000,
        results={"overall": {"prediction": {"p_value": 0.9, "alert": False}}, "alerts": []},
    )
    first = Alert.objects.create(
        project=project,
        kind="burn",
        severity="page",
        key="burn:availability:page:v3",
        title="Availability error budget burning fast on v3",
        started_at=now - timedelta(minutes=20),
    )
    second = Alert.objects.create(
        project=project,
        kind="drift",
        severity="ticket",
        key="drift:hourly:v3",
        title="Drift on v3",
        started_at=now - timedelta(minutes=5),
    )
    Alert.objects.create(
        project=project,
        kind="burn",
        severity="ticket",
        key="burn:latency:ticket:v3",
        title="Resolved one",
        state="resolved",
        started_at=now - timedelta(minutes=1),
        resolved_at=now,
    )
    return {"alerts": [second, first]}


def test_api_summarises_every_tile(api_client_for, reviewer, project, monitored):
    response = _api(api_client_for, reviewer, project, range="1h")
    assert response.status_code == 200
    data = response.json()
    traffic = data["traffic"]
    assert (traffic["predictions"], traffic["failed"]) == (240, 30)
    assert traffic["error_rate"] == pytest.approx(30 / 270)
    # 200 of 240 served predictions in the 25-50 ms bucket, 40 in 300-500 ms: p95 interpolates in 300-500.
    assert 300 < traffic["latency_ms"]["p95"] <= 500
    assert sum(p["predictions"] for p in traffic["series"]) == 240
    assert sum(p["failed"] for p in traffic["series"]) == 30

    quality = data["quality"]
    assert (quality["source"], quality["source_chosen"]) == ("audit", False)
    assert quality["overall"]["accuracy"] == pytest.approx(0.8) and quality["overall"]["n"] == 10
    assert quality["overall"]["low"] < 0.8 < quality["overall"]["high"]
    # Mean calibrated confidence of the served predictions: 200 at 0.9, 40 at 0.6.
    assert quality["overall"]["estimated"] == pytest.approx((200 * 0.9 + 40 * 0.6) / 240)

    drift = data["drift"]
    assert drift["version_number"] == 3 and drift["reference"]["n_items"] == 120
    hourly = drift["latest"]["hourly"]
    assert (hourly["drifted"], hourly["n_current"], hourly["alerts"]) == (True, 640, ["prediction"])
    assert hourly["tests"] == {
        "prediction": {"alert": True, "p_value": 0.0004},
        "embedding_mmd": {"alert": False, "p_value": None},
        "length": {"alert": False, "p_value": 0.41},
    }
    assert drift["latest"]["daily"] is None  # the on-demand run is an investigation, not a window
    assert drift["alerts_firing"] == 1

    slos = {s["slo"]: s for s in data["slo"]["slos"]}
    # Availability: 270 texts, 30 failed, 0.5% allowed. Latency: 240 served, the 40 canary ones over 300 ms.
    assert slos["availability"]["remaining"] == pytest.approx(1 - 30 / (0.005 * 270))
    assert slos["latency"]["remaining"] == pytest.approx(1 - 40 / (0.01 * 240))
    assert slos["latency"]["remaining_percent"] == pytest.approx(100 * (1 - 40 / 2.4))

    alerts = data["alerts"]
    assert alerts["firing"] == 2
    assert [a["key"] for a in alerts["newest"]] == [a.key for a in monitored["alerts"]]
    assert data["links"]["alerts"] == f"/projects/{project.slug}/monitoring/alerts/"


def test_accuracy_falls_back_to_feedback_when_nothing_was_audited_and_keeps_a_named_source(
    api_client_for, client_for, reviewer, project
):
    _outcomes(project, floor_hour(timezone.now()) - timedelta(hours=2), source="feedback", right=3, wrong=1)
    quality = _api(api_client_for, reviewer, project).json()["quality"]
    assert (quality["source"], quality["source_chosen"]) == ("feedback", False)
    assert quality["overall"]["accuracy"] == pytest.approx(0.75)
    assert 'id="source-fallback"' in _page(client_for, reviewer, project).content.decode()
    named = _api(api_client_for, reviewer, project, source="audit").json()["quality"]
    assert (named["source"], named["source_chosen"], named["overall"]["n"]) == ("audit", True, 0)


def test_page_draws_every_tile_and_links_to_each_detail_page(client_for, reviewer, project, monitored):
    response = _page(client_for, reviewer, project, range="6h")
    assert response.status_code == 200
    figures = _figures(response)
    for name in ("volume", "errors", "latency", "accuracy", "budget"):
        assert figures[name] is not None, name
    volume = figures["volume"]["data"]
    assert sum(sum(trace["y"]) for trace in volume) == 270  # served and failed texts, stacked
    budget = figures["budget"]["data"][0]
    assert budget["x"] == pytest.approx([100 * (1 - 30 / 1.35), 100 * (1 - 40 / 2.4)])
    body = response.content.decode()
    assert 'id="overview-predictions">240<' in body
    assert 'id="overview-error-rate">11.11%<' in body
    assert f'href="/projects/{project.slug}/monitoring/service/?range=6h"' in body
    assert f'href="/projects/{project.slug}/monitoring/drift/?range=6h"' in body
    assert f'href="/projects/{project.slug}/monitoring/alerts/?state=firing"' in body
    rows = {test: body[body.index(f'<tr data-test="{test}">') :].split("</tr>")[0] for test in ("prediction", "length")}
    assert (
        "label mix" in rows["prediction"]
        and "drift</strong>" in rows["prediction"]
        and "p&lt;0.001" in rows["prediction"]
    )
    assert ">ok <" in rows["length"] and "p=0.410" in rows["length"]
    assert rows["length"].rstrip().endswith('<span class="muted">–</span></td>')  # no daily run yet
    assert "not tested" in body[body.index('<tr data-test="embedding_mmd">') :].split("</tr>")[0]
    assert '<td class="num">99.5%</td>' in body  # the default availability objective
    assert 'data-alert="drift:hourly:v3"' in body and "Resolved one" not in body
    assert body.index('data-alert="drift:hourly:v3"') < body.index('data-alert="burn:availability:page:v3"')
    assert 'data-empty="' not in body.replace('data-empty="measured"', "")


def test_empty_project_says_no_data_everywhere(api_client_for, client_for, reviewer, project):
    data = _api(api_client_for, reviewer, project).json()
    assert data["traffic"]["predictions"] == 0 and data["traffic"]["series"] == []
    assert data["quality"]["overall"]["accuracy"] is None and data["quality"]["overall"]["estimated"] is None
    assert data["drift"] == {
        "version_number": None,
        "reference": None,
        "latest": {"hourly": None, "daily": None},
        "alerts_firing": 0,
    }
    assert all(s["remaining"] is None for s in data["slo"]["slos"])
    assert data["alerts"] == {"firing": 0, "newest": []}

    response = _page(client_for, reviewer, project)
    assert response.status_code == 200
    assert all(figure is None for figure in _figures(response).values())
    body = response.content.decode()
    for name in ("volume", "errors", "latency", "accuracy", "budget", "drift", "alerts"):
        assert f'data-empty="{name}"' in body, name
    assert 'id="drift-no-version"' in body and 'id="no-alerts"' in body
    assert "data-figure=" not in body


def test_drift_tile_says_when_there_is_no_reference_or_no_run_yet(client_for, reviewer, project):
    version = _production(project, reference=False)
    body = _page(client_for, reviewer, project).content.decode()
    assert 'id="drift-no-reference"' in body and "No reference yet for v3" in body
    DriftReference.objects.create(model_version=version, project=project, labels=["a"], arrays=b"")
    body = _page(client_for, reviewer, project).content.decode()
    assert 'id="drift-no-runs"' in body and 'id="drift-no-reference"' not in body


def test_overview_never_reads_the_raw_prediction_log(api_client_for, reviewer, project, monitored):
    ServiceObjective.objects.create(project=project, quality_target=0.7)
    with CaptureQueriesContext(connection) as queries:
        assert _api(api_client_for, reviewer, project, range="24h").status_code == 200
    table = PredictionLog._meta.db_table
    assert not [q["sql"] for q in queries if table in q["sql"]]
    assert len(queries) < 40  # a fixed handful per tile (hour-grain reads: head minutes, hours, tail minutes)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"range": "2w"}, "Unknown range"),
        ({"from": "yesterday"}, "'from'"),
        ({"from": "2026-11-20T10:00:00Z", "to": "2026-11-19T10:00:00Z"}, "'from' must be before 'to'"),
        ({"from": "2026-13-01T10:00:00Z"}, "'from'"),
        ({"source": "gossip"}, "Unknown source"),
    ],
)
def test_a_bad_range_or_source_is_a_400_that_names_it(api_client_for, client_for, reviewer, project, params, words):
    response = _api(api_client_for, reviewer, project, **params)
    assert response.status_code == 400
    assert words in response.json()["error"]["message"]
    assert _page(client_for, reviewer, project, **params).status_code == 400


def test_custom_window_links_keep_from_and_to(client_for, reviewer, project):
    response = _page(client_for, reviewer, project, **{"from": "2026-11-20T10:00:00Z", "to": "2026-11-20T16:00:00Z"})
    assert response.status_code == 200
    assert (
        "?from=2026-11-20T10%3A00%3A00%2B00%3A00&amp;to=2026-11-20T16%3A00%3A00%2B00%3A00" in response.content.decode()
    )


def test_the_project_nav_links_to_the_monitoring_overview(client_for, reviewer, project):
    body = client_for(reviewer).get(reverse("labeling:project-detail", kwargs={"slug": project.slug})).content.decode()
    assert f'href="/projects/{project.slug}/monitoring/">Monitoring</a>' in body
    page = _page(client_for, reviewer, project).content.decode()
    assert f'href="/projects/{project.slug}/monitoring/" aria-current="page">Monitoring</a>' in page

"""SLO burn evaluation over minute rollups: no alert on stable traffic, a page on an outage, dedupe,
auto-resolution, the low-traffic guard, latency, per-version alerts, shadow traffic, budgets, quality."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.buckets import LATENCY_EDGES_MS
from monitoring.models import Alert, HourRollup, MinuteRollup, OutcomeRollup, RollupWatermark, ServiceObjective
from monitoring.services.slo import slo_evaluate, slo_status
from monitoring.tasks.alerts import evaluate_slos

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)
FAST = LATENCY_EDGES_MS.index(100)  # bucket of 50-100 ms
SLOW = LATENCY_EDGES_MS.index(1000)  # bucket of 500-1000 ms


def _hist(served: int, slow: int = 0) -> list[int]:
    hist = [0] * (len(LATENCY_EDGES_MS) + 1)
    hist[FAST] = served - slow
    hist[SLOW] = slow
    return hist


def _row(project, t, *, served=100, errors=0, slow=0, version=1, route="production", model=MinuteRollup):
    return model(
        project=project,
        bucket_start=t,
        version_number=version,
        route=route,
        language="en",
        predictions=served,
        error_count=errors,
        errors={"server_error": errors} if errors else {},
        latency_hist=_hist(served, slow),
    )


def _traffic(project, start, minutes, **kwargs):
    MinuteRollup.objects.bulk_create([_row(project, start + i * M, **kwargs) for i in range(minutes)])


def _objective(project, **fields):
    return ServiceObjective.objects.create(project=project, **fields)


def _firing(project):
    return set(Alert.objects.filter(project=project, state="firing").values_list("key", flat=True))


def test_stable_traffic_with_errors_under_the_objective_never_alerts(project):
    _objective(project, availability_target=0.995)
    rng = random.Random(7)
    start = T0 - timedelta(days=3)
    # 0.2% of requests fail at random (burn 0.4), a few slow ones under 1%: three days of it.
    rows = []
    for i in range(3 * 24 * 60):
        served = rng.randint(80, 120)
        errors = sum(rng.random() < 0.002 for _ in range(served))
        rows.append(_row(project, start + i * M, served=served - errors, errors=errors, slow=rng.random() < 0.3))
    MinuteRollup.objects.bulk_create(rows)
    for minute in range(0, 60, 7):
        result = slo_evaluate(project=project, now=T0 - timedelta(minutes=minute))
        assert result.firing == ()
    assert not Alert.objects.exists()


def test_a_full_outage_pages_after_its_first_minute_and_resolves_after_recovery(project):
    _objective(project, availability_target=0.999)
    _traffic(project, T0 - timedelta(days=3), 3 * 24 * 60)  # three healthy days at 100/min
    assert slo_evaluate(project=project, now=T0).firing == ()

    # Minute 1 of the outage: 1h burn = 100/6000 / 0.001 = 16.7 > 14.4, 5 min burn = 200: page. The
    # ticket windows are diluted by three days of traffic (3 d burn 0.23, 1 d burn 0.69).
    _traffic(project, T0, 1, served=0, errors=100)
    result = slo_evaluate(project=project, now=T0 + M)
    assert result.firing == ("burn:availability:page:v1",)
    alert = Alert.objects.get(project=project)
    assert (alert.kind, alert.severity, alert.version_number, alert.started_at) == ("burn", "page", 1, T0 + M)
    assert alert.evidence["burn_long"] == pytest.approx(16.667, abs=1e-3)
    assert alert.evidence["policy"] == "page when burn > 14.4 over 1 h and 5 min"
    assert alert.evidence["links"][0]["url"] == "/projects/acme-sentiment/monitoring/slo/"

    # Dedupe: the outage goes on, two more evaluations, still one alert (last seen moves).
    _traffic(project, T0 + M, 1, served=0, errors=100)
    slo_evaluate(project=project, now=T0 + 2 * M)
    slo_evaluate(project=project, now=T0 + 2 * M)
    assert Alert.objects.filter(project=project, key="burn:availability:page:v1").count() == 1
    alert.refresh_from_db()
    assert alert.last_seen_at == T0 + 2 * M and alert.state == "firing"

    # Recovery: the 5-minute window still holds outage minutes for 4 more minutes, then it is clean.
    _traffic(project, T0 + 2 * M, 10)
    for minute in range(3, 7):
        assert "burn:availability:page:v1" in slo_evaluate(project=project, now=T0 + minute * M).firing
    # 6 h/30 min: 200 bad of 36,000 = burn 5.6 < 6, so nothing else holds the page.
    assert slo_evaluate(project=project, now=T0 + 7 * M).firing == ()
    alert.refresh_from_db()
    assert alert.state == "resolved" and alert.resolved_at == T0 + 7 * M


def test_a_few_failing_requests_are_not_an_outage(project):
    _objective(project, availability_target=0.999, min_events=100)
    _traffic(project, T0 - timedelta(hours=2), 12, served=0, errors=5)  # 60 failures in all
    assert slo_evaluate(project=project, now=T0).firing == ()
    _traffic(project, T0 - timedelta(minutes=3), 3, served=0, errors=20)  # 120 events in the last hour
    assert "burn:availability:page:v1" in slo_evaluate(project=project, now=T0).firing


def test_slow_predictions_burn_the_latency_budget(project):
    _objective(project, latency_target=0.99, latency_threshold_ms=300)
    _traffic(project, T0 - timedelta(days=3), 3 * 24 * 60 - 10)
    _traffic(project, T0 - timedelta(minutes=10), 10, slow=100)  # all take 500-1000 ms: 1 h burn 16.7
    result = slo_evaluate(project=project, now=T0)
    assert result.firing == ("burn:latency:page:v1",)
    assert Alert.objects.get().evidence["slo"] == "latency"
    # Under a 1 s threshold the same predictions are all fast enough: the alert resolves.
    ServiceObjective.objects.filter(project=project).update(latency_threshold_ms=1000)
    assert slo_evaluate(project=project, now=T0).firing == ()
    assert Alert.objects.get().state == "resolved"


def test_alerts_are_per_version_and_shadow_traffic_does_not_count(project):
    _objective(project, availability_target=0.999)
    _traffic(project, T0 - timedelta(hours=2), 120, version=1)
    _traffic(project, T0 - timedelta(hours=2), 115, version=2, served=5, route="canary")
    _traffic(project, T0 - timedelta(minutes=5), 5, version=2, served=0, errors=20, route="canary")
    _traffic(project, T0 - timedelta(minutes=30), 30, version=3, served=0, errors=100, route="shadow")
    result = slo_evaluate(project=project, now=T0)
    assert result.firing == ("burn:availability:page:v2", "burn:availability:ticket:v2")
    assert Alert.objects.get(key="burn:availability:page:v2").version_number == 2


def test_windows_end_at_the_minute_folds_watermark(project):
    _objective(project, availability_target=0.999)
    _traffic(project, T0 - timedelta(hours=2), 120)
    _traffic(project, T0, 2, served=0, errors=100)  # written, but the fold has only closed T0
    RollupWatermark.objects.create(name="minute", done_until=T0)
    result = slo_evaluate(project=project, now=T0 + 3 * M)
    assert result.data_until == T0 and result.firing == ()
    RollupWatermark.objects.filter(name="minute").update(done_until=T0 + 2 * M)
    assert "burn:availability:page:v1" in slo_evaluate(project=project, now=T0 + 3 * M).firing


def test_error_budget_over_the_period_reads_folded_hours_then_minutes(project):
    _objective(project, availability_target=0.99, period_days=30)
    # 20 days ago (minutes long gone): an hour with 100 failures out of 10,000.
    HourRollup.objects.create(
        project=project,
        bucket_start=T0 - timedelta(days=20),
        version_number=1,
        route="production",
        predictions=9900,
        error_count=100,
        latency_hist=_hist(9900),
    )
    RollupWatermark.objects.create(name="hour", done_until=T0 - timedelta(hours=1))
    # The last hour, from the minutes: 60 x 100 served, 50 failed once.
    _traffic(project, T0 - timedelta(hours=1), 60)
    _traffic(project, T0 - timedelta(hours=1), 1, version=2, served=0, errors=50)
    # A minute before the hour watermark is already in the hour rows: it must not count twice.
    _traffic(project, T0 - timedelta(hours=2), 1, version=3, served=0, errors=1000)
    until, statuses = slo_status(project=project, now=T0)
    availability = statuses[0]
    assert until == T0 and availability.slo == "availability"
    assert (availability.budget.events, availability.budget.bad) == (10_000 + 6000 + 50, 150)
    assert availability.budget.remaining == pytest.approx(1 - 150 / (0.01 * 16_050))


def test_no_traffic_means_no_budget_figure(project):
    _, statuses = slo_status(project=project, now=T0)
    assert [s.budget.remaining for s in statuses] == [None, None]
    assert all(not r.fires and r.long_burn is None for s in statuses for r in s.results)


def _outcomes(project, hour, *, right, wrong, version=1, source="audit"):
    OutcomeRollup.objects.create(
        project=project, bucket_start=hour, version_number=version, source=source,
        true_label="pos", predicted_label="pos", count=right,
    )  # fmt: skip
    OutcomeRollup.objects.create(
        project=project, bucket_start=hour, version_number=version, source=source,
        true_label="pos", predicted_label="neg", count=wrong,
    )  # fmt: skip


def test_quality_slo_tickets_on_audited_accuracy_and_resolves_when_switched_off(project):
    _objective(project, quality_target=0.9, min_events=50)
    # Audited outcomes of the last three days, arriving late: none for the last 5 hours.
    for h in range(5, 72):
        _outcomes(project, T0 - timedelta(hours=h), right=8, wrong=2)  # 80% < 90%: burn 2
    # Feedback is not an unbiased sample: it never counts.
    _outcomes(project, T0 - timedelta(hours=5), right=0, wrong=500, source="feedback")
    result = slo_evaluate(project=project, now=T0)
    assert result.firing == ("slo:quality:v1",)
    alert = Alert.objects.get(key="slo:quality:v1")
    assert (alert.kind, alert.severity) == ("accuracy", "ticket")
    assert alert.evidence["burn_long"] == pytest.approx(2.0)
    ServiceObjective.objects.filter(project=project).update(quality_target=None)
    assert slo_evaluate(project=project, now=T0).firing == ()
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_a_seven_day_period_alerts_on_a_slower_burn(project):
    # 14.4 x 7/30 = 3.36: a 0.5% error rate (burn 5 at 99.9%) pages over 7 days, not over 30.
    _traffic(project, T0 - timedelta(hours=2), 120, served=995, errors=5)
    _objective(project, availability_target=0.999, period_days=30)
    # Over 30 days the 1 d/2 h ticket (burn > 3) fires, no page.
    assert slo_evaluate(project=project, now=T0).firing == ("burn:availability:ticket:v1",)
    ServiceObjective.objects.filter(project=project).update(period_days=7)
    assert slo_evaluate(project=project, now=T0).firing == (
        "burn:availability:page:v1",
        "burn:availability:ticket:v1",
    )


def test_the_beat_task_evaluates_every_project(project, other_project):
    ServiceObjective.objects.create(project=other_project, availability_target=0.999)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    _traffic(other_project, now - timedelta(minutes=60), 58)
    _traffic(other_project, now - timedelta(minutes=2), 2, served=0, errors=100)
    assert evaluate_slos.apply().get() == 2
    assert _firing(other_project) >= {"burn:availability:page:v1"}
    assert _firing(project) == set()


def test_the_rollup_task_folds_the_open_minute_and_evaluates_right_after(project):
    """An outage 55 s old pages on the next 20 s fold: the fold reads the open minute and enqueues the evaluation."""
    from monitoring.tasks.rollups import rollups_fold
    from tests.monitoring.traffic import error_row
    from webapp.celery import app

    ServiceObjective.objects.create(project=project, availability_target=0.999)
    now = datetime.now(UTC)
    for second in range(55, 0, -5):  # 11 failed requests of 20 texts each, all inside the last minute or two
        error_row(project, now - timedelta(seconds=second), texts=20, version_number=1, route="production")
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the evaluation the fold enqueues runs inline here
    try:
        rollups_fold.apply().get()
    finally:
        app.conf.task_always_eager = eager
    assert MinuteRollup.objects.filter(project=project).count() >= 1
    assert "burn:availability:page:v1" in _firing(project)


def test_burn_chart_sums_day_long_windows_from_hours_and_agrees_with_minutes_on_the_hour(project, monkeypatch):
    from monitoring.selectors import slo as selector
    from monitoring.selectors.slo import burn_series

    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    first = end - timedelta(days=4)
    rows = []
    for i in range(4 * 1440):  # 100 requests a minute: 1 failing, 10 in the last two hours
        errors = 10 if i >= 4 * 1440 - 120 else 1
        rows.append(_row(project, first + i * M, served=100 - errors, errors=errors))
    MinuteRollup.objects.bulk_create(rows)
    kwargs = {
        "project": project,
        "start": end - timedelta(days=1),
        "end": end,
        "step": timedelta(minutes=1),  # a point at every bucket end, so some fall on the hour
        "fine": True,
        "targets": {"availability": 0.99},
        "windows": [timedelta(hours=1), timedelta(days=1), timedelta(days=3)],
        "threshold_ms": 300,
    }
    series = burn_series(**kwargs)
    burns = series.burns["availability"]
    assert burns[timedelta(hours=1)][-1] == pytest.approx(10.0)
    assert burns[timedelta(days=1)][-1] == pytest.approx((120 * 10 + 1320) / 144_000 / 0.01)
    assert burns[timedelta(days=3)][-1] == pytest.approx((120 * 10 + 4200) / 432_000 / 0.01)
    monkeypatch.setattr(selector, "COARSE_WINDOW", timedelta(days=30))  # every window from minute buckets
    exact = burn_series(**kwargs).burns["availability"]
    on_the_hour = [i for i, t in enumerate(series.times) if t.minute == 0]
    assert len(on_the_hour) >= 20
    for window in (timedelta(days=1), timedelta(days=3)):
        assert [burns[window][i] for i in on_the_hour] == pytest.approx([exact[window][i] for i in on_the_hour])

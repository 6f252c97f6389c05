"""The drift page's reads and figures on stored runs: which runs are charted, the shown run, the API list's
filters, and the p-value chart with its threshold (or nothing to draw)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring import charts_drift
from monitoring.models import DriftRun
from monitoring.selectors.drift import chart_points, drift_overview, drift_run_get, drift_runs
from webapp.errors import ValidationFailed


def _entry(p_value, *, alert=False, threshold=0.05):
    return {
        "test": "length",
        "statistic": 0.3,
        "p_value": p_value,
        "threshold": threshold,
        "alert": alert,
        "details": {},
    }


def _run(project, window, end, p_value=0.5, alert=False):
    span = timedelta(hours=1) if window == "hourly" else timedelta(days=1)
    return DriftRun.objects.create(
        project=project,
        version_number=1,
        window=window,
        window_start=end - span,
        window_end=end,
        n_current=400,
        results={"overall": {"length": _entry(p_value, alert=alert)}, "alerts": ["length"] if alert else []},
        drifted=alert,
    )


@pytest.mark.django_db
def test_long_ranges_chart_daily_runs_only_and_the_latest_run_is_shown(project):
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    hourly = [_run(project, "hourly", now - timedelta(hours=h)) for h in range(1, 4)]
    daily = _run(project, "daily", now - timedelta(days=2), p_value=1e-5, alert=True)
    day = drift_overview(project=project, start=now - timedelta(days=1), end=now + timedelta(minutes=1))
    assert [r.pk for r in day.runs] == [r.pk for r in reversed(hourly)]  # oldest first
    assert day.shown == hourly[0] and day.version is None and day.reference is None
    month = drift_overview(project=project, start=now - timedelta(days=30), end=now + timedelta(minutes=1))
    assert [r.pk for r in month.runs] == [daily.pk]
    chosen = drift_overview(project=project, start=now - timedelta(days=1), end=now, run_id=str(daily.pk))
    assert chosen.shown == daily


@pytest.mark.django_db
def test_an_unknown_run_is_a_400_naming_it_and_filters_are_checked(project, other_project):
    foreign = _run(other_project, "daily", timezone.now())
    with pytest.raises(ValidationFailed, match=f"no drift run {foreign.pk}"):
        drift_run_get(project=project, run_id=foreign.pk)
    with pytest.raises(ValidationFailed):
        drift_run_get(project=project, run_id="abc")
    with pytest.raises(ValidationFailed, match="Unknown window"):
        drift_runs(project=project, window="weekly")
    with pytest.raises(ValidationFailed):
        drift_runs(project=project, limit=0)


@pytest.mark.django_db
def test_chart_points_and_the_p_value_chart(project):
    now = timezone.now()
    runs = [_run(project, "daily", now - timedelta(days=2), 0.4), _run(project, "daily", now, 0.0, alert=True)]
    points = chart_points(runs, "length")
    assert [(p["p_value"], p["alert"]) for p in points] == [(0.4, False), (0.0, True)]
    assert chart_points(runs, "embedding_mmd") == []
    assert charts_drift.p_value_chart([], title="x") is None and charts_drift.psi_chart(points) is None
    figure = charts_drift.p_value_chart(points, title="Text length (KS)")
    daily, threshold = figure["data"]
    assert daily["y"] == [0.4, charts_drift.P_FLOOR]  # p = 0 drawn at the log axis' floor
    assert daily["marker"]["color"] == [charts_drift.GREEN, charts_drift.RED]
    assert threshold["y"] == [0.05, 0.05] and figure["layout"]["yaxis"]["type"] == "log"

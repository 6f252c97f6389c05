"""Drift reads: the page's runs over a time range, the latest run, one run, the runs list for the API.

Pages read ``DriftRun`` rows (one per window), never the prediction log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from labeling.models import Project
from modeling.models import Alias, ModelVersion
from monitoring.models import Alert, DriftReference, DriftRun
from webapp.errors import ValidationFailed

MAX_RUNS_CHARTED = 2_000
HOURLY_CHART_SPAN = timedelta(days=7)
MAX_RUNS_LISTED = 500


@dataclass
class DriftOverview:
    """What the drift page shows: the serving version, its reference, the runs in range and the one shown."""

    version: ModelVersion | None
    reference: DriftReference | None
    # In range, oldest first (the charts); beyond HOURLY_CHART_SPAN only daily and on-demand runs.
    runs: list[DriftRun] = field(default_factory=list)
    shown: DriftRun | None = None  # ?run=<id>, else the latest run of the serving version
    firing: list[Alert] = field(default_factory=list)


def drift_run_get(*, project: Project, run_id: Any) -> DriftRun:
    """Return one of the project's runs; an unknown id is a 400 naming it (it may belong to another project)."""
    try:
        number = int(run_id)
    except (TypeError, ValueError):
        raise ValidationFailed("run must be a drift run id (a whole number).", details={"field": "run"}) from None
    run = DriftRun.objects.filter(project=project, pk=number).first()
    if run is None:
        raise ValidationFailed(f"This project has no drift run {number}.", details={"field": "run", "value": number})
    return run


def drift_overview(*, project: Project, start: datetime, end: datetime, run_id: Any = None) -> DriftOverview:
    """Return the page's data for runs whose window ends in [start, end)."""
    alias = Alias.objects.filter(project=project, name=Alias.Name.PRODUCTION).select_related("version").first()
    version = alias.version if alias is not None else None
    reference = DriftReference.objects.filter(model_version=version).first() if version is not None else None
    in_range = DriftRun.objects.filter(project=project, window_end__gte=start, window_end__lt=end)
    if end - start > HOURLY_CHART_SPAN:  # a year of hourly points says less than its daily ones, and costs more
        in_range = in_range.exclude(window=DriftRun.Window.HOURLY)
    runs = list(in_range.defer("explanation").order_by("-window_end", "-pk")[:MAX_RUNS_CHARTED])[::-1]
    if run_id:
        shown: DriftRun | None = drift_run_get(project=project, run_id=run_id)
    else:
        latest = DriftRun.objects.filter(project=project)
        if version is not None:
            latest = latest.filter(version_number=version.number)
        shown = latest.order_by("-window_end", "-pk").first()
    firing = list(
        Alert.objects.filter(project=project, kind=Alert.Kind.DRIFT, state=Alert.State.FIRING).order_by("-started_at")
    )
    return DriftOverview(version=version, reference=reference, runs=runs, shown=shown, firing=firing)


def drift_runs(*, project: Project, window: str = "", limit: int = 100) -> list[DriftRun]:
    """Return the project's most recent runs (optionally of one window kind), newest first."""
    if window and window not in DriftRun.Window.values:
        raise ValidationFailed(
            f"Unknown window {window!r}; use one of {', '.join(DriftRun.Window.values)}.", details={"field": "window"}
        )
    if not 1 <= limit <= MAX_RUNS_LISTED:
        raise ValidationFailed(f"limit must be from 1 to {MAX_RUNS_LISTED}.", details={"field": "limit"})
    runs = DriftRun.objects.filter(project=project)
    if window:
        runs = runs.filter(window=window)
    return list(runs.defer("explanation").order_by("-window_end", "-pk")[:limit])


def chart_points(runs: list[DriftRun], test: str) -> list[dict[str, Any]]:
    """Return one chart point per run that ran ``test`` overall: time, window, p-value, threshold, alert."""
    points = []
    for run in runs:
        entry = (run.results or {}).get("overall", {}).get(test)
        if not entry:
            continue
        points.append(
            {
                "time": run.window_end,
                "window": run.window,
                "p_value": entry.get("p_value"),
                "threshold": entry.get("threshold"),
                "statistic": entry.get("statistic"),
                "alert": bool(entry.get("alert")),
                "psi": (entry.get("details") or {}).get("psi"),
                "psi_threshold": (entry.get("details") or {}).get("psi_threshold"),
                "n": run.n_current,
            }
        )
    return points

"""The Overview page's reads: one tile per monitoring page, each read through the selector that page owns.

Volume, errors and latency come from ``selectors.traffic.traffic``, the accuracy trend from
``selectors.quality.quality``, the error budgets from ``services.slo.slo_status``, the drift status from
the latest hourly and daily ``DriftRun`` (``selectors.drift.drift_runs``), and the open alerts from the
``Alert`` table. All of these are rollups or small tables: nothing here reads the raw prediction log.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from labeling.models import Project
from modeling.models import ModelVersion
from monitoring.models import Alert, DriftReference, DriftRun, OutcomeRollup
from monitoring.selectors.drift import drift_runs
from monitoring.selectors.quality import SOURCES, Quality, quality
from monitoring.selectors.traffic import Traffic, traffic
from monitoring.services.drift import production_with_reference
from monitoring.services.slo import SloStatus, slo_status
from monitoring.timerange import TimeRange

ALERTS_SHOWN = 10
# From this span on, the tiles read hour rollups (plus the minutes at both ends): a sparkline of 12+ hourly
# points is enough at a glance, and it reads ~25 times fewer rows than the minute grain (the same counts).
HOURLY_TILES_FROM = timedelta(hours=12)
DRIFT_WINDOWS = ("hourly", "daily")  # the scheduled DriftRun.Window kinds (on-demand runs are investigations)


@dataclass
class DriftStatus:
    """The serving version, whether it has a reference, and the newest scheduled run of each window kind."""

    version: ModelVersion | None
    reference: DriftReference | None
    latest: dict[str, DriftRun | None] = field(default_factory=dict)  # "hourly"/"daily" -> run or None
    firing: int = 0  # drift alerts firing now


@dataclass
class Overview:
    time_range: TimeRange
    traffic: Traffic
    quality: Quality
    source_chosen: bool  # True when the request named the ground-truth source, False when picked here
    drift: DriftStatus
    slo_until: datetime
    slos: list[SloStatus]
    alerts: list[Alert]  # firing, newest first, at most ALERTS_SHOWN
    alerts_firing: int


def overview_source(*, project: Project, time_range: TimeRange) -> str:
    """Return the ground truth the accuracy tile uses when the request names none.

    The audit sample when it has outcomes in the window (it is unbiased), else feedback when that has
    some (biased towards what callers chose to report, and the page says which one it shows), else audit.
    """
    start = time_range.start.replace(minute=0, second=0, microsecond=0)
    present = set(
        OutcomeRollup.objects.filter(project=project, bucket_start__gte=start, bucket_start__lt=time_range.end)
        .order_by()
        .values_list("source", flat=True)
        .distinct()
    )
    return next((source for source in SOURCES if source in present), SOURCES[0])


def drift_status(*, project: Project) -> DriftStatus:
    """Return the production version, its drift reference and the latest hourly and daily runs."""
    version, reference = production_with_reference(project)
    latest: dict[str, DriftRun | None] = {}
    for window in DRIFT_WINDOWS:
        runs = drift_runs(project=project, window=window, limit=1)
        latest[window] = runs[0] if runs else None
    firing = Alert.objects.filter(project=project, kind=Alert.Kind.DRIFT, state=Alert.State.FIRING).count()
    return DriftStatus(version=version, reference=reference, latest=latest, firing=firing)


def project_overview(*, project: Project, time_range: TimeRange, source: str | None = None) -> Overview:
    """Return every tile of the Overview page for the window (``source``: the accuracy's ground truth)."""
    chosen = source or overview_source(project=project, time_range=time_range)
    until, slos = slo_status(project=project)
    tiles = replace(time_range, grain="hour") if time_range.span >= HOURLY_TILES_FROM else time_range
    firing = Alert.objects.filter(project=project, state=Alert.State.FIRING)
    return Overview(
        time_range=time_range,
        traffic=traffic(project=project, time_range=tiles),
        quality=quality(project=project, time_range=tiles, source=chosen),
        source_chosen=source is not None,
        drift=drift_status(project=project),
        slo_until=until,
        slos=slos,
        alerts=list(firing.order_by("-started_at", "-pk")[:ALERTS_SHOWN]),
        alerts_firing=firing.count(),
    )

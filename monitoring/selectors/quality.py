"""The Quality page's reads: measured accuracy from the outcome cells, estimated accuracy from the rollups.

Measured accuracy comes from ``OutcomeRollup`` (one source at a time: the audit sample is an unbiased
sample of traffic, feedback is whatever callers chose to report, so mixing them would weight one by the
other's volume). Estimated accuracy is the mean calibrated confidence of all served predictions in the
same steps, from the minute/hour rollups' ``confidence_sum`` (shadow traffic excluded: it was not
served). The only raw-log read is the list of lowest-confidence recent predictions (see
``lowest_confidence``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from labeling.models import Label, Project
from modeling.models import PredictionLog
from monitoring.models import OutcomeRollup
from monitoring.selectors.rollup_reads import StepGrid, rollup_rows
from monitoring.stats.accuracy import (
    ClassMetrics,
    Estimate,
    MacroF1,
    Proportion,
    accuracy,
    class_metrics,
    confusion_matrix,
    estimated_accuracy,
    macro_f1_interval,
)
from monitoring.timerange import TimeRange
from webapp.errors import ValidationFailed

SOURCES = ("audit", "feedback")
MIN_STEP = timedelta(hours=1)  # outcome cells are hourly
MAX_POINTS = 60  # a few dozen audited predictions an hour: wider steps keep each point's n useful
RECENT_WINDOW = timedelta(hours=1)
RECENT_ROWS = 20

Cells = dict[tuple[str, str], int]


def source_parse(value: str | None) -> str:
    """Return the ground-truth source a request asks for (default: the audit sample); 400 otherwise."""
    source = value or "audit"
    if source not in SOURCES:
        raise ValidationFailed(f"Unknown source {source!r}; use 'audit' or 'feedback'.", details={"field": "source"})
    return source


def quality_step(time_range: TimeRange) -> timedelta:
    """Hourly at the finest, widened to whole hours so a window holds at most ``MAX_POINTS`` points."""
    hours = max(1, -(-int(time_range.span.total_seconds()) // 3600 // MAX_POINTS))
    return max(MIN_STEP, timedelta(hours=hours))


@dataclass
class Slice:
    """Measured and estimated accuracy of one slice (a step, a language, a version)."""

    key: str
    accuracy: Proportion
    macro_f1: MacroF1 | None
    estimated: Estimate


@dataclass
class Quality:
    time_range: TimeRange
    source: str
    labels: list[str]
    step: timedelta
    overall: Slice
    over_time: list[tuple[datetime, Slice]]
    by_language: list[Slice]
    by_version: list[Slice]
    classes: list[ClassMetrics]
    confusion_labels: list[str]
    confusion: list[list[int]]  # the audit sample's, whatever the source

    @property
    def empty(self) -> bool:
        return self.overall.accuracy.n == 0 and self.overall.estimated.n == 0


def _step(time_range: TimeRange, when: datetime, step: timedelta) -> datetime:
    origin = time_range.start.replace(minute=0, second=0, microsecond=0)
    return origin + step * max(0, (when - origin) // step)


def _outcomes(project: Project, time_range: TimeRange) -> Iterable[dict[str, Any]]:
    start = time_range.start.replace(minute=0, second=0, microsecond=0)
    return (
        OutcomeRollup.objects.filter(project=project, bucket_start__gte=start, bucket_start__lt=time_range.end)
        .order_by()
        .values("bucket_start", "version_number", "language", "source", "true_label", "predicted_label", "count")
    )


@dataclass
class _Confidence:
    total: float = 0.0
    n: int = 0


def _slices(cells: dict[Any, Cells], confidence: dict[Any, _Confidence], *, with_f1: bool) -> dict[Any, Slice]:
    out = {}
    for key in sorted(set(cells) | set(confidence)):
        matrix = cells.get(key, {})
        conf = confidence.get(key, _Confidence())
        out[key] = Slice(
            str(key),
            accuracy(matrix),
            macro_f1_interval(matrix) if with_f1 else None,
            estimated_accuracy(min(conf.total, conf.n), conf.n),
        )
    return out


def quality(*, project: Project, time_range: TimeRange, source: str = "audit") -> Quality:
    """Return measured accuracy (from ``source``) and estimated accuracy over time and per slice."""
    step = quality_step(time_range)
    labels = list(Label.objects.filter(project=project).order_by("order", "id").values_list("name", flat=True))
    overall: Cells = defaultdict(int)
    audit: Cells = defaultdict(int)
    per: dict[str, dict[Any, Cells]] = {
        "time": defaultdict(lambda: defaultdict(int)),
        "language": defaultdict(lambda: defaultdict(int)),
        "version": defaultdict(lambda: defaultdict(int)),
    }
    for row in _outcomes(project, time_range):
        pair, count = (row["true_label"], row["predicted_label"]), row["count"]
        if row["source"] == "audit":
            audit[pair] += count
        if row["source"] != source:
            continue
        overall[pair] += count
        per["time"][_step(time_range, row["bucket_start"], step)][pair] += count
        per["language"][row["language"]][pair] += count
        per["version"][row["version_number"]][pair] += count
    conf: dict[str, dict[Any, _Confidence]] = {
        name: defaultdict(_Confidence) for name in ("time", "language", "version")
    }
    total = _Confidence()
    fields = ("bucket_start", "version_number", "route", "language", "predictions", "confidence_sum")
    grid = StepGrid(time_range.start.replace(minute=0, second=0, microsecond=0), step)  # ``_step``'s grid
    for bucket_start, version, route, language, predictions, confidence_sum in rollup_rows(
        project=project, time_range=time_range, fields=fields, steps=grid
    ):
        if route == PredictionLog.Route.SHADOW or not predictions:
            continue
        for name, key in (
            ("time", _step(time_range, bucket_start, step)),
            ("language", language),
            ("version", version),
        ):
            conf[name][key].total += confidence_sum
            conf[name][key].n += predictions
        total.total += confidence_sum
        total.n += predictions
    names, matrix = confusion_matrix(audit, labels)
    return Quality(
        time_range=time_range,
        source=source,
        labels=labels,
        step=step,
        overall=_slices({"all": overall}, {"all": total}, with_f1=True)["all"],
        over_time=sorted(_slices(per["time"], conf["time"], with_f1=True).items()),
        by_language=list(_slices(per["language"], conf["language"], with_f1=False).values()),
        by_version=list(_slices(per["version"], conf["version"], with_f1=True).values()),
        classes=class_metrics(overall, labels) if overall else [],
        confusion_labels=names if audit else [],
        confusion=matrix if audit else [],
    )


@dataclass
class RecentPrediction:
    id: str
    created_at: datetime
    version_number: int
    route: str
    language: str
    label: str
    confidence: float
    text: str | None


def lowest_confidence(*, project: Project, now: datetime | None = None) -> list[RecentPrediction]:
    """Return the 20 least confident predictions served in the last hour.

    The one read of the raw log on the monitoring pages: it walks the ``(project, created_at)`` index
    over the last hour only (at 10M predictions a month, ~14k rows) and keeps 20, so it stays cheap
    however large the log is. Texts are there only where the project logs them (or for audit rows).
    """
    now = now or timezone.now()
    rows = (
        PredictionLog.objects.filter(project=project, created_at__gte=now - RECENT_WINDOW, created_at__lte=now)
        .exclude(route=PredictionLog.Route.SHADOW)
        .order_by("confidence", "-created_at")
        .values("id", "created_at", "version_number", "route", "language", "label", "confidence", "text")[:RECENT_ROWS]
    )
    return [RecentPrediction(**{**row, "id": str(row["id"])}) for row in rows]

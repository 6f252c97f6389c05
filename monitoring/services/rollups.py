"""Fold the prediction log into per-minute and per-hour rollups, and apply the retention periods.

The minute fold is one ``GROUP BY`` per project and window over ``PredictionLog`` with conditional
counts (``COUNT(*) FILTER (WHERE latency_ms <= 10)`` ...; Django writes ``CASE WHEN`` where a backend
lacks ``FILTER``), so the database does the work and only the groups travel: it runs the same on
SQLite and PostgreSQL and reads the log through its ``(project, created_at)`` index. Grouping by the
predicted label too gives the label counts in the same pass; the other sums are added up over labels
in Python.

Idempotent: a window's minute rows are deleted and rebuilt from the log in one transaction, so running
a window twice gives the same rows. The model server writes the log in bulk every ~0.5 s, so the last
minutes may still be filling when a run reads them: each run folds from the watermark, or from
``REFOLD`` before the current minute if that is earlier, up to now: the current minute's row holds
its traffic so far and is completed by the next run. Folding the open minute is what lets a full
outage page within about a minute (the 1-hour window needs ~52 s of failure at 99.9%): the fold runs
every 20 s and the SLO evaluation right after it.
A log row written more than ``REFOLD`` late (the model server's database was down and its buffer
retried) is missed by the minute rows until the window is folded again (``rollup_minutes(since=...)``).

Hours are folded from the minute rows once no minute of the hour can be re-folded any more.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import Trunc
from django.utils import timezone

from labeling.models import Project
from modeling.models import PredictionError, PredictionLog
from monitoring.buckets import CONFIDENCE_BINS, LATENCY_EDGES_MS
from monitoring.models import HourRollup, MinuteRollup, OutcomeRollup, RollupWatermark
from monitoring.timerange import HOUR_RETENTION, MINUTE_RETENTION

logger = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
REFOLD = timedelta(minutes=3)  # the log's bulk writes land well within this (0.5 s flush + one write)
CHUNK = timedelta(hours=6)  # a catch-up folds this much per query: few groups, index range scans
DELETE_BATCH = 10_000
MAX_DELETE_BATCHES = 100  # per table and run: a large backlog is deleted over several runs

MINUTE_MARK = "minute"
HOUR_MARK = "hour"

Key = tuple[datetime, int, str, str]  # bucket start, version number, route, language


@dataclass
class FoldResult:
    """What one run folded: the window, the rows written and the seconds it took."""

    start: datetime | None = None
    end: datetime | None = None
    rows: int = 0
    seconds: float = 0.0
    skipped: bool = False  # another run holds the watermark

    @property
    def minutes(self) -> int:
        return int((self.end - self.start) / MINUTE) if self.start and self.end else 0


@dataclass
class _Bucket:
    predictions: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latency_hist: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_EDGES_MS) + 1))
    latency_sum_ms: float = 0.0
    label_counts: dict[str, int] = field(default_factory=dict)
    confidence_hist: list[int] = field(default_factory=lambda: [0] * CONFIDENCE_BINS)
    confidence_sum: float = 0.0
    chars_sum: int = 0

    def fields(self) -> dict[str, Any]:
        return {**self.__dict__, "error_count": sum(self.errors.values())}


def floor_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# --- the minute fold -----------------------------------------------------------------------------


def _aggregates() -> dict[str, Any]:
    """Conditional counts: cumulative ones (<= edge, < bin edge), differenced into buckets in Python."""
    aggregates: dict[str, Any] = {
        "n": Count("id"),
        "latency_sum": Sum("latency_ms"),
        "confidence_sum": Sum("confidence"),
        "chars_sum": Sum("input_chars"),
    }
    for index, edge in enumerate(LATENCY_EDGES_MS):
        aggregates[f"lat{index}"] = Count("id", filter=Q(latency_ms__lte=edge))
    for index in range(1, CONFIDENCE_BINS):
        # Bin i is [i/10, (i+1)/10): the same as monitoring.buckets.confidence_bin, 1.0 in the last bin.
        aggregates[f"conf{index}"] = Count("id", filter=Q(confidence__lt=index / CONFIDENCE_BINS))
    return aggregates


def _differences(cumulative: list[int], total: int) -> list[int]:
    bounds = [0, *cumulative, total]
    return [bounds[i + 1] - bounds[i] for i in range(len(bounds) - 1)]


def _fold_log(project_id: int, start: datetime, end: datetime, grain: str) -> dict[Key, _Bucket]:
    buckets: dict[Key, _Bucket] = defaultdict(_Bucket)
    rows = (
        PredictionLog.objects.filter(project_id=project_id, created_at__gte=start, created_at__lt=end)
        .annotate(bucket=Trunc("created_at", grain, tzinfo=UTC))
        .values("bucket", "version_number", "route", "language", "label")
        .annotate(**_aggregates())
        .order_by()
    )
    for row in rows:
        bucket = buckets[(row["bucket"], row["version_number"], row["route"], row["language"])]
        n = row["n"]
        bucket.predictions += n
        bucket.label_counts[row["label"]] = bucket.label_counts.get(row["label"], 0) + n
        latency = _differences([row[f"lat{i}"] for i in range(len(LATENCY_EDGES_MS))], n)
        confidence = _differences([row[f"conf{i}"] for i in range(1, CONFIDENCE_BINS)], n)
        bucket.latency_hist = [a + b for a, b in zip(bucket.latency_hist, latency, strict=True)]
        bucket.confidence_hist = [a + b for a, b in zip(bucket.confidence_hist, confidence, strict=True)]
        bucket.latency_sum_ms += row["latency_sum"] or 0.0
        bucket.confidence_sum += row["confidence_sum"] or 0.0
        bucket.chars_sum += row["chars_sum"] or 0
    errors = (
        PredictionError.objects.filter(project_id=project_id, created_at__gte=start, created_at__lt=end)
        .annotate(bucket=Trunc("created_at", grain, tzinfo=UTC))
        .values("bucket", "version_number", "route", "language", "kind")
        .annotate(texts=Sum("texts"))
        .order_by()
    )
    for row in errors:
        bucket = buckets[(row["bucket"], row["version_number"], row["route"], row["language"])]
        bucket.errors[row["kind"]] = bucket.errors.get(row["kind"], 0) + (row["texts"] or 0)
    return buckets


def _replace(
    model: type[MinuteRollup] | type[HourRollup],
    project_id: int,
    start: datetime,
    end: datetime,
    buckets: dict[Key, _Bucket],
) -> int:
    model.objects.filter(project_id=project_id, bucket_start__gte=start, bucket_start__lt=end).delete()
    model.objects.bulk_create(
        [
            model(
                project_id=project_id,
                bucket_start=key[0],
                version_number=key[1],
                route=key[2],
                language=key[3],
                **bucket.fields(),
            )
            for key, bucket in buckets.items()
        ],
        batch_size=1_000,
    )
    return len(buckets)


def minutes_fold(*, project_id: int, start: datetime, end: datetime) -> int:
    """Rebuild the minute rollups of one project in [start, end) from the log; return the rows written."""
    written = 0
    cursor = start
    while cursor < end:
        upto = min(end, cursor + CHUNK)
        with transaction.atomic():
            written += _replace(MinuteRollup, project_id, cursor, upto, _fold_log(project_id, cursor, upto, "minute"))
        cursor = upto
    return written


def _earliest_log() -> datetime | None:
    """The oldest log or error row, found per project through the (project, created_at) indexes."""
    found = []
    for project_id in _project_ids():
        for model in (PredictionLog, PredictionError):
            first = model.objects.filter(project_id=project_id).aggregate(first=Min("created_at"))["first"]
            if first is not None:
                found.append(first)
    return min(found) if found else None


def _project_ids() -> list[int]:
    return list(Project.objects.order_by("pk").values_list("pk", flat=True))


def _locked_mark(name: str) -> RollupWatermark | None:
    """The watermark row, locked for this transaction; None while another run holds it (PostgreSQL)."""
    RollupWatermark.objects.get_or_create(name=name, defaults={"done_until": datetime(1970, 1, 1, tzinfo=UTC)})
    return RollupWatermark.objects.select_for_update(skip_locked=True).filter(name=name).first()


@transaction.atomic
def rollup_minutes(*, now: datetime | None = None, since: datetime | None = None) -> FoldResult:
    """Fold the minutes since the watermark (re-folding the last ``REFOLD``, and the open minute so far).

    ``since`` re-folds from an earlier time (e.g. after a log outage). The first run starts at the
    oldest log row. Returns the window and the rows written; ``skipped`` when another run is busy.
    """
    started = time.perf_counter()
    mark = _locked_mark(MINUTE_MARK)
    if mark is None:
        return FoldResult(skipped=True)
    end = now or timezone.now()
    if mark.done_until.year == 1970:
        first = _earliest_log()
        start = floor_minute(first) if first is not None else floor_minute(end - REFOLD)
    else:
        start = floor_minute(min(mark.done_until, end - REFOLD))
    if since is not None:
        start = min(start, floor_minute(since))
        # The hours of a re-folded window are folded again too.
        RollupWatermark.objects.filter(name=HOUR_MARK, done_until__gt=floor_hour(start)).update(
            done_until=floor_hour(start)
        )
    rows = sum(minutes_fold(project_id=project_id, start=start, end=end) for project_id in _project_ids())
    mark.done_until = end
    mark.save()
    result = FoldResult(start, end, rows, time.perf_counter() - started)
    logger.info("minute rollups folded", extra={"minutes": result.minutes, "rows": rows, "seconds": result.seconds})
    return result


# --- the hour fold -------------------------------------------------------------------------------


def _sum_minutes(rows: Iterable[MinuteRollup]) -> dict[Key, _Bucket]:
    buckets: dict[Key, _Bucket] = defaultdict(_Bucket)
    for row in rows:
        bucket = buckets[(floor_hour(row.bucket_start), row.version_number, row.route, row.language)]
        bucket.predictions += row.predictions
        for kind, count in row.errors.items():
            bucket.errors[kind] = bucket.errors.get(kind, 0) + count
        for label, count in row.label_counts.items():
            bucket.label_counts[label] = bucket.label_counts.get(label, 0) + count
        bucket.latency_hist = [a + b for a, b in zip(bucket.latency_hist, row.latency_hist, strict=True)]
        bucket.confidence_hist = [a + b for a, b in zip(bucket.confidence_hist, row.confidence_hist, strict=True)]
        bucket.latency_sum_ms += row.latency_sum_ms
        bucket.confidence_sum += row.confidence_sum
        bucket.chars_sum += row.chars_sum
    return buckets


def hours_fold(*, project_id: int, start: datetime, end: datetime) -> int:
    """Rebuild the hour rollups of one project in [start, end) (whole hours) from its minute rows."""
    written = 0
    cursor = start
    while cursor < end:
        upto = min(end, cursor + timedelta(days=1))
        minutes = MinuteRollup.objects.filter(project_id=project_id, bucket_start__gte=cursor, bucket_start__lt=upto)
        with transaction.atomic():
            written += _replace(HourRollup, project_id, cursor, upto, _sum_minutes(minutes.iterator(chunk_size=5_000)))
        cursor = upto
    return written


@transaction.atomic
def rollup_hours(*, now: datetime | None = None) -> FoldResult:
    """Fold every hour whose minutes are all final (folded and out of the re-fold window) into hour rows."""
    started = time.perf_counter()
    mark = _locked_mark(HOUR_MARK)
    minute_mark = RollupWatermark.objects.filter(name=MINUTE_MARK).first()
    if mark is None or minute_mark is None:
        return FoldResult(skipped=mark is None)
    end = floor_hour(min(minute_mark.done_until, floor_minute(now or timezone.now())) - REFOLD)
    if mark.done_until.year == 1970:
        first = MinuteRollup.objects.aggregate(first=Min("bucket_start"))["first"]
        start = floor_hour(first) if first is not None else end
    else:
        start = mark.done_until
    if start >= end:
        return FoldResult(start, start, 0, time.perf_counter() - started)
    rows = sum(hours_fold(project_id=project_id, start=start, end=end) for project_id in _project_ids())
    mark.done_until = end
    mark.save()
    return FoldResult(start, end, rows, time.perf_counter() - started)


# --- retention -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    minute_rows: int
    hour_rows: int
    outcome_rows: int
    log_rows: int
    error_rows: int


def _delete_in_batches(model: type[PredictionLog] | type[PredictionError], project_id: int, cutoff: datetime) -> int:
    """Delete a project's rows older than ``cutoff``, oldest first, a batch per statement (short locks)."""
    deleted = 0
    for _ in range(MAX_DELETE_BATCHES):
        ids = list(
            model.objects.filter(project_id=project_id, created_at__lt=cutoff)
            .order_by("created_at")
            .values_list("pk", flat=True)[:DELETE_BATCH]
        )
        if not ids:
            break
        deleted += model.objects.filter(pk__in=ids).delete()[0]
    return deleted


def rollups_purge(*, now: datetime | None = None) -> PurgeResult:
    """Delete minute rows older than 14 days, hour and outcome rows older than 13 months, and the raw
    prediction log and error rows older than ``LOOPLINE_PREDICTION_LOG_RETENTION_DAYS`` (in batches)."""
    now = now or timezone.now()
    log_cutoff = now - timedelta(days=settings.LOOPLINE_PREDICTION_LOG_RETENTION_DAYS)
    counts = defaultdict(int)
    for project_id in _project_ids():
        scope = {"project_id": project_id}
        counts["minute"] += MinuteRollup.objects.filter(**scope, bucket_start__lt=now - MINUTE_RETENTION).delete()[0]
        counts["hour"] += HourRollup.objects.filter(**scope, bucket_start__lt=now - HOUR_RETENTION).delete()[0]
        counts["outcome"] += OutcomeRollup.objects.filter(**scope, bucket_start__lt=now - HOUR_RETENTION).delete()[0]
        counts["log"] += _delete_in_batches(PredictionLog, project_id, log_cutoff)
        counts["error"] += _delete_in_batches(PredictionError, project_id, log_cutoff)
    return PurgeResult(counts["minute"], counts["hour"], counts["outcome"], counts["log"], counts["error"])

"""The Service page's reads: traffic, latency and errors from the rollups; model-server and job health.

Everything here reads the minute or hour rollups (never the raw log), at the grain the time range
chose, summed per chart step and (version, route, language) group in SQL (``rollup_reads``): at most
``MAX_POINTS`` steps per group, whatever the window. Latency percentiles come from the summed
histograms, interpolated inside a bucket (``monitoring.stats.histogram``): a p95 of 240 ms means
"somewhere in the 200-300 ms bucket", read linearly.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone

from labeling.models import Project
from modeling.models import ModelServerStatus
from monitoring.buckets import LATENCY_EDGES_MS
from monitoring.models import RollupWatermark
from monitoring.selectors.rollup_reads import StepGrid, rollup_rows
from monitoring.stats.histogram import add_into, histogram_quantile
from monitoring.timerange import TimeRange
from webapp.models import Job

QUANTILES = (0.5, 0.95, 0.99)
SERVER_FRESH = timedelta(seconds=30)  # the model server writes its snapshot every few seconds
BEAT_STALE = timedelta(minutes=3)  # the rollup fold runs every 20 s
FAILED_JOBS_SHOWN = 5
MAX_POINTS = 180
CACHE_SECONDS = 120  # a fold every 20 s changes the key anyway; this only bounds memory
MINUTE_MARK, HOUR_MARK = "minute", "hour"  # monitoring.services.rollups' watermarks (selectors import no services)


@dataclass
class Totals:
    predictions: int = 0
    error_count: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latency_hist: list[int] = field(default_factory=list)
    latency_sum_ms: float = 0.0
    by_route: dict[str, int] = field(default_factory=dict)
    by_language: dict[str, int] = field(default_factory=dict)
    by_version: dict[int, int] = field(default_factory=dict)
    label_counts: dict[str, int] = field(default_factory=dict)

    def add(self, row: tuple[Any, ...]) -> None:
        """Add one rollup row, a tuple in ``FIELDS`` order (the page's hot loop: ~1,400 minutes x groups)."""
        _, version, route, language, n, error_count, errors, latency_hist, latency_sum_ms, label_counts = row
        self.predictions += n
        self.error_count += error_count
        if errors:
            for kind, count in errors.items():
                self.errors[kind] = self.errors.get(kind, 0) + count
        if latency_hist:
            add_into(self.latency_hist, latency_hist)
        self.latency_sum_ms += latency_sum_ms
        if n:
            self.by_route[route] = self.by_route.get(route, 0) + n
            self.by_language[language] = self.by_language.get(language, 0) + n
            self.by_version[version] = self.by_version.get(version, 0) + n
        if label_counts:
            for label, count in label_counts.items():
                self.label_counts[label] = self.label_counts.get(label, 0) + count

    def merge(self, other: Totals) -> None:
        self.predictions += other.predictions
        self.error_count += other.error_count
        self.latency_sum_ms += other.latency_sum_ms
        add_into(self.latency_hist, other.latency_hist)
        for mine, theirs in (
            (self.errors, other.errors),
            (self.by_route, other.by_route),
            (self.by_language, other.by_language),
            (self.by_version, other.by_version),
            (self.label_counts, other.label_counts),
        ):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count  # type: ignore[index, call-overload]

    @property
    def requests(self) -> int:
        """Texts served plus texts refused: the denominator of the error rate."""
        return self.predictions + self.error_count

    @property
    def error_rate(self) -> float | None:
        return self.error_count / self.requests if self.requests else None

    def latency(self) -> dict[str, float | None]:
        hist = self.latency_hist or [0] * (len(LATENCY_EDGES_MS) + 1)
        return {f"p{round(q * 100)}": histogram_quantile(q, hist, LATENCY_EDGES_MS).value for q in QUANTILES}

    def mean_latency_ms(self) -> float | None:
        return self.latency_sum_ms / self.predictions if self.predictions else None


@dataclass
class TrafficPoint:
    start: datetime
    totals: Totals


@dataclass
class Traffic:
    time_range: TimeRange
    step: timedelta
    points: list[TrafficPoint]  # only the steps that hold traffic
    totals: Totals

    @property
    def empty(self) -> bool:
        return self.totals.requests == 0


FIELDS = (
    "bucket_start",
    "version_number",
    "route",
    "language",
    "predictions",
    "error_count",
    "errors",
    "latency_hist",
    "latency_sum_ms",
    "label_counts",
)


def step_of(time_range: TimeRange, when: datetime, step: timedelta) -> datetime:
    """Return the start of the chart step that holds ``when`` (steps are aligned to the window's start)."""
    origin = time_range.start.replace(second=0, microsecond=0)
    if time_range.grain == "hour":
        origin = origin.replace(minute=0)
    index = max(0, (when - origin) // step)
    return origin + step * index


def chart_step(time_range: TimeRange) -> timedelta:
    """The grain, widened to whole grains so the window holds at most ``MAX_POINTS`` steps.

    Coarser than the picker's own step (400 points): building and serialising plotly figures grows with
    the points, and a 1,000-pixel chart does not show more than ~200 bars anyway.
    """
    base = timedelta(minutes=1) if time_range.grain == "minute" else timedelta(hours=1)
    return base * max(1, math.ceil(time_range.span / base / MAX_POINTS))


def traffic(*, project: Project, time_range: TimeRange) -> Traffic:
    """Return the window's traffic per chart step and in total (cached until the rollups change).

    The rollup rows only change when a fold runs (once a minute), and every fold moves its watermark's
    ``updated_at``: keyed by both watermarks and the window, a cached result is exactly what a fresh read
    would give. A relative window ("last 24h") moves with the clock but reads only closed minutes, so
    within one minute it reads the same rows: its key uses the minute. The first request after a fold
    pays the full read (~10,000 minute rows for 24 hours).
    """
    marks = dict(RollupWatermark.objects.filter(name__in=(MINUTE_MARK, HOUR_MARK)).values_list("name", "updated_at"))
    if MINUTE_MARK not in marks:  # nothing folded yet: nothing worth remembering
        return _traffic(project, time_range)
    if time_range.key == "custom":
        window = f"{time_range.start.isoformat()}/{time_range.end.isoformat()}"
    else:
        window = f"{time_range.key}@{time_range.end.replace(second=0, microsecond=0).isoformat()}"
    stamp = ",".join(f"{marks.get(name)}" for name in (MINUTE_MARK, HOUR_MARK))
    digest = hashlib.sha256(f"{time_range.grain}|{window}|{stamp}".encode()).hexdigest()[:32]
    key = f"monitoring:traffic:{project.pk}:{digest}"  # memcached-safe: no spaces, short
    cached = cache.get(key)
    if cached is not None:
        return replace(cached, time_range=time_range)
    result = _traffic(project, time_range)
    cache.set(key, result, CACHE_SECONDS)
    return result


def _traffic(project: Project, time_range: TimeRange) -> Traffic:
    step = chart_step(time_range)
    origin = step_of(time_range, time_range.start, step)
    points: dict[datetime, Totals] = defaultdict(Totals)
    for row in rollup_rows(project=project, time_range=time_range, fields=FIELDS, steps=StepGrid(origin, step)):
        points[row[0]].add(row)
    totals = Totals()
    for point in points.values():
        totals.merge(point)
    ordered = [TrafficPoint(start, points[start]) for start in sorted(points)]
    return Traffic(time_range, step, ordered, totals)


# --- model server and jobs -----------------------------------------------------------------------


@dataclass
class ServerModel:
    key: str
    alias: str
    version: int | None
    batches: int
    texts: int
    requests: int
    rejected: int
    failed_batches: int
    queued_texts: int
    mean_batch_texts: float | None
    batch_size_counts: dict[str, int]


@dataclass
class ServerStatus:
    name: str
    updated_at: datetime
    uptime_s: float | None
    models: list[ServerModel]
    log: dict[str, Any]


def _server_model(key: str, stats: dict[str, Any]) -> ServerModel:
    batches, texts = int(stats.get("batches") or 0), int(stats.get("texts") or 0)
    sizes = stats.get("batch_size_counts") or {}
    return ServerModel(
        key=key,
        alias=key.split(":", 1)[-1],
        version=stats.get("version"),
        batches=batches,
        texts=texts,
        requests=int(stats.get("requests") or 0),
        rejected=int(stats.get("rejected") or 0),
        failed_batches=int(stats.get("failed_batches") or 0),
        queued_texts=int(stats.get("queued_texts") or 0),
        mean_batch_texts=texts / batches if batches else None,
        batch_size_counts={str(size): int(count) for size, count in sorted(sizes.items(), key=lambda kv: int(kv[0]))},
    )


def model_servers(*, project: Project, now: datetime | None = None) -> list[ServerStatus]:
    """Return the fresh snapshots of the model servers, each reduced to this project's models."""
    now = now or timezone.now()
    prefix = f"{project.pk}:"
    out = []
    for status in ModelServerStatus.objects.filter(updated_at__gte=now - SERVER_FRESH).order_by("name"):
        stats = status.stats or {}
        models = [
            _server_model(key, value)
            for key, value in sorted((stats.get("models") or {}).items())
            if key.startswith(prefix)
        ]
        out.append(ServerStatus(status.name, status.updated_at, stats.get("uptime_s"), models, stats.get("log") or {}))
    return out


@dataclass
class JobHealth:
    running: int
    queued: int
    failed_in_range: int
    succeeded_in_range: int
    recent_failures: list[dict[str, Any]]
    beat_updated_at: datetime | None
    beat_stale: bool
    rollups_until: datetime | None


def job_health(*, project: Project, time_range: TimeRange, now: datetime | None = None) -> JobHealth:
    """Return the project's job counts, its recent failures, and whether the rollup beat is alive."""
    now = now or timezone.now()
    jobs = Job.objects.filter(project=project)
    open_counts = _by_status(jobs.filter(status__in=[Job.Status.RUNNING, Job.Status.QUEUED]))
    finished = jobs.filter(finished_at__gte=time_range.start, finished_at__lt=time_range.end)
    done = _by_status(finished)
    failures = list(
        finished.filter(status=Job.Status.FAILED)
        .order_by("-finished_at")
        .values("id", "kind", "finished_at", "message", "error")[:FAILED_JOBS_SHOWN]
    )
    for failure in failures:
        failure["error"] = (failure["error"] or failure["message"] or "").splitlines()[-1:] or [""]
        failure["error"] = failure["error"][0][:300]
    mark = RollupWatermark.objects.filter(name=MINUTE_MARK).first()
    return JobHealth(
        running=open_counts.get(Job.Status.RUNNING, 0),
        queued=open_counts.get(Job.Status.QUEUED, 0),
        failed_in_range=done.get(Job.Status.FAILED, 0),
        succeeded_in_range=done.get(Job.Status.SUCCEEDED, 0),
        recent_failures=failures,
        beat_updated_at=mark.updated_at if mark else None,
        beat_stale=mark is None or now - mark.updated_at > BEAT_STALE,
        rollups_until=mark.done_until if mark else None,
    )


def _by_status(jobs: Any) -> dict[str, int]:
    return {row["status"]: row["n"] for row in jobs.order_by().values("status").annotate(n=Count("id"))}

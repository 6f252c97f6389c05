"""SLO reads over the rollups: trailing-window counts per version, period totals, burn-rate series.

Availability counts every text a request carried: served predictions plus failed ones (``error_count``:
429, 503, 5xx, model errors), bad = failed. Latency counts served predictions, good = at or under the
threshold (the histogram buckets up to that edge). Shadow traffic is left out: nobody waits for it.

Windows end at ``data_until``: the minute rollups' watermark (the fold writes closed minutes only), or
now when no fold has run (tests and fresh installs write rollup rows directly). A window of length w
holds the minute buckets starting in [data_until - w, data_until).
"""

from __future__ import annotations

import functools
import operator
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Case, F, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, TruncHour
from django.utils import timezone

from labeling.models import Project
from monitoring.buckets import LATENCY_EDGES_MS
from monitoring.models import HourRollup, MinuteRollup, OutcomeRollup, RollupWatermark
from monitoring.stats.burn import WindowCounts, rolling_burn
from monitoring.timerange import MINUTE_RETENTION

COARSE_WINDOW = timedelta(days=1)  # on minute-grain charts, windows this long are summed from hours
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
SLOS = ("availability", "latency")


def _mark(name: str) -> datetime | None:
    mark = RollupWatermark.objects.filter(name=name).values_list("done_until", flat=True).first()
    return None if mark is None or mark.year <= 1970 else mark


def data_until(now: datetime | None = None) -> datetime:
    """Return the end of the complete minute data: the minute fold's watermark, capped at now."""
    now = now or timezone.now()
    mark = _mark("minute")
    return min(now, mark) if mark is not None else now


def _good_latency(threshold_ms: int) -> Any:
    """SQL: served predictions at or under the threshold (sum of the histogram's first buckets)."""
    upto = LATENCY_EDGES_MS.index(threshold_ms) + 1
    terms = [Coalesce(Cast(KT(f"latency_hist__{i}"), IntegerField()), Value(0)) for i in range(upto)]
    return functools.reduce(operator.add, terms)


def _served(qs: QuerySet[Any]) -> QuerySet[Any]:
    return qs.exclude(route="shadow")


@dataclass
class _Tally:
    predictions: int = 0
    errors: int = 0
    fast: int = 0

    def add(self, other: _Tally) -> None:
        self.predictions += other.predictions
        self.errors += other.errors
        self.fast += other.fast

    def counts(self, slo: str) -> WindowCounts:
        if slo == "availability":
            return WindowCounts(events=self.predictions + self.errors, bad=self.errors)
        return WindowCounts(events=self.predictions, bad=max(self.predictions - self.fast, 0))


def _tally_of(row: dict[str, Any]) -> _Tally:
    return _Tally(int(row["p"] or 0), int(row["e"] or 0), int(row["g"] or 0))


def _sums(threshold_ms: int) -> dict[str, Any]:
    return {"p": Sum("predictions"), "e": Sum("error_count"), "g": Sum(_good_latency(threshold_ms))}


@dataclass
class VersionWindows:
    """Per SLO ("availability", "latency"), the counts of each trailing window of one version."""

    version_number: int
    windows: dict[str, dict[timedelta, WindowCounts]] = field(default_factory=dict)


def window_counts(
    *, project: Project, until: datetime, windows: Sequence[timedelta], threshold_ms: int
) -> dict[int, VersionWindows]:
    """Return the trailing-window counts of every version with traffic in the longest window.

    One query: each minute row is put in the band of the shortest window holding it, the bands are
    summed per version in SQL, and window i is the running sum of bands 0..i.
    """
    ordered = sorted(windows)
    band = Case(
        *[When(bucket_start__gte=until - w, then=Value(i)) for i, w in enumerate(ordered)],
        default=Value(len(ordered)),
        output_field=IntegerField(),
    )
    rows = (
        _served(MinuteRollup.objects.filter(project=project))
        .filter(bucket_start__gte=until - ordered[-1], bucket_start__lt=until)
        .annotate(band=band)
        .values("version_number", "band")
        .annotate(**_sums(threshold_ms))
    )
    bands: dict[int, dict[int, _Tally]] = defaultdict(dict)
    for row in rows:
        bands[row["version_number"]][row["band"]] = _tally_of(row)
    result = {}
    for version, by_band in sorted(bands.items()):
        running = _Tally()
        out = VersionWindows(version, {slo: {} for slo in SLOS})
        for i, window in enumerate(ordered):
            running.add(by_band.get(i, _Tally()))
            for slo in SLOS:
                out.windows[slo][window] = running.counts(slo)
        result[version] = out
    return result


def quality_window_counts(
    *, project: Project, now: datetime, windows: Sequence[timedelta]
) -> tuple[datetime | None, dict[int, dict[timedelta, WindowCounts]]]:
    """Return (the end of the audited data, per version the audited outcomes in each trailing window).

    Audit labels arrive hours or days after the prediction, so the windows end at the latest hour that
    has audited outcomes (at most now) rather than at now, where they would always look empty.
    """
    audited = OutcomeRollup.objects.filter(project=project, source=OutcomeRollup.Source.AUDIT)
    latest = audited.filter(bucket_start__lte=now).order_by("-bucket_start").values_list("bucket_start", flat=True)
    last = latest.first()
    if last is None:
        return None, {}
    until = min(now, last + HOUR)
    ordered = sorted(windows)
    band = Case(
        *[When(bucket_start__gte=until - w, then=Value(i)) for i, w in enumerate(ordered)],
        default=Value(len(ordered)),
        output_field=IntegerField(),
    )
    rows = (
        audited.filter(bucket_start__gte=until - ordered[-1], bucket_start__lt=until)
        .annotate(band=band)
        .values("version_number", "band")
        .annotate(n=Sum("count"), wrong=Sum("count", filter=~Q(true_label=F("predicted_label"))))
    )
    bands: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)
    for row in rows:
        bands[row["version_number"]][row["band"]] = (int(row["n"] or 0), int(row["wrong"] or 0))
    result: dict[int, dict[timedelta, WindowCounts]] = {}
    for version, by_band in sorted(bands.items()):
        events = bad = 0
        result[version] = {}
        for i, window in enumerate(ordered):
            n, wrong = by_band.get(i, (0, 0))
            events, bad = events + n, bad + wrong
            result[version][window] = WindowCounts(events=events, bad=bad)
    return until, result


def _hour_boundary(start: datetime, end: datetime) -> datetime:
    """Hours before the boundary are read from the hour rollups, later ones from the minute rollups."""
    mark = _mark("hour")
    if mark is None:
        return start  # no hour fold yet: the minutes are all there is
    # Minutes older than their retention are gone; the hours must serve them even if not yet folded.
    return min(max(mark, start), end)


def period_counts(*, project: Project, start: datetime, end: datetime, threshold_ms: int) -> dict[str, WindowCounts]:
    """Return availability and latency counts over [start, end): whole folded hours, then minutes."""
    boundary = _hour_boundary(start, end)
    tally = _Tally()
    for model, lo, hi in ((HourRollup, start, boundary), (MinuteRollup, boundary, end)):
        if lo >= hi:
            continue
        row = (
            _served(model.objects.filter(project=project))
            .filter(bucket_start__gte=lo, bucket_start__lt=hi)
            .aggregate(**_sums(threshold_ms))
        )
        tally.add(_tally_of(row))
    return {slo: tally.counts(slo) for slo in SLOS}


def quality_period_counts(*, project: Project, start: datetime, end: datetime) -> WindowCounts:
    """Return the audited outcomes (events) and the wrong ones (bad) over [start, end)."""
    row = OutcomeRollup.objects.filter(
        project=project, source=OutcomeRollup.Source.AUDIT, bucket_start__gte=start, bucket_start__lt=end
    ).aggregate(n=Sum("count"), wrong=Sum("count", filter=~Q(true_label=F("predicted_label"))))
    return WindowCounts(events=int(row["n"] or 0), bad=int(row["wrong"] or 0))


@dataclass(frozen=True)
class BucketSeries:
    """Dense per-bucket counts from ``start`` in steps of ``grain`` (availability and latency)."""

    start: datetime
    grain: timedelta
    counts: dict[str, tuple[list[int], list[int]]]  # slo -> (events, bad) per bucket

    def time_of(self, index: int) -> datetime:
        return self.start + self.grain * index


def bucket_series(
    *, project: Project, start: datetime, end: datetime, grain: timedelta, threshold_ms: int
) -> BucketSeries:
    """Return the counts of every bucket in [start, end) at minute or hour grain, zeros where no traffic.

    Hour grain reads the folded hours and the minutes after the hour fold's watermark, truncated to
    their hour; minute grain reads the minutes (kept 14 days).
    """
    n = max(0, int((end - start) / grain))
    tallies = [_Tally() for _ in range(n)]

    def fold(rows: Any) -> None:
        for row in rows:
            index = int((row["t"] - start) / grain)
            if 0 <= index < n:
                tallies[index].add(_tally_of(row))

    if grain == MINUTE:
        lo = max(start, timezone.now() - MINUTE_RETENTION)
        qs = _served(MinuteRollup.objects.filter(project=project)).filter(bucket_start__gte=lo, bucket_start__lt=end)
        fold(qs.values(t=F("bucket_start")).annotate(**_sums(threshold_ms)))
    else:
        boundary = _hour_boundary(start, end)
        hours = _served(HourRollup.objects.filter(project=project)).filter(
            bucket_start__gte=start, bucket_start__lt=boundary
        )
        fold(hours.values(t=F("bucket_start")).annotate(**_sums(threshold_ms)))
        minutes = _served(MinuteRollup.objects.filter(project=project)).filter(
            bucket_start__gte=boundary, bucket_start__lt=end
        )
        fold(minutes.annotate(t=TruncHour("bucket_start")).values("t").annotate(**_sums(threshold_ms)))
    counts = {}
    for slo in SLOS:
        per = [t.counts(slo) for t in tallies]
        counts[slo] = ([c.events for c in per], [c.bad for c in per])
    return BucketSeries(start=start, grain=grain, counts=counts)


@dataclass(frozen=True)
class BurnSeries:
    """Burn over each trailing window at each chart point (the end of a bucket), per SLO."""

    times: list[datetime]
    burns: dict[str, dict[timedelta, list[float | None]]]


def burn_series(
    *,
    project: Project,
    start: datetime,
    end: datetime,
    step: timedelta,
    fine: bool,
    targets: Mapping[str, float],
    windows: Sequence[timedelta],
    threshold_ms: int,
) -> BurnSeries:
    """Return the burn over each window (as long as a bucket or longer) at points ``step`` apart in (start, end].

    ``fine``: minute buckets (a range within the minutes kept), else hours. The buckets are read from
    ``start`` minus the longest window, so the first point's long windows are full. On a fine chart the
    windows of a day or more are summed from hour buckets (the hour holding each point): their burn moves
    slowly, and minute buckets for a 3-day lookback were most of the SLO page's time (5,760 buckets).
    """
    grain = MINUTE if fine else HOUR
    windows = [w for w in windows if w >= grain]
    coarse = [w for w in windows if fine and w >= COARSE_WINDOW]
    times, burns = _burns_at(
        project, start, end, step, grain, [w for w in windows if w not in coarse], targets, threshold_ms
    )
    if coarse:
        hour_times, hour_burns = _burns_at(project, start, end, HOUR, HOUR, coarse, targets, threshold_ms)
        # The hour bucket holding each fine point: the last hour point at or after it (points are bucket ends).
        picks = [min(bisect_left(hour_times, t), len(hour_times) - 1) for t in times]
        for slo, by_window in hour_burns.items():
            for window, values in by_window.items():
                burns[slo][window] = [values[i] if values else None for i in picks]
    return BurnSeries(times=times, burns=burns)


def _burns_at(
    project: Project,
    start: datetime,
    end: datetime,
    step: timedelta,
    grain: timedelta,
    windows: Sequence[timedelta],
    targets: Mapping[str, float],
    threshold_ms: int,
) -> tuple[list[datetime], dict[str, dict[timedelta, list[float | None]]]]:
    lookback = max(windows) if windows else timedelta(0)
    origin = _floor(start - lookback, grain)
    series = bucket_series(project=project, start=origin, end=end, grain=grain, threshold_ms=threshold_ms)
    n = len(series.counts[SLOS[0]][0])
    first = max(0, int((start - origin) / grain))
    stride = max(1, int(step / grain))
    indices = list(range(first, n, stride))
    if n and (not indices or indices[-1] != n - 1):
        indices.append(n - 1)
    times = [series.time_of(i) + grain for i in indices]
    burns: dict[str, dict[timedelta, list[float | None]]] = {}
    for slo, target in targets.items():
        events, bad = series.counts[slo]
        burns[slo] = {}
        for window in windows:
            rolled = rolling_burn(events, bad, window=int(window / grain), objective=target)
            burns[slo][window] = [rolled[i] for i in indices]
    return times, burns


def _floor(moment: datetime, grain: timedelta) -> datetime:
    moment = moment.replace(second=0, microsecond=0)
    return moment.replace(minute=0) if grain == HOUR else moment

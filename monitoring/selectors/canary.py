"""Live agreement between production and the canary and shadow versions, read from the raw prediction log.

Unlike the other monitoring pages this one cannot read the rollups: agreement needs the individual
predictions (which text, which label, when). It stays cheap by construction: the window is at most
24 hours, each route's query walks the ``(project, created_at)`` index newest first and stops after
``ROW_CAP`` rows, and the (possibly long) texts are fetched only for the few disagreements shown.
When a route hits the cap, the analysed window starts at its oldest kept row for every route alike,
so production and the other version always cover the same stretch of time (the page says so).

Pairing (see ``monitoring.stats.agreement``): a shadow row scores a copy of a production request, so it
pairs with the production row of the same ``text_sha256`` just before it (within ``SHADOW_MAX_GAP_S``:
the shadow batch may queue behind production work). Canary callers are a different population: a
canary row pairs only where production served the same text in the window, nearest in time.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import TextField
from django.db.models.functions import Cast

from labeling.models import Label, Project
from modeling.models import Alias, PredictionLog, ReleasePolicy
from monitoring.sql import Epoch
from monitoring.stats.accuracy import Proportion
from monitoring.stats.agreement import (
    GroupAgreement,
    LabelShift,
    Mean,
    Pair,
    SeriesPoint,
    Served,
    Transitions,
    agreement,
    agreement_by_group,
    agreement_series,
    histogram,
    label_shift,
    mean_difference,
    mean_with_interval,
    pair_by_text,
    transitions,
)
from monitoring.timerange import TimeRange, parse_time_range
from webapp.errors import ValidationFailed

MAX_SPAN = timedelta(hours=24)
RANGE_CHOICES = ("1h", "6h", "24h")
# Per route. 5,000 newest pairs already pin agreement to about ±1.4 points (Wilson, 95%, at 50%); more rows
# only cost server time (20,000 took ~420 ms of CPU per request at 1M predictions a month).
ROW_CAP = 5_000
SHADOW_MAX_GAP_S = 120.0
SAMPLE_DISAGREEMENTS = 25
SERIES_BUCKETS = 48
CONFIDENCE_BINS = 20
COMPARED = (PredictionLog.Route.SHADOW, PredictionLog.Route.CANARY)


def canary_time_range(params: Mapping[str, str], *, now: datetime | None = None) -> TimeRange:
    """Return the requested window, refusing one longer than 24 hours (this page reads the raw log)."""
    time_range = parse_time_range(params, now=now)
    if time_range.span > MAX_SPAN:
        raise ValidationFailed(
            "The canary page reads individual predictions, so it shows at most 24 hours: "
            f"choose {', '.join(RANGE_CHOICES)} or a from/to window of at most 24 hours.",
            details={"field": "range", "max_hours": 24},
        )
    return time_range


@dataclass(frozen=True)
class Disagreement:
    """One text the two versions labelled differently (``text`` only when the project logs texts)."""

    at: datetime
    language: str
    production_version: int
    production_label: str
    production_confidence: float
    other_version: int
    other_label: str
    other_confidence: float
    text: str | None


@dataclass(frozen=True)
class RouteComparison:
    """The canary or the shadow version(s) against production over the analysed window."""

    route: str
    rows: int
    capped: bool
    versions: dict[int, int]  # version number -> rows
    pairs: int
    agreement: Proportion
    transitions: Transitions
    by_language: list[GroupAgreement]
    series: list[SeriesPoint]
    label_shift: LabelShift
    confidence: Mean
    confidence_delta: Mean  # this route's mean confidence minus production's
    confidence_histogram: list[int]
    disagreements: list[Disagreement]


@dataclass(frozen=True)
class CanaryReport:
    time_range: TimeRange
    since: datetime  # the analysed window is [since, time_range.end); later than the start when capped
    truncated: bool  # a route hit ROW_CAP, so ``since`` is later than the window's start
    labels: list[str]
    aliases: dict[str, int]
    canary_percent: float
    shadow_enabled: bool
    production_rows: int
    production_capped: bool
    production_versions: dict[int, int]
    production_confidence: Mean
    production_histogram: list[int]
    step_s: float
    row_cap: int
    shadow: RouteComparison
    canary: RouteComparison


@dataclass
class _Loaded:
    rows: list[Served]
    versions: dict[str, int]  # row key -> version number
    capped: bool


def _load(project: Project, route: str, time_range: TimeRange) -> _Loaded:
    """Return one route's rows in the window, newest first, at most ``ROW_CAP`` (capped: more existed).

    Ids come as text and times as epoch seconds: parsing 10,000 UUIDs and timezone-aware datetimes was
    most of the page's time.
    """
    found = list(
        PredictionLog.objects.filter(
            project=project, route=route, created_at__gte=time_range.start, created_at__lt=time_range.end
        )
        .order_by("-created_at")
        .values_list(
            Cast("id", TextField()), Epoch("created_at"), "text_sha256", "label", "confidence", "language", "script",
            "version_number",
        )[: ROW_CAP + 1]
    )  # fmt: skip
    rows, versions = [], {}
    for text_id, at, sha, label, confidence, language, script, version in found[:ROW_CAP]:
        key = text_id if "-" in text_id else str(uuid.UUID(text_id))  # SQLite keeps UUIDs as bare hex
        group = language or (f"{script} script" if script else "unknown")
        rows.append(Served(key, at, sha, label, float(confidence), group))
        versions[key] = version
    return _Loaded(rows, versions, capped=len(found) > ROW_CAP)


def _since(time_range: TimeRange, loaded: list[_Loaded]) -> float:
    """Return the analysed window's start: the latest oldest-kept row among capped routes, else the start."""
    starts = [time_range.start.timestamp()] + [min(r.at for r in one.rows) for one in loaded if one.capped]
    return max(starts)


def canary_report(*, project: Project, time_range: TimeRange) -> CanaryReport:
    """Return production against the canary and the shadow version(s) over ``time_range`` (at most 24 h)."""
    routes = {route: _load(project, route, time_range) for route in (PredictionLog.Route.PRODUCTION, *COMPARED)}
    since = _since(time_range, list(routes.values()))
    # Production rows a little older than ``since`` stay available as twins: a shadow copy just after
    # the cut pairs with the production answer just before it. They are not counted themselves.
    production = routes[PredictionLog.Route.PRODUCTION]
    twins = [row for row in production.rows if row.at >= since - SHADOW_MAX_GAP_S]
    for one in routes.values():
        one.rows = [row for row in one.rows if row.at >= since]
    labels = list(Label.objects.filter(project=project).order_by("order", "id").values_list("name", flat=True))
    policy = ReleasePolicy.objects.filter(project=project).first() or ReleasePolicy(project=project)
    step = max(60.0, math.ceil((time_range.end.timestamp() - since) / SERIES_BUCKETS / 60) * 60)
    compared = {
        route: _compare(
            project, route, production, twins, routes[route], labels, since, time_range.end.timestamp(), step
        )
        for route in COMPARED
    }
    confidences = [row.confidence for row in production.rows]
    return CanaryReport(
        time_range=time_range,
        since=datetime.fromtimestamp(since, tz=UTC),
        truncated=since > time_range.start.timestamp(),
        labels=labels,
        aliases=dict(Alias.objects.filter(project=project).values_list("name", "version__number")),
        canary_percent=float(policy.canary_percent),
        shadow_enabled=bool(policy.shadow_enabled),
        production_rows=len(production.rows),
        production_capped=production.capped,
        production_versions=_versions(production),
        production_confidence=mean_with_interval(confidences),
        production_histogram=histogram(confidences, bins=CONFIDENCE_BINS),
        step_s=step,
        row_cap=ROW_CAP,
        shadow=compared[PredictionLog.Route.SHADOW],
        canary=compared[PredictionLog.Route.CANARY],
    )


def _versions(loaded: _Loaded) -> dict[int, int]:
    counts = Counter(loaded.versions[row.key] for row in loaded.rows)
    return dict(sorted(counts.items()))


def _compare(
    project: Project,
    route: str,
    production: _Loaded,
    twins: list[Served],
    other: _Loaded,
    labels: list[str],
    since: float,
    end: float,
    step: float,
) -> RouteComparison:
    shadow = route == PredictionLog.Route.SHADOW
    pairs = pair_by_text(twins, other.rows, max_gap_s=SHADOW_MAX_GAP_S if shadow else None, after_only=shadow)
    mine = [row.confidence for row in other.rows]
    theirs = [row.confidence for row in production.rows]
    return RouteComparison(
        route=route,
        rows=len(other.rows),
        capped=other.capped,
        versions=_versions(other),
        pairs=len(pairs),
        agreement=agreement(pairs),
        transitions=transitions(pairs, labels),
        by_language=agreement_by_group(pairs),
        series=agreement_series(pairs, start=since, end=end, step=step),
        label_shift=label_shift(
            Counter(row.label for row in production.rows), Counter(row.label for row in other.rows), labels
        ),
        confidence=mean_with_interval(mine),
        confidence_delta=mean_difference(mine, theirs),
        confidence_histogram=histogram(mine, bins=CONFIDENCE_BINS),
        disagreements=_disagreements(project, pairs, production, other),
    )


def _disagreements(project: Project, pairs: list[Pair], production: _Loaded, other: _Loaded) -> list[Disagreement]:
    """Return the newest disagreements, with their text where the log kept it (one query for the texts)."""
    newest = sorted((pair for pair in pairs if not pair.agree), key=lambda pair: -pair.other.at)[:SAMPLE_DISAGREEMENTS]
    ids = [pair.production.key for pair in newest] + [pair.other.key for pair in newest]
    texts = dict(
        PredictionLog.objects.filter(project=project, id__in=ids, text__isnull=False).values_list("id", "text")
    )
    texts = {str(key): value for key, value in texts.items()}
    return [
        Disagreement(
            at=datetime.fromtimestamp(pair.other.at, tz=UTC),
            language=pair.production.group,
            production_version=production.versions[pair.production.key],
            production_label=pair.production.label,
            production_confidence=pair.production.confidence,
            other_version=other.versions[pair.other.key],
            other_label=pair.other.label,
            other_confidence=pair.other.confidence,
            text=texts.get(pair.production.key) or texts.get(pair.other.key),
        )
        for pair in newest
    ]

"""The time-range picker's model: which window a monitoring page or API call shows, and at what grain.

``?range=1h|6h|24h|7d|30d|90d|365d`` (default 24h), or ``?from=…&to=…`` (ISO 8601). Windows up to two
days read the per-minute rollups (kept 14 days); longer ones, or ones reaching past 14 days, read the
per-hour rollups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from webapp.errors import ValidationFailed

RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "365d": timedelta(days=365),
}
DEFAULT_RANGE = "24h"
MINUTE_RETENTION = timedelta(days=14)
HOUR_RETENTION = timedelta(days=396)  # 13 months
MINUTE_GRAIN_MAX_SPAN = timedelta(days=2)


@dataclass(frozen=True)
class TimeRange:
    """A half-open window [start, end) and the rollup grain that serves it."""

    start: datetime
    end: datetime
    key: str  # one of RANGES, or "custom"
    grain: str  # "minute" or "hour"

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    @property
    def step(self) -> timedelta:
        """The chart's point spacing: the grain, widened so a chart holds at most ~400 points."""
        base = timedelta(minutes=1) if self.grain == "minute" else timedelta(hours=1)
        factor = max(1, int(self.span / base) // 400 + (1 if int(self.span / base) % 400 else 0))
        return base * factor

    def label(self) -> str:
        if self.key != "custom":
            return f"last {self.key}"
        return f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"


def _parse_instant(value: str, name: str) -> datetime:
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:  # well formed but impossible, e.g. month 13
        parsed = None
    if parsed is None:
        raise ValidationFailed(f"'{name}' must be an ISO 8601 date and time, e.g. 2026-11-21T14:00:00Z; got {value!r}.")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


def parse_time_range(params: Mapping[str, str], *, now: datetime | None = None) -> TimeRange:
    """Return the window the query parameters ask for; a malformed one is a ValidationFailed (400)."""
    now = now or timezone.now()
    if params.get("from") or params.get("to"):
        start = _parse_instant(params.get("from", ""), "from")
        end = _parse_instant(params["to"], "to") if params.get("to") else now
        if end <= start:
            raise ValidationFailed("'from' must be before 'to'.")
        if end - start > HOUR_RETENTION:
            raise ValidationFailed("A window spans at most 13 months (the hourly rollups' retention).")
        return TimeRange(start, end, "custom", _grain(start, end, now))
    key = params.get("range") or DEFAULT_RANGE
    if key not in RANGES:
        raise ValidationFailed(f"Unknown range {key!r}; use one of {', '.join(RANGES)} or from/to.")
    return TimeRange(now - RANGES[key], now, key, _grain(now - RANGES[key], now, now))


def _grain(start: datetime, end: datetime, now: datetime) -> str:
    if end - start <= MINUTE_GRAIN_MAX_SPAN and start >= now - MINUTE_RETENTION:
        return "minute"
    return "hour"

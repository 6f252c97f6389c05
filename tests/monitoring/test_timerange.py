"""The time-range picker's parsing: named ranges, custom windows, the rollup grain, and refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.timerange import parse_time_range
from webapp.errors import ValidationFailed

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("key", "grain"), [("1h", "minute"), ("24h", "minute"), ("7d", "hour"), ("365d", "hour")])
def test_named_ranges_end_now_and_pick_their_grain(key, grain):
    window = parse_time_range({"range": key}, now=NOW)
    assert (window.end, window.key, window.grain) == (NOW, key, grain)


def test_default_is_the_last_24_hours():
    window = parse_time_range({}, now=NOW)
    assert (window.start, window.end, window.key) == (NOW - timedelta(hours=24), NOW, "24h")


def test_a_custom_window_older_than_the_minute_rollups_reads_hours():
    window = parse_time_range({"from": "2026-10-01T00:00:00Z", "to": "2026-10-01T06:00:00Z"}, now=NOW)
    assert (window.key, window.grain, window.span) == ("custom", "hour", timedelta(hours=6))
    recent = parse_time_range({"from": "2026-11-21T06:00", "to": "2026-11-21T09:00"}, now=NOW)
    assert (recent.grain, recent.start.tzinfo is not None) == ("minute", True)


def test_the_chart_step_keeps_a_chart_under_about_400_points():
    assert parse_time_range({"range": "1h"}, now=NOW).step == timedelta(minutes=1)
    assert parse_time_range({"range": "24h"}, now=NOW).step == timedelta(minutes=4)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"range": "2w"}, "Unknown range"),
        ({"from": "yesterday"}, "ISO 8601"),
        ({"from": "2026-13-01T00:00:00Z"}, "ISO 8601"),  # well formed, impossible month: a 400, not a 500
        ({"from": "2026-11-21T10:00:00Z", "to": "2026-11-21T09:00:00Z"}, "before"),
        ({"from": "2024-01-01T00:00:00Z", "to": "2026-11-21T00:00:00Z"}, "13 months"),
    ],
)
def test_bad_ranges_are_refused_with_a_message(params, message):
    with pytest.raises(ValidationFailed, match=message):
        parse_time_range(params, now=NOW)

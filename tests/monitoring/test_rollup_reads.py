"""Rollup reads summed per chart step in SQL: hand-built rollup rows, hand-computed sums (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitoring.models import HourRollup, MinuteRollup, RollupWatermark
from monitoring.selectors.rollup_reads import StepGrid, rollup_rows
from monitoring.selectors.traffic import FIELDS
from monitoring.timerange import TimeRange

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _minute(project, at, *, n=1, version=1, route="production", language="en", labels=None, errors=None, hist=None):
    return MinuteRollup.objects.create(
        project=project,
        bucket_start=at,
        version_number=version,
        route=route,
        language=language,
        predictions=n,
        error_count=sum((errors or {}).values()),
        errors=errors or {},
        latency_hist=hist if hist is not None else [n] + [0] * 10,
        latency_sum_ms=5.0 * n,
        label_counts=labels if labels is not None else {"positive": n},
    )


def _by_key(rows):
    return {row[:4]: row[4:] for row in rows}


def test_minute_rows_are_summed_per_step_and_group_with_every_json_key(project):
    window = TimeRange(T0, T0 + timedelta(hours=1), "custom", "minute")
    # Step 1 (10:00-10:09): three minutes of production/en, one of canary/en.
    _minute(project, T0, n=2, labels={"5": 1, "a__b": 1}, errors={"overloaded": 3}, hist=[1, 1] + [0] * 9)
    _minute(project, T0 + timedelta(minutes=4), n=3, labels={"5": 3}, hist=[0, 0, 3] + [0] * 8)
    _minute(project, T0 + timedelta(minutes=9), n=1, labels={"a__b": 1}, errors={"model_error": 1}, hist=[])
    _minute(project, T0 + timedelta(minutes=5), n=4, version=2, route="canary", labels={"5": 4})
    # Step 2 (10:10-10:19) and a bucket outside the window.
    _minute(project, T0 + timedelta(minutes=10), n=7, language="de", labels={"5": 7})
    _minute(project, T0 + timedelta(hours=2), n=100)

    rows = rollup_rows(project=project, time_range=window, fields=FIELDS, steps=StepGrid(T0, timedelta(minutes=10)))

    got = _by_key(rows)
    assert set(got) == {
        (T0, 1, "production", "en"),
        (T0, 2, "canary", "en"),
        (T0 + timedelta(minutes=10), 1, "production", "de"),
    }
    n, errors, failed, hist, latency_sum, labels = got[(T0, 1, "production", "en")]
    assert (n, errors, latency_sum) == (6, 4, 30.0)
    assert failed == {"overloaded": 3, "model_error": 1}
    assert hist == [1, 1, 3] + [0] * 8  # the empty histogram of the last minute adds nothing
    assert labels == {"5": 4, "a__b": 2}  # a digit key is an object key, a double underscore is no path
    assert got[(T0, 2, "canary", "en")][5] == {"5": 4}
    assert got[(T0 + timedelta(minutes=10), 1, "production", "de")][:1] == (7,)


def test_step_sums_equal_the_row_by_row_read(project):
    window = TimeRange(T0, T0 + timedelta(hours=2), "custom", "minute")
    for minute in range(0, 120, 7):
        _minute(project, T0 + timedelta(minutes=minute), n=minute % 5 + 1, language=("en", "fr")[minute % 2])
    grid = StepGrid(T0, timedelta(minutes=25))
    expected: dict[tuple, int] = {}
    for row in rollup_rows(project=project, time_range=window, fields=FIELDS):
        step = grid.start_of((row[0] - T0) // grid.step)
        key = (step, *row[1:4])
        expected[key] = expected.get(key, 0) + row[4]
    summed = {row[:4]: row[4] for row in rollup_rows(project=project, time_range=window, fields=FIELDS, steps=grid)}
    assert summed == expected
    assert sum(summed.values()) == sum(minute % 5 + 1 for minute in range(0, 120, 7))


def test_a_bucket_starting_before_the_window_counts_in_its_first_step(project):
    start = T0 + timedelta(seconds=30)  # "last 24h" starts mid-minute
    window = TimeRange(start, start + timedelta(minutes=30), "custom", "minute")
    _minute(project, T0, n=2)
    rows = rollup_rows(project=project, time_range=window, fields=FIELDS, steps=StepGrid(T0, timedelta(minutes=10)))
    assert [(row[0], row[4]) for row in rows] == [(T0, 2)]


def test_hour_grain_adds_hour_rows_and_the_minutes_past_the_hour_watermark(project):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now.replace(minute=0) - timedelta(hours=5)
    window = TimeRange(start, now, "custom", "hour")
    RollupWatermark.objects.create(name="hour", done_until=now.replace(minute=0) - timedelta(hours=1))
    for hour in range(4):
        HourRollup.objects.create(
            project=project,
            bucket_start=start + timedelta(hours=hour),
            version_number=1,
            route="production",
            language="en",
            predictions=10,
            latency_hist=[10] + [0] * 10,
            label_counts={"positive": 10},
        )
    newest = now.replace(minute=0) - timedelta(hours=1)  # not folded into hours yet
    _minute(project, newest, n=3)
    rows = rollup_rows(project=project, time_range=window, fields=FIELDS, steps=StepGrid(start, timedelta(hours=2)))
    per_step: dict[datetime, int] = {}
    for row in rows:
        per_step[row[0]] = per_step.get(row[0], 0) + row[4]
    assert per_step == {start: 20, start + timedelta(hours=2): 20, start + timedelta(hours=4): 3}

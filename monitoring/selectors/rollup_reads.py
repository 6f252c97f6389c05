"""Reads of the minute and hour rollups for a window, row by row or summed per chart step in SQL.

A window reads the grain its time range chose. Hour grain reads hour rows plus the minute rows at both
ends (the partial first hour while minutes are kept, and the tail past the hour fold's watermark), so it
counts what a minute-grain read would.

``rollup_rows(..., steps=StepGrid(origin, step))`` sums the rows of each chart step in the database: a
24-hour window is ~10,000 minute rows of (version, route, language) groups, and fetching them one by one
into Python (timestamps parsed, JSON decoded, dictionaries added) was most of the Service page's time;
grouped by step it is ~1,400 rows whose JSON columns arrive already summed, key by key. The keys of
``label_counts`` are read from the window first (a label renamed since still counts under its old name).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import F, Sum, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from labeling.models import Project
from modeling.models import PredictionError
from monitoring.buckets import LATENCY_EDGES_MS
from monitoring.models import HourRollup, MinuteRollup, RollupWatermark
from monitoring.sql import JsonCount, StepIndex
from monitoring.timerange import MINUTE_RETENTION, TimeRange

HOUR_MARK = "hour"  # monitoring.services.rollups' hour watermark (selectors import no services)
JSON_FIELDS = frozenset({"errors", "latency_hist", "label_counts"})
GROUP_FIELDS = frozenset({"version_number", "route", "language"})
ERROR_KINDS = tuple(kind for kind, _ in PredictionError.Kind.choices)
LATENCY_BUCKETS = len(LATENCY_EDGES_MS) + 1


@dataclass(frozen=True)
class StepGrid:
    """Chart steps of ``step`` from ``origin``: a bucket belongs to the step holding its start (the first
    step also takes buckets that start before ``origin``, as a bucket reaching into the window counts)."""

    origin: datetime
    step: timedelta

    def start_of(self, index: int) -> datetime:
        return self.origin + self.step * max(0, index)


def rollup_rows(
    *,
    project: Project,
    time_range: TimeRange,
    fields: tuple[str, ...],
    steps: StepGrid | None = None,
) -> list[tuple[Any, ...]]:
    """Return the window's rollup rows as tuples in ``fields`` order (``bucket_start`` first).

    With ``steps``, the rows of each (step, version, route, language) come summed, ``bucket_start`` being
    the step's start; a group may come as more than one row (one per rollup table read), so callers add.
    """
    pieces = _pieces(time_range)
    if steps is None:
        return _decoded([row for model, lo, hi in pieces for row in _values(model, project, lo, hi, fields)], fields)
    label_keys = _label_keys(project, pieces) if "label_counts" in fields else []
    rows = []
    for model, lo, hi in pieces:
        rows += _step_sums(model, project, lo, hi, fields, steps, label_keys)
    return rows


def _pieces(time_range: TimeRange) -> list[tuple[Any, datetime, datetime]]:
    """(rollup model, after, before) of each read the window needs, bounds exclusive."""
    minute, unit = timedelta(minutes=1), timedelta(minutes=1) if time_range.grain == "minute" else timedelta(hours=1)
    # A bucket that starts before the window but reaches into it counts: the picker's "last 24h" starts
    # mid-minute, and a bucket's traffic cannot be split.
    start = time_range.start - unit
    if time_range.grain == "minute":
        return [(MinuteRollup, start, time_range.end)]
    # Hours are folded once no minute of theirs can change (a few minutes after they close): the tail of
    # the window past the hour fold's watermark comes from the minute rows, or the newest hour is missing.
    # The window's first, partial hour comes from minute rows too while they are kept (14 days), so the
    # window counts what a minute-grain read of it would; older, that hour's bucket counts whole.
    hours_until = RollupWatermark.objects.filter(name=HOUR_MARK).values_list("done_until", flat=True).first()
    hours_until = min(hours_until or start, time_range.end)
    pieces: list[tuple[Any, datetime, datetime]] = []
    if time_range.start >= timezone.now() - MINUTE_RETENTION:
        whole_from = time_range.start.replace(minute=0, second=0, microsecond=0)
        if whole_from < time_range.start:
            whole_from += timedelta(hours=1)
        pieces.append((MinuteRollup, time_range.start - minute, min(whole_from, time_range.end)))
        pieces.append((HourRollup, whole_from - minute, hours_until))
    else:
        whole_from = time_range.start
        pieces.append((HourRollup, start, hours_until))
    pieces.append((MinuteRollup, max(hours_until, whole_from) - minute, time_range.end))
    return [(model, lo, hi) for model, lo, hi in pieces if hi > lo]


def _window(model: Any, project: Project, after: datetime, before: datetime) -> Any:
    return model.objects.filter(project=project, bucket_start__gt=after, bucket_start__lt=before).order_by()


def _values(model: Any, project: Project, after: datetime, before: datetime, fields: tuple[str, ...]) -> list[Any]:
    """Rows with ``after < bucket_start < before``; the JSON columns as text (decoded in one go)."""
    columns = [Cast(name, TextField()) if name in JSON_FIELDS else F(name) for name in fields]
    return list(_window(model, project, after, before).values_list(*columns))


def _decoded(rows: list[Any], fields: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Decode the JSON columns of all rows in one ``json.loads`` (one per value is Django's way, and slow)."""
    positions = [index for index, name in enumerate(fields) if name in JSON_FIELDS]
    if not rows or not positions:
        return rows
    decoded = json.loads("[" + ",".join("[" + ",".join(row[i] for i in positions) + "]" for row in rows) + "]")
    out = []
    for row, values in zip(rows, decoded, strict=True):
        row = list(row)
        for index, value in zip(positions, values, strict=True):
            row[index] = value
        out.append(tuple(row))
    return out


def _label_keys(project: Project, pieces: list[tuple[Any, datetime, datetime]]) -> list[str]:
    """The predicted labels present in ``label_counts`` over the pieces (one small query each)."""
    keys: set[str] = set()
    for model, lo, hi in pieces:
        table = connection.ops.quote_name(model._meta.db_table)
        if connection.vendor == "postgresql":
            sql = f"SELECT DISTINCT jsonb_object_keys(label_counts) FROM {table} AS r"  # noqa: S608 (our table)
        else:
            sql = f"SELECT DISTINCT j.key FROM {table} AS r, json_each(r.label_counts) AS j"  # noqa: S608
        where = " WHERE r.project_id = %s AND r.bucket_start > %s AND r.bucket_start < %s"
        with connection.cursor() as cursor:
            cursor.execute(sql + where, [project.pk, lo, hi])
            keys.update(key for (key,) in cursor.fetchall())
    return sorted(keys)


def _json_sums(fields: tuple[str, ...], label_keys: list[str]) -> dict[str, list[tuple[str | int, str]]]:
    """Per JSON field, (key, alias) of the sum of each of its keys."""
    keys: dict[str, list[str | int]] = {
        "latency_hist": list(range(LATENCY_BUCKETS)),
        "errors": list(ERROR_KINDS),
        "label_counts": list(label_keys),
    }
    return {name: [(key, f"{name}_{i}") for i, key in enumerate(keys[name])] for name in fields if name in JSON_FIELDS}


def _step_sums(
    model: Any,
    project: Project,
    after: datetime,
    before: datetime,
    fields: tuple[str, ...],
    steps: StepGrid,
    label_keys: list[str],
) -> list[tuple[Any, ...]]:
    """One piece's rows summed per (step, group fields) in SQL, as tuples in ``fields`` order."""
    groups = [name for name in fields if name in GROUP_FIELDS]
    json_sums = _json_sums(fields, label_keys)
    sums: dict[str, Any] = {
        f"sum_{name}": Sum(name) for name in fields if name not in GROUP_FIELDS | JSON_FIELDS | {"bucket_start"}
    }
    for name, keyed in json_sums.items():
        for key, alias in keyed:
            sums[alias] = Sum(JsonCount(name, key))
    query = _window(model, project, after, before).annotate(
        step_index=StepIndex("bucket_start", steps.origin, steps.step)
    )
    out = []
    for row in query.values("step_index", *groups).annotate(**sums):
        values: list[Any] = []
        for name in fields:
            if name == "bucket_start":
                values.append(steps.start_of(row["step_index"]))
            elif name in GROUP_FIELDS:
                values.append(row[name])
            elif name == "latency_hist":
                values.append([row[alias] or 0 for _, alias in json_sums[name]])
            elif name in JSON_FIELDS:
                values.append({key: row[alias] for key, alias in json_sums[name] if row[alias]})
            else:
                values.append(row[f"sum_{name}"] or 0)
        out.append(tuple(values))
    return out

"""SQL expressions the monitoring reads share, written for PostgreSQL and the embedded SQLite alike.

Numbers inlined into SQL here are computed from datetimes and timedeltas, never taken from a request.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import F, FloatField, Func, IntegerField

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Epoch(Func):
    """SQL: a timestamp as float seconds since 1970 (what Python's ``datetime.timestamp()`` gives).

    Read in bulk, a float is much cheaper to fetch than a timezone-aware ``datetime`` per row. Exact to
    the microsecond on both: SQLite's whole seconds plus the stored text's fraction (Django writes
    ``YYYY-MM-DD HH:MM:SS[.ffffff]`` in UTC; ``julianday`` would be off by a few microseconds).
    """

    output_field = FloatField()

    def __init__(self, field: str) -> None:
        super().__init__(F(field))

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = (
            "(CAST(strftime('%%%%s', substr(%(expressions)s, 1, 19)) AS INTEGER)"
            " + COALESCE(CAST(NULLIF(substr(%(expressions)s, 20), '') AS REAL), 0.0))"
        )
        return super().as_sql(compiler, connection, template=template, **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)::float8", **extra)


class StepIndex(Func):
    """SQL: the index of the step holding a timestamp, ``floor((epoch - origin) / step)``.

    The origin and the step are whole seconds computed here, never user input, so they are inlined.
    """

    output_field = IntegerField()

    def __init__(self, field: str, origin: datetime, step: timedelta) -> None:
        self.origin_s = int((origin - EPOCH).total_seconds())
        self.step_s = max(1, int(step.total_seconds()))
        super().__init__(F(field))

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = (
            "CAST((CAST(strftime('%%%%s', substr(%(expressions)s, 1, 19)) AS INTEGER)"
            f" - {self.origin_s}) / {self.step_s} AS INTEGER)"
        )
        return super().as_sql(compiler, connection, template=template, **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = f"FLOOR((EXTRACT(EPOCH FROM %(expressions)s) - {self.origin_s}) / {self.step_s})::integer"
        return super().as_sql(compiler, connection, template=template, **extra)


class JsonCount(Func):
    """SQL: the integer at ``key`` of a JSON column (an object key, or an array index when an int), or NULL.

    Not Django's ``KT``: it splits a key on ``__`` and reads a key like ``"5"`` as an array index, and a
    project's labels may be named "5" (star ratings) or hold a double underscore.
    """

    output_field = IntegerField()

    def __init__(self, field: str, key: str | int) -> None:
        self.key = key
        super().__init__(F(field))

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, params = compiler.compile(self.source_expressions[0])
        path = f"$[{self.key}]" if isinstance(self.key, int) else "$." + json.dumps(self.key)
        return f"CAST(json_extract({column}, %s) AS INTEGER)", (*params, path)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, params = compiler.compile(self.source_expressions[0])
        return f"CAST(({column} ->> %s) AS integer)", (*params, self.key)

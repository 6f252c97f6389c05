"""The prediction log sink: the bulk writer behind the model server's write-behind log buffer (COPY
on PostgreSQL, one multi-row INSERT elsewhere), the audit sample, and each row's record (redacted
text where kept, language and script computed here, off the request path).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, close_old_connections, connection, connections, transaction
from django.db.models.constants import OnConflict

from labeling.models import Project
from modeling.ml.textinfo import detect_language, dominant_script
from modeling.models import PredictionLog, ReleasePolicy
from modeling.redaction import redact
from modeling.services.serving.request import CALLER_KEY_MAX

LOG_COLUMNS = (
    "id",
    "project_id",
    "version_number",
    "route",
    "caller",
    "created_at",
    "latency_ms",
    "label",
    "confidence",
    "probs",
    "input_chars",
    "language",
    "text_sha256",
    "text",
    "embedding",
    "unk_rate",
    "script",
    "audit",
)
PROBS_COLUMN = LOG_COLUMNS.index("probs")
# The log thread hands the GIL over every this many rows (see ``_yielding``).
YIELD_EVERY_ROWS = 64


def _yielding(items: Iterable[Any], every: int = YIELD_EVERY_ROWS) -> Iterator[Any]:
    """Iterate ``items``, letting other threads take the GIL after every ``every`` of them.

    The log thread's per-row Python (about 37 us a row, see ``_insert_log``) never blocks, so Python
    would take the GIL from it only after its switch interval. A GPU server's forward thread needs the
    GIL back after every operator it launches: ``benchmarks/gil_convoy.py`` ran ``predict`` 514 times
    slower beside a thread like that at Python's 5 ms, 2.1 times when that thread yielded every 100
    rows (2-core EPYC, 2026-11-23). ``time.sleep(0)`` releases the GIL for a moment; every 64 rows it
    costs about 0.1% of the rows' time.
    """
    for count, item in enumerate(items, 1):
        yield item
        if count % every == 0:
            time.sleep(0)


def prediction_log_write(rows: Sequence[dict[str, Any]]) -> int:
    """Write the model server's log rows as ``PredictionLog`` rows in bulk; return how many were new.

    Texts are kept (redacted) where the request said the project opted in, and for the audit sample
    (``audit_sampled``). Rows of a project deleted meanwhile are dropped. A retried batch after a lost
    acknowledgement inserts nothing twice (ids are primary keys; conflicts are skipped). COPY on
    PostgreSQL, one multi-row INSERT elsewhere.
    """
    close_old_connections()  # this runs in a long-lived thread: drop a connection the database closed
    try:
        projects = {int(row["meta"]["project"]) for row in rows}
        # A project without a release policy row audits at the policy's default share.
        default_share = ReleasePolicy._meta.get_field("audit_share").get_default()
        shares = {
            pk: default_share if share is None else share
            for pk, share in Project.objects.filter(pk__in=projects).values_list("pk", "release_policy__audit_share")
        }
        records = [
            _log_record(row, audit_share=shares[int(row["meta"]["project"])])
            for row in _yielding(rows)
            if int(row["meta"]["project"]) in shares
        ]
        if not records:
            return 0
        if connection.vendor == "postgresql":
            return _copy_log(records)
        return _insert_log(records)
    except Exception:
        connection.close()  # the next attempt reconnects
        raise


def audit_sampled(prediction_id: uuid.UUID, share: float) -> bool:
    """Return whether a prediction falls in the audit sample: a fixed hash of its id below ``share``.

    Deterministic (a retried write or a second reader draws the same sample) and independent of the
    text, the caller and the time, so the sample is an unbiased share of the traffic.
    """
    if share <= 0.0:
        return False
    digest = hashlib.sha256(b"audit:" + prediction_id.bytes).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


def _log_record(row: dict[str, Any], *, audit_share: float = 0.0) -> tuple[Any, ...]:
    meta = row["meta"]
    prediction_id = uuid.UUID(row["id"])
    route = str(meta.get("route") or PredictionLog.Route.PRODUCTION)
    # The shadow's copies were never answered: auditing them would count one request twice.
    audit = route != PredictionLog.Route.SHADOW and audit_sampled(prediction_id, audit_share)
    raw_text = str(row["text"])
    # PostgreSQL text cannot hold NUL: one such row would fail its whole batch on every retry.
    text = redact(raw_text).replace("\x00", "\ufffd") if meta.get("log_text") or audit else None
    unk = row.get("unk_rate")
    embedding = row.get("embedding")
    return (
        prediction_id,
        int(meta["project"]),
        int(row["version"]),
        route,
        str(meta.get("caller") or "")[:CALLER_KEY_MAX],
        datetime.fromtimestamp(float(row["created_at"]), tz=UTC),
        float(row["latency_ms"]),
        str(row["label"])[:100],
        float(row["confidence"]),
        row["probs"],
        int(row["input_chars"]),
        # Here, in the log writer's thread, rather than in the server's request path.
        str(meta.get("language") or detect_language(raw_text, meta.get("languages") or []))[:16],
        str(row["text_sha256"]),
        text,
        bytes(embedding) if embedding is not None else None,
        float(unk) if unk is not None else None,
        # Here, in the log writer's thread, rather than in the server's request path.
        dominant_script(raw_text),
        audit,
    )


def _insert_log(records: list[tuple[Any, ...]]) -> int:
    """INSERT the rows with one ``executemany``, skipping ids already written; return how many were new.

    The statement is the backend's own (``INSERT OR IGNORE`` on SQLite) and each value is prepared by
    its model field, as ``bulk_create`` does, without building a model instance and a SQL string per
    row. ``prediction_log_write`` of 1,000 tweets' rows on SQLite took 37 µs of CPU a row this way
    against 67-73 with ``bulk_create`` (2-core EPYC, both cores busy with another job): CPU the model
    server's log thread takes from the requests sharing those cores.
    """
    db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: ``connection`` is a proxy, resolved per use
    fields = [PredictionLog._meta.get_field(column.removesuffix("_id")) for column in LOG_COLUMNS]
    prepare = [field.get_db_prep_save for field in fields]
    table = db.ops.quote_name(PredictionLog._meta.db_table)
    columns = ", ".join(db.ops.quote_name(field.column) for field in fields)
    statement = db.ops.insert_statement(on_conflict=OnConflict.IGNORE)
    suffix = db.ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, None, None)
    sql = f"{statement} {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))}) {suffix}".rstrip()
    rows = [[prep(value, db) for prep, value in zip(prepare, record, strict=True)] for record in _yielding(records)]
    with transaction.atomic(), db.cursor() as cursor:
        cursor.executemany(sql, rows)
        return max(0, int(cursor.rowcount))


def _copy_log(records: list[tuple[Any, ...]]) -> int:
    """COPY the rows into a temporary table, then insert them skipping ids already written."""
    import json

    # Identifiers only (the model's table and fixed column names); the values travel through COPY.
    table = connection.ops.quote_name(PredictionLog._meta.db_table)
    columns = ", ".join(LOG_COLUMNS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS predlog_staging (LIKE {table}) ON COMMIT DELETE ROWS")
        with cursor.cursor.copy(f"COPY predlog_staging ({columns}) FROM STDIN") as copy:
            for record in _yielding(records):
                copy.write_row((*record[:PROBS_COLUMN], json.dumps(record[PROBS_COLUMN]), *record[PROBS_COLUMN + 1 :]))
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM predlog_staging ON CONFLICT (id) DO NOTHING"  # noqa: S608
        )
        return int(cursor.rowcount)

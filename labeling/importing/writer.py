"""The second pass of an import: write clean rows as items, in batches, inside the caller's transaction.

On PostgreSQL the checking pass already formats each row it accepts as a line of ``COPY`` text into
an anonymous temporary file (``CopySpool``); the writing pass streams that file to the server in
``COPY ... FROM STDIN`` statements of 50,000 rows, so it costs almost no Python per row and the
server, which is the bottleneck, is kept busy. Other databases re-read the rows and ``bulk_create``
them (``write_items``). Only one batch is ever held in memory.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path

from django.db import connection

from labeling.importing.validate import CleanRow
from labeling.models import Item

COPY_BATCH_ROWS = 50_000
BULK_CREATE_BATCH_ROWS = 2_000
COPY_FIELDS = (
    "project",
    "dataset",
    "external_id",
    "text",
    "content_hash",
    "language",
    "split",
    "metadata",
    "status",
    "gold_label",
    "gold_source",
    "created_at",
)


@dataclass(frozen=True)
class WriteTarget:
    """The values every written item shares."""

    project_id: int
    dataset_id: int
    created_at: datetime


def _batches(rows: Iterable[CleanRow], size: int) -> Iterator[list[CleanRow]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _status(row: CleanRow) -> tuple[str, str]:
    if row.label_id is None:
        return Item.Status.UNLABELED.value, Item.GoldSource.NONE.value
    return Item.Status.GOLD.value, Item.GoldSource.IMPORT.value


# COPY's text format: a tab between columns, a newline between rows, \N for null, backslash escapes.
_COPY_SPECIAL = re.compile(r"[\\\n\r\t]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_COPY_NULL = "\\N"


def _copy_text(value: str | None) -> str:
    if value is None:
        return _COPY_NULL
    return value.translate(_COPY_ESCAPES) if _COPY_SPECIAL.search(value) else value


class CopySpool:
    """Accepted rows, formatted as COPY text lines in an anonymous temporary file (PostgreSQL only)."""

    def __init__(self, target: WriteTarget, *, directory: Path | None = None) -> None:
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        self.file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (closed by close())
        self.rows = 0
        self._prefix = f"{target.project_id}\t{target.dataset_id}\t"
        self._suffix = f"\t{target.created_at.isoformat()}\n"

    def add(self, rows: list[CleanRow]) -> None:
        lines = []
        for row in rows:
            status, gold_source = _status(row)
            label = _COPY_NULL if row.label_id is None else str(row.label_id)
            lines.append(
                f"{self._prefix}{_copy_text(row.external_id)}\t{_copy_text(row.text)}\t{row.digest.hex()}\t"
                f"{row.language}\t{row.split}\t{_copy_text(row.metadata_json)}\t{status}\t{label}\t"
                f"{gold_source}{self._suffix}"
            )
        self.file.write("".join(lines).encode("utf-8"))
        self.rows += len(rows)

    def write(self, *, on_batch: Callable[[int], None] | None = None) -> int:
        """Stream the spooled rows into the items table; return how many were written."""
        self.file.seek(0)
        written = 0
        while lines := list(islice(self.file, COPY_BATCH_ROWS)):
            # The raw psycopg cursor bypasses Django's error translation: restore it (IntegrityError etc.).
            with (
                connection.wrap_database_errors,
                connection.cursor() as cursor,
                cursor.cursor.copy(_copy_sql()) as copy,
            ):
                copy.write(b"".join(lines))
            written += len(lines)
            if on_batch is not None:
                on_batch(written)
        return written

    def close(self) -> None:
        self.file.close()


def _copy_sql() -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(Item._meta.get_field(name).column) for name in COPY_FIELDS)
    return f"COPY {quote(Item._meta.db_table)} ({columns}) FROM STDIN"


def _bulk_create_batch(batch: list[CleanRow], target: WriteTarget) -> None:
    items = []
    for row in batch:
        status, gold_source = _status(row)
        items.append(
            Item(
                project_id=target.project_id,
                dataset_id=target.dataset_id,
                external_id=row.external_id,
                text=row.text,
                content_hash=row.digest.hex(),
                language=row.language,
                split=row.split,
                metadata=row.metadata,
                status=status,
                gold_label_id=row.label_id,
                gold_source=gold_source,
                created_at=target.created_at,
            )
        )
    Item.objects.bulk_create(items)


def write_items(rows: Iterable[CleanRow], *, target: WriteTarget, on_batch: Callable[[int], None] | None = None) -> int:
    """Insert ``rows`` with ``bulk_create`` (databases other than PostgreSQL); return how many.

    ``on_batch(rows_written_so_far)`` is called after each batch.
    """
    written = 0
    for batch in _batches(rows, BULK_CREATE_BATCH_ROWS):
        _bulk_create_batch(batch, target)
        written += len(batch)
        if on_batch is not None:
            on_batch(written)
    return written

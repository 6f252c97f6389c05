"""Streaming row readers for CSV, JSON Lines and JSON arrays, and for already-parsed records.

Each reader yields ``ParsedRow``s one at a time, numbered as a person sees the file: the CSV line
a record starts on (the header is line 1), the JSONL line, the JSON array position counted from 1.
A row that cannot be read carries a ``RowError`` instead of values. Readers are re-iterable, because
an import reads its rows twice: once to validate, once to write.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from labeling.importing.report import RowError

READ_CHARS = 1024 * 1024
# A CSV field or a JSON array element larger than this is reported rather than buffered further.
MAX_RECORD_CHARS = 8 * 1024 * 1024


class ParsedRow(NamedTuple):
    row: int
    values: Mapping[str, Any] | None
    error: RowError | None


def _bad(row: int, code: str, message: str, field: str | None = None) -> ParsedRow:
    return ParsedRow(row, None, RowError(row, field, code, message))


def _record(row: int, value: Any) -> ParsedRow:
    if isinstance(value, dict):
        return ParsedRow(row, value, None)
    return _bad(row, "wrong_type", f'Each row must be a JSON object with a "text" key, not {_json_type(value)}.')


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


class FileRows:
    """The rows of a file on disk, read afresh on each iteration; ``bytes_read`` tracks the pass."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self._handle: io.BufferedReader | None = None

    @property
    def bytes_read(self) -> int:
        return self._handle.tell() if self._handle is not None and not self._handle.closed else 0

    def __iter__(self) -> Iterator[ParsedRow]:
        with self.path.open("rb") as raw:
            self._handle = raw
            # utf-8-sig drops a byte-order mark, which spreadsheet exports often write.
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            yield from READERS[self.fmt](text)


class RecordRows:
    """Already-parsed records (an API body, the demo seed), numbered from 1."""

    def __init__(self, records: Iterable[Any]) -> None:
        self.records = records

    def __iter__(self) -> Iterator[ParsedRow]:
        for index, value in enumerate(self.records, start=1):
            yield _record(index, value)


def read_csv(stream: TextIO) -> Iterator[ParsedRow]:
    """Yield the data rows of a CSV file with a header row; blank lines are skipped."""
    csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD_CHARS))
    reader = csv.reader(stream, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        yield _bad(1, "malformed_csv", f"The header row is not valid CSV: {exc}.")
        return
    if header is None:
        return
    columns = [name.strip().lower() for name in header]
    if problem := _header_problem(columns):
        yield problem
        return
    yield from _csv_rows(reader, columns)


def _header_problem(columns: list[str]) -> ParsedRow | None:
    if "text" not in columns:
        found = ", ".join(repr(c) for c in columns[:10])
        return _bad(1, "missing_column", f'The header has no "text" column (it has {found}).', "text")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        return _bad(1, "duplicate_column", f"The header repeats the column(s) {', '.join(repeated)}.")
    return None


def _csv_rows(reader: Any, columns: list[str]) -> Iterator[ParsedRow]:
    width = len(columns)
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield _bad(start, "malformed_csv", f"This row is not valid CSV ({exc}); check its quotes.")
            return
        if not values:
            continue
        if len(values) != width:
            message = f"This row has {len(values)} values but the header has {width} columns."
            yield _bad(start, "wrong_field_count", message)
            continue
        yield ParsedRow(start, dict(zip(columns, values, strict=True)), None)


def read_jsonl(stream: TextIO) -> Iterator[ParsedRow]:
    """Yield one row per non-blank line, each a JSON object."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield _bad(number, "malformed_json", f"This line is not valid JSON: {exc.msg} (column {exc.colno}).")
        else:
            yield _record(number, value)


def read_json_array(stream: TextIO) -> Iterator[ParsedRow]:
    """Yield the elements of a top-level JSON array one at a time, without loading the whole file."""
    yield from _JsonArrayReader(stream)


READERS = {"csv": read_csv, "jsonl": read_jsonl, "json": read_json_array}


class _JsonArrayReader:
    """An incremental reader for ``[value, value, ...]``: ``raw_decode`` each element from a buffer.

    An element cut by the buffer's end fails to decode; more text is then read (doubling the read
    size, so a long element costs amortised linear time) and the decode retried.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.buf, self.pos, self.eof = stream, "", 0, False
        self.decoder = json.JSONDecoder()

    def __iter__(self) -> Iterator[ParsedRow]:
        if self._next_char() != "[":
            yield _bad(1, "malformed_json", self._not_an_array())
            return
        self.pos += 1
        if self._next_char() == "]":
            self.pos += 1
            yield from self._trailing(0)
            return
        index = 0
        while True:
            index += 1
            value, error = self._decode(index)
            if error is not None:
                yield error
                return
            yield _record(index, value)
            separator = self._next_char()
            self.pos += 1
            if separator == "]":
                yield from self._trailing(index)
                return
            if separator != ",":
                yield _bad(index + 1, "malformed_json", f"Expected ',' or ']' after element {index}.")
                return

    def _not_an_array(self) -> str:
        if self._next_char() == "{":
            return (
                "The file is not a JSON array: it starts with '{'. "
                "If it has one object per line, it is JSON Lines (.jsonl)."
            )
        return "The file is not a JSON array: a .json import must start with '['."

    def _fill(self, at_least: int = READ_CHARS) -> bool:
        if self.eof:
            return False
        chunk = self.stream.read(at_least)
        if not chunk:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def _next_char(self) -> str:
        """Skip whitespace; return the next character without consuming it ('' at the end)."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or not self._fill():
                return self.buf[self.pos] if self.pos < len(self.buf) else ""

    def _decode(self, index: int) -> tuple[Any, ParsedRow | None]:
        self._next_char()
        read_size = READ_CHARS
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos > MAX_RECORD_CHARS or not self._fill(read_size):
                    return None, _bad(index, "malformed_json", f"Element {index} is not valid JSON: {exc.msg}.")
                read_size *= 2
                continue
            # A number at the buffer's end may continue in the next chunk: read on and decode again.
            cut = end == len(self.buf) and not isinstance(value, dict | list | str)
            if cut and self._fill(read_size):
                continue
            self.pos = end
            return value, None

    def _trailing(self, count: int) -> Iterator[ParsedRow]:
        if self._next_char():
            yield _bad(count + 1, "malformed_json", "Unexpected data after the end of the JSON array.")


def count_rows(rows: Iterable[ParsedRow], *, limit: int) -> int:
    """Count rows (readable or not), stopping once ``limit`` is reached."""
    count = 0
    iterator = iter(rows)
    try:
        for _ in iterator:
            count += 1
            if count >= limit:
                break
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    return count

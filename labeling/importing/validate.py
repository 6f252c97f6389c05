"""Row validation and the first (checking) pass of an import.

``clean_row`` turns one parsed row into a ``CleanRow`` or a list of errors. ``scan_rows`` runs it
over a whole file, finds repeated ids and texts inside the file (in sets of ids and sha256 digests)
and, in batches, against the project's existing items, and decides which rows will be written.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from labeling.importing.parsers import ParsedRow
from labeling.importing.report import ErrorReport, RowError

FIELDS = frozenset({"text", "id", "label", "language", "split", "metadata"})
SPLITS = frozenset({"train", "eval", "pool"})
LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")
MAX_LANGUAGE_CHARS = 16
MAX_EXTERNAL_ID_CHARS = 255
MAX_REPORTED_DUPLICATES = 50
PROGRESS_EVERY_ROWS = 5_000
ACCEPT_BATCH_ROWS = 10_000


@dataclass(frozen=True)
class ImportRules:
    """What a valid row looks like in one project."""

    max_text_chars: int
    label_ids: Mapping[str, int]  # casefolded label name -> label id
    label_names: tuple[str, ...]


class CleanRow(NamedTuple):
    row: int
    text: str
    digest: bytes
    external_id: str | None
    language: str
    split: str
    metadata: dict[str, Any]
    metadata_json: str
    label_id: int | None


class _FieldError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _clean_text(value: Any, rules: ImportRules) -> tuple[str, bytes]:
    if not isinstance(value, str):
        raise _FieldError("wrong_type", "The text must be a string.")
    if not value or value.isspace():
        raise _FieldError("empty_text", "The text is empty.")
    if len(value) > rules.max_text_chars:
        raise _FieldError(
            "text_too_long",
            f"The text has {len(value):,} characters; this project's limit is {rules.max_text_chars:,}.",
        )
    if "\x00" in value:
        raise _FieldError("invalid_text", "The text contains a NUL character.")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise _FieldError("invalid_text", "The text contains an unpaired surrogate (broken \\u escape).") from None
    return value, hashlib.sha256(encoded).digest()


def _clean_id(value: Any, rules: ImportRules, strings: bool) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _FieldError("wrong_type", "The id must be a string or an integer.")
    external_id = str(value).strip()
    if len(external_id) > MAX_EXTERNAL_ID_CHARS:
        raise _FieldError("invalid_id", f"The id is longer than {MAX_EXTERNAL_ID_CHARS} characters.")
    return external_id or None


def _clean_label(value: Any, rules: ImportRules, strings: bool) -> int | None:
    if not isinstance(value, str):
        raise _FieldError("wrong_type", "The label must be a string (a label name).")
    label_id = rules.label_ids.get(value.strip().casefold())
    if label_id is None:
        known = ", ".join(rules.label_names[:20])
        raise _FieldError("unknown_label", f"Unknown label {value!r}; this project's labels are: {known}.")
    return label_id


# Files repeat a handful of language codes a million times: remember the normalised ones.
_LANGUAGES: dict[str, str] = {}


def _clean_language(value: Any, rules: ImportRules, strings: bool) -> str:
    if isinstance(value, str) and value in _LANGUAGES:
        return _LANGUAGES[value]
    if not isinstance(value, str):
        raise _FieldError("wrong_type", 'The language must be a string such as "en" or "pt-BR".')
    code = value.strip()
    if len(code) > MAX_LANGUAGE_CHARS or not LANGUAGE_RE.match(code):
        raise _FieldError("invalid_language", f'{value[:40]!r} is not a language code such as "en" or "pt-BR".')
    if len(_LANGUAGES) < 1_000:
        _LANGUAGES[value] = code.replace("_", "-").lower()
    return code.replace("_", "-").lower()


def _clean_split(value: Any, rules: ImportRules, strings: bool) -> str:
    if not isinstance(value, str):
        raise _FieldError("wrong_type", "The split must be a string: train, eval or pool.")
    split = value.strip().lower()
    if split not in SPLITS:
        raise _FieldError("invalid_split", f"Unknown split {value[:40]!r}; use train, eval or pool.")
    return split


def _clean_metadata(value: Any, rules: ImportRules, strings: bool) -> tuple[dict[str, Any], str]:
    if strings:
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise _FieldError("malformed_json", f"The metadata is not valid JSON: {exc.msg}.") from None
    if not isinstance(value, dict):
        raise _FieldError("wrong_type", 'The metadata must be a JSON object, like {"source": "web"}.')
    try:
        dumped = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        dumped.encode("utf-8")
    except (ValueError, TypeError):  # NaN/Infinity, or an unpaired surrogate (UnicodeEncodeError)
        raise _FieldError("invalid_metadata", "The metadata holds NaN, Infinity or a broken \\u escape.") from None
    if "\\u0000" in dumped:
        # PostgreSQL's jsonb cannot store NUL characters.
        raise _FieldError("invalid_metadata", "The metadata contains a NUL character.")
    return value, dumped


# The optional fields: (name, cleaner, value when absent, null or ""). Order matters: CleanRow's.
_OPTIONAL: tuple[tuple[str, Callable[[Any, ImportRules, bool], Any], Any], ...] = (
    ("id", _clean_id, None),
    ("language", _clean_language, ""),
    ("split", _clean_split, "pool"),
    ("metadata", _clean_metadata, ({}, "{}")),
    ("label", _clean_label, None),
)


def clean_row(row: int, values: Mapping[str, Any], rules: ImportRules, *, strings: bool) -> CleanRow | list[RowError]:
    """Return the row's cleaned values, or every error in it.

    An absent, null or empty value means "not given". ``strings`` is true for CSV, whose metadata
    is a JSON-encoded string. Straight-line code: it runs twice for every row of a million-row file.
    """
    errors: list[RowError] = []
    text, digest = "", b""
    if "text" not in values:
        errors.append(RowError(row, "text", "missing_field", 'The row has no "text".'))
    else:
        try:
            text, digest = _clean_text(values["text"], rules)
        except _FieldError as exc:
            errors.append(RowError(row, "text", exc.code, exc.message))
    cleaned: list[Any] = []
    for name, cleaner, absent in _OPTIONAL:
        value = values.get(name)
        if value is None or value == "":
            cleaned.append(absent)
            continue
        try:
            cleaned.append(cleaner(value, rules, strings))
        except _FieldError as exc:
            errors.append(RowError(row, name, exc.code, exc.message))
    if errors:
        return errors
    external_id, language, split, (metadata, metadata_json), label_id = cleaned
    return CleanRow(row, text, digest, external_id, language, split, metadata, metadata_json, label_id)


class ProjectLookup(Protocol):
    """Batched reads of what the project already holds."""

    batch_size: int

    def existing_hashes(self, hexes: list[str]) -> set[str]: ...

    def existing_external_ids(self, ids: list[str]) -> set[str]: ...


@dataclass
class ScanResult:
    """What the checking pass learned: the counts, and which rows to skip as duplicates."""

    rows_total: int = 0
    gold: int = 0
    skip_rows: set[int] = field(default_factory=set)
    duplicate_rows: list[dict[str, Any]] = field(default_factory=list)
    ignored_fields: set[str] = field(default_factory=set)

    @property
    def duplicates(self) -> int:
        return len(self.skip_rows)

    @property
    def to_write(self) -> int:
        return self.rows_total - len(self.skip_rows)

    def skip(self, row: int, duplicate_of: str, *, counted_gold: bool = False) -> None:
        self.skip_rows.add(row)
        self.gold -= counted_gold
        if len(self.duplicate_rows) < MAX_REPORTED_DUPLICATES:
            self.duplicate_rows.append({"row": row, "duplicate_of": duplicate_of})


class _Scanner:
    def __init__(
        self,
        rules: ImportRules,
        report: ErrorReport,
        lookup: ProjectLookup | None,
        strings: bool,
        on_accept: Callable[[list[CleanRow]], None] | None,
    ) -> None:
        self.rules, self.report, self.lookup, self.strings = rules, report, lookup, strings
        self.on_accept = on_accept
        self.batch_size = lookup.batch_size if lookup is not None else ACCEPT_BATCH_ROWS
        self.result = ScanResult()
        self.digests: set[bytes] = set()
        self.ids: set[str] = set()
        self.pending_rows: list[CleanRow] = []
        self.pending_ids: list[tuple[str, int]] = []

    def feed(self, parsed: ParsedRow) -> None:
        self.result.rows_total += 1
        if parsed.error is not None or parsed.values is None:
            self.report.add(parsed.error or RowError(parsed.row, None, "malformed", "The row cannot be read."))
            return
        if len(parsed.values) > len(FIELDS) or not FIELDS.issuperset(parsed.values):
            self.result.ignored_fields.update(k for k in parsed.values if k not in FIELDS)
        clean = clean_row(parsed.row, parsed.values, self.rules, strings=self.strings)
        if isinstance(clean, list):
            for error in clean:
                self.report.add(error)
            return
        self._check_id(clean)
        self._check_text(clean)

    def _check_id(self, clean: CleanRow) -> None:
        if clean.external_id is None:
            return
        if clean.external_id in self.ids:
            message = f"The id {clean.external_id!r} appears on an earlier row of this file."
            self.report.add(RowError(clean.row, "id", "duplicate_id", message))
            return
        self.ids.add(clean.external_id)
        if self.lookup is not None:
            self.pending_ids.append((clean.external_id, clean.row))
            if len(self.pending_ids) >= self.lookup.batch_size:
                self._flush_ids()

    def _check_text(self, clean: CleanRow) -> None:
        if clean.digest in self.digests:
            self.result.skip(clean.row, "an earlier row of this file")
            return
        self.digests.add(clean.digest)
        self.result.gold += clean.label_id is not None
        self.pending_rows.append(clean)
        if len(self.pending_rows) >= self.batch_size:
            self._flush_rows()

    def _flush_ids(self) -> None:
        assert self.lookup is not None
        found = self.lookup.existing_external_ids([external_id for external_id, _ in self.pending_ids])
        for external_id, row in self.pending_ids:
            if external_id in found:
                message = f"An item with the id {external_id!r} already exists in this project."
                self.report.add(RowError(row, "id", "id_exists", message))
        self.pending_ids = []

    def _flush_rows(self) -> None:
        """Drop the pending rows whose text the project already holds; hand the rest to ``on_accept``."""
        accepted = self.pending_rows
        if self.lookup is not None:
            found = self.lookup.existing_hashes([clean.digest.hex() for clean in accepted])
            if found:
                for clean in accepted:
                    if clean.digest.hex() in found:
                        self.result.skip(
                            clean.row, "an existing item of this project", counted_gold=clean.label_id is not None
                        )
                accepted = [clean for clean in accepted if clean.digest.hex() not in found]
        if self.on_accept is not None and not self.report:  # once a row failed, nothing will be written
            self.on_accept(accepted)
        self.pending_rows = []

    def finish(self) -> ScanResult:
        if self.lookup is not None:
            self._flush_ids()
        self._flush_rows()
        return self.result


def scan_rows(
    rows: Iterable[ParsedRow],
    *,
    rules: ImportRules,
    report: ErrorReport,
    lookup: ProjectLookup | None,
    strings: bool,
    on_progress: Callable[[int], None] | None = None,
    on_accept: Callable[[list[CleanRow]], None] | None = None,
) -> ScanResult:
    """Check every row, adding problems to ``report``; ``lookup`` None means the project is empty.

    ``on_accept`` receives, in batches and in file order, the rows that will be written: valid,
    and not repeating a text of the file or of the project. It is no longer called once an error
    has been found.
    """
    scanner = _Scanner(rules, report, lookup, strings, on_accept)
    for parsed in rows:
        scanner.feed(parsed)
        if on_progress is not None and scanner.result.rows_total % PROGRESS_EVERY_ROWS == 0:
            on_progress(scanner.result.rows_total)
    return scanner.finish()


def clean_rows(rows: Iterable[ParsedRow], *, rules: ImportRules, strings: bool, skip: set[int]) -> Iterator[CleanRow]:
    """Yield the rows to write (second pass): every row but the skipped duplicates."""
    for parsed in rows:
        if parsed.row in skip:
            continue
        if parsed.values is None:
            raise RuntimeError(f"row {parsed.row} became unreadable between the two passes")
        clean = clean_row(parsed.row, parsed.values, rules, strings=strings)
        if isinstance(clean, list):
            raise RuntimeError(f"row {parsed.row} became invalid between the two passes")
        yield clean

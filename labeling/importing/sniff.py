"""Checks on an upload before any row is read: size, binary or compressed content, encoding, format.

The upload is streamed to disk in chunks (never held in memory whole) and every later pass reads
it back from there.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import BinaryIO

from charset_normalizer import from_bytes

from labeling.importing.report import RowError, fail
from webapp.errors import PayloadTooLarge, UnsupportedMedia, ValidationFailed

CHUNK_BYTES = 1024 * 1024
FORMATS = ("csv", "jsonl", "json")
ACCEPTED = "CSV/JSONL/JSON"

# Signatures at offset 0. Compressed files are refused outright: never inflating an upload is the
# simplest defence against zip bombs, and the fix for the user is easy.
COMPRESSED_MAGIC = {
    b"PK\x03\x04": "a ZIP archive (or an .xlsx/.docx file)",
    b"PK\x05\x06": "an empty ZIP archive",
    b"PK\x07\x08": "a ZIP archive",
    b"\x1f\x8b": "a gzip file",
    b"\xfd7zXZ\x00": "an xz file",
    b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive",
    b"\x28\xb5\x2f\xfd": "a Zstandard file",
    b"Rar!\x1a\x07": "a RAR archive",
    b"\x04\x22\x4d\x18": "an LZ4 file",
}
BINARY_MAGIC = {
    b"%PDF-": "a PDF document",
    b"\x89PNG\r\n\x1a\n": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF87a": "a GIF image",
    b"GIF89a": "a GIF image",
    b"\x7fELF": "an ELF executable",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "an old-style Office document (.xls/.doc)",
    b"SQLite format 3\x00": "an SQLite database",
}
# UTF-16/32 text is full of NUL bytes: name the encoding rather than calling it binary.
WIDE_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}
EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
CONTENT_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/x-ndjson": "jsonl",
    "application/json": "json",
}


@dataclass(frozen=True)
class Spooled:
    """An upload written to disk: its size and the sha256 of its bytes."""

    path: Path
    size: int
    sha256: str


def _chunks(fileobj: BinaryIO) -> Iterator[bytes]:
    chunks = getattr(fileobj, "chunks", None)
    if callable(chunks):  # a Django UploadedFile
        yield from chunks(CHUNK_BYTES)
        return
    while chunk := fileobj.read(CHUNK_BYTES):
        yield chunk


def _too_large(max_bytes: int) -> PayloadTooLarge:
    limit = f"{max_bytes / 1024 / 1024:.0f} MB" if max_bytes >= 1024 * 1024 else f"{max_bytes:,} bytes"
    message = f"The file is larger than the {limit} import limit; split it into smaller files."
    error = RowError(None, None, "file_too_large", message)
    return PayloadTooLarge(message, details={"errors": [error.as_dict()], "error_count": 1})


def spool(fileobj: BinaryIO, dest: Path, *, max_bytes: int) -> Spooled:
    """Stream ``fileobj`` to ``dest`` in chunks; raise ``PayloadTooLarge`` past ``max_bytes``."""
    declared = getattr(fileobj, "size", None)
    if isinstance(declared, int) and declared > max_bytes:
        raise _too_large(max_bytes)
    digest, size = hashlib.sha256(), 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("wb") as out:
        for chunk in _chunks(fileobj):
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            digest.update(chunk)
            out.write(chunk)
    return Spooled(dest, size, digest.hexdigest())


def _refuse_binary(head: bytes) -> None:
    for magic, what in COMPRESSED_MAGIC.items():
        if head.startswith(magic):
            message = f"This is {what}: compressed uploads are refused. Upload the uncompressed {ACCEPTED}."
            fail(RowError(None, None, "compressed_file", message), UnsupportedMedia)
    if head.startswith(b"BZh") and head[4:10] == b"\x31\x41\x59\x26\x53\x59":
        message = f"This is a bzip2 file: compressed uploads are refused. Upload the uncompressed {ACCEPTED}."
        fail(RowError(None, None, "compressed_file", message), UnsupportedMedia)
    for magic, what in BINARY_MAGIC.items():
        if head.startswith(magic):
            fail(RowError(None, None, "binary_file", f"This is {what}, not a {ACCEPTED} text file."), UnsupportedMedia)


def _not_utf8(row: int | None, sample: bytes, named: str | None = None) -> None:
    if named is None:
        best = from_bytes(sample).best()
        guess = best.encoding if best is not None else None
        named = guess if guess and not guess.startswith("utf_8") else "an unknown encoding"
    message = f"The file is not UTF-8 (it looks like {named}). Save it as UTF-8 and upload it again."
    fail(RowError(row, None, "not_utf8", message))


def check_text_file(path: Path) -> None:
    """Refuse an empty, binary, compressed or non-UTF-8 file, reading it in chunks."""
    with path.open("rb") as handle:
        head = handle.read(64)
        if not head:
            fail(RowError(None, None, "empty_file", "The file is empty."))
        _refuse_binary(head)
        for bom, name in WIDE_BOMS.items():
            if head.startswith(bom):
                _not_utf8(1, b"", name)
        handle.seek(0)
        _check_utf8_chunks(handle)


def _check_utf8_chunks(handle: BinaryIO) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    lines_before = 0
    while chunk := handle.read(CHUNK_BYTES):
        if b"\x00" in chunk:
            message = f"The file contains NUL bytes: it is binary, not a {ACCEPTED} text file."
            fail(RowError(None, None, "binary_file", message), UnsupportedMedia)
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            line = lines_before + chunk.count(b"\n", 0, max(exc.start, 0)) + 1
            _not_utf8(line, chunk[max(exc.start - 32_768, 0) : exc.start + 32_768])
        lines_before += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        _not_utf8(lines_before + 1, b"", "a file cut off in the middle of a character")


def detect_format(*, filename: str, content_type: str = "", override: str | None = None) -> str:
    """Return ``csv``, ``jsonl`` or ``json`` from the override, the extension or the content type."""
    if override:
        if override.lower() not in FORMATS:
            raise ValidationFailed(
                f"Unknown format {override!r}; use one of {', '.join(FORMATS)}.", details={"format": override}
            )
        return override.lower()
    suffix = PurePath(filename or "").suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    media = (content_type or "").split(";")[0].strip().lower()
    if media in CONTENT_TYPES:
        return CONTENT_TYPES[media]
    raise ValidationFailed(
        f"Cannot tell the format of {PurePath(filename or 'the file').name!r}: name it .csv, .jsonl or .json, "
        "or choose the format explicitly.",
        details={"format": None},
    )

"""Every kind of bad input is reported by row, field and code, and nothing at all is written."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import re
import zipfile

import pytest

from labeling.models import Dataset, Item, ProjectCounts
from labeling.services.imports import import_records, import_upload
from tests.factories import ItemFactory
from webapp.errors import PayloadTooLarge, UnsupportedMedia, ValidationFailed


def upload(project, user, data: bytes | str, filename: str = "data.csv", fmt: str | None = None):
    raw = data.encode() if isinstance(data, str) else data
    return import_upload(project=project, user=user, fileobj=io.BytesIO(raw), filename=filename, fmt=fmt)


def assert_nothing_written(project, items_before: int = 0) -> None:
    assert Item.objects.filter(project=project).count() == items_before
    assert not Dataset.objects.filter(project=project).exists()
    assert ProjectCounts.objects.get(project=project).items == 0


def only_error(exc_info) -> dict:
    details = exc_info.value.details
    assert details["error_count"] == 1, details
    return details["errors"][0]


def rejected(project, owner, data, filename="data.csv", exc=ValidationFailed, fmt=None) -> dict:
    with pytest.raises(exc) as exc_info:
        upload(project, owner, data, filename, fmt)
    assert_nothing_written(project)
    return only_error(exc_info)


def test_latin1_file_is_refused_naming_the_detected_encoding(project, owner):
    body = "text,label\n" + "".join(f"Crème brûlée numéro {i}, très bon et déjà vu\n" for i in range(20))
    error = rejected(project, owner, body.encode("cp1252"))
    assert error["code"] == "not_utf8"
    assert error["row"] == 2
    assert "not UTF-8" in error["message"]
    assert re.search(r"looks like (cp\d+|latin_1|iso8859_\d+)\)", error["message"]), error["message"]


def test_shift_jis_file_is_refused_naming_the_detected_encoding(project, owner):
    body = "text\n" + "日本語のテキストです。これはテストです。\n" * 5
    error = rejected(project, owner, body.encode("shift_jis"))
    assert error["code"] == "not_utf8"
    assert re.search(r"looks like (cp932|shift_jis|shift_jis_2004)\)", error["message"]), error["message"]


def test_utf16_file_is_named_utf16_not_binary(project, owner):
    error = rejected(project, owner, "text\nhello\n".encode("utf-16"))
    assert (error["code"], error["row"]) == ("not_utf8", 1)
    assert "UTF-16" in error["message"]


def test_csv_without_text_column_is_refused(project, owner):
    error = rejected(project, owner, "body,label\nhello,positive\n")
    assert (error["row"], error["field"], error["code"]) == (1, "text", "missing_column")
    assert "'body'" in error["message"]


def test_jsonl_row_without_text_is_refused(project, owner):
    error = rejected(project, owner, '{"text": "ok"}\n{"label": "positive"}\n', "data.jsonl")
    assert (error["row"], error["field"], error["code"]) == (2, "text", "missing_field")


def test_empty_text_is_refused(project, owner):
    error = rejected(project, owner, "text,label\nfine,\n   ,positive\n")
    assert (error["row"], error["field"], error["code"]) == (3, "text", "empty_text")


def test_text_over_the_project_limit_is_refused(project, owner):
    project.max_text_chars = 10
    project.save()
    error = rejected(project, owner, "text\nshort\nmuch too long text\n")
    assert (error["row"], error["field"], error["code"]) == (3, "text", "text_too_long")
    assert "18 characters" in error["message"] and "limit is 10" in error["message"]


def test_unknown_label_is_refused_listing_the_labels(project, owner):
    error = rejected(project, owner, "text,label\ngood,positive\nbad,angry\n")
    assert (error["row"], error["field"], error["code"]) == (3, "label", "unknown_label")
    assert "'angry'" in error["message"] and "negative, neutral, positive" in error["message"]


def test_duplicate_id_within_the_file_is_refused(project, owner):
    error = rejected(project, owner, "id,text\na1,first\na2,second\na1,third\n")
    assert (error["row"], error["field"], error["code"]) == (4, "id", "duplicate_id")


def test_id_already_in_the_project_is_refused(project, owner):
    ItemFactory(project=project, external_id="a7")
    with pytest.raises(ValidationFailed) as exc_info:
        upload(project, owner, '{"id": "a1", "text": "x"}\n{"id": "a7", "text": "y"}\n', "d.jsonl")
    error = only_error(exc_info)
    assert (error["row"], error["field"], error["code"]) == (2, "id", "id_exists")
    assert Item.objects.filter(project=project).count() == 1
    assert not Dataset.objects.exists()


def test_malformed_jsonl_line_is_reported_with_its_line_number(project, owner):
    error = rejected(project, owner, '{"text": "a"}\n\n{"text": "b",}\n', "data.jsonl")
    assert (error["row"], error["code"]) == (3, "malformed_json")


def test_malformed_json_array_element_is_reported_by_position(project, owner):
    error = rejected(project, owner, '[{"text": "a"}, {"text": "b"}, {"text": "c" "d"}]', "data.json")
    assert (error["row"], error["code"]) == (3, "malformed_json")


def test_json_object_instead_of_array_suggests_jsonl(project, owner):
    error = rejected(project, owner, '{"text": "a"}\n{"text": "b"}\n', "data.json")
    assert error["code"] == "malformed_json"
    assert ".jsonl" in error["message"]


@pytest.mark.parametrize(
    ("record", "field", "code"),
    [
        ({"text": 42}, "text", "wrong_type"),
        ({"text": "ok", "metadata": ["a"]}, "metadata", "wrong_type"),
        ({"text": "ok", "metadata": "{}"}, "metadata", "wrong_type"),
        ({"text": "ok", "split": "test"}, "split", "invalid_split"),
        ({"text": "ok", "split": 1}, "split", "wrong_type"),
        ({"text": "ok", "language": 7}, "language", "wrong_type"),
        ({"text": "ok", "language": "English language"}, "language", "invalid_language"),
        ({"text": "ok", "label": 1}, "label", "wrong_type"),
        ({"text": "ok", "id": True}, "id", "wrong_type"),
        ({"text": "ok", "id": "x" * 256}, "id", "invalid_id"),
        ({"text": "nul \u0000 inside"}, "text", "invalid_text"),
        ({"text": "ok", "metadata": {"k": "nul \u0000"}}, "metadata", "invalid_metadata"),
    ],
)
def test_wrong_value_types_are_refused(project, owner, record, field, code):
    body = json.dumps({"text": "fine"}) + "\n" + json.dumps(record) + "\n"
    error = rejected(project, owner, body, "data.jsonl")
    assert (error["row"], error["field"], error["code"]) == (2, field, code)


def test_json_row_that_is_not_an_object_is_refused(project, owner):
    error = rejected(project, owner, '[{"text": "a"}, "just a string"]', "data.json")
    assert (error["row"], error["code"]) == (2, "wrong_type")


def test_csv_metadata_that_is_not_json_is_refused(project, owner):
    error = rejected(project, owner, 'text,metadata\nhello,"{""a"": 1}"\nworld,{oops}\n')
    assert (error["row"], error["field"], error["code"]) == (3, "metadata", "malformed_json")


def test_csv_row_with_too_many_values_is_refused(project, owner):
    error = rejected(project, owner, "text,label\nhello,positive\nhello,again,positive\n")
    assert (error["row"], error["code"]) == (3, "wrong_field_count")


def test_csv_with_a_broken_quote_is_refused(project, owner):
    error = rejected(project, owner, 'text\n"fine"\n"broken"quote\n')
    assert (error["row"], error["code"]) == (3, "malformed_csv")


def test_file_over_the_size_limit_is_refused_with_413(project, owner, settings):
    settings.IMPORT_MAX_BYTES = 1000
    error = rejected(project, owner, "text\n" + "a reasonably short line\n" * 60, exc=PayloadTooLarge)
    assert error["code"] == "file_too_large"
    assert "1,000 bytes" in error["message"]


def _zip(payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.csv", payload)
    return buffer.getvalue()


CSV = b"text\n" + b"0" * 100_000 + b"\n"


@pytest.mark.parametrize(
    ("payload", "what"),
    [
        (_zip(CSV), "ZIP"),
        (gzip.compress(CSV), "gzip"),
        (bz2.compress(CSV), "bzip2"),
        (lzma.compress(CSV), "xz"),
        (b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 30, "7-Zip"),
    ],
)
def test_compressed_upload_is_refused_without_inflating_it(project, owner, payload, what):
    error = rejected(project, owner, payload, "data.csv", exc=UnsupportedMedia)
    assert error["code"] == "compressed_file"
    assert what in error["message"]
    assert "Upload the uncompressed CSV/JSONL/JSON" in error["message"]


@pytest.mark.parametrize(
    ("payload", "what"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG"),
        (b"GIF89a\x01\x00\x01\x00", "GIF"),
        (b"\x7fELF\x02\x01\x01\x00", "ELF"),
    ],
)
def test_binary_upload_is_refused_by_its_magic_bytes(project, owner, payload, what):
    error = rejected(project, owner, payload, "data.csv", exc=UnsupportedMedia)
    assert error["code"] == "binary_file"
    assert what in error["message"]


def test_nul_bytes_mark_a_file_as_binary(project, owner):
    error = rejected(project, owner, b"text\nhello\x00world\n", exc=UnsupportedMedia)
    assert error["code"] == "binary_file"
    assert "NUL" in error["message"]


def test_empty_file_is_refused(project, owner):
    assert rejected(project, owner, b"")["code"] == "empty_file"


def test_header_only_csv_is_refused_as_having_no_rows(project, owner):
    assert rejected(project, owner, "text,label\n")["code"] == "no_rows"


def test_unknown_extension_without_format_is_refused(project, owner):
    with pytest.raises(ValidationFailed, match=r"name it \.csv, \.jsonl or \.json"):
        upload(project, owner, "text\nhello\n", "data.txt")
    assert_nothing_written(project)


def test_one_bad_row_among_good_ones_writes_nothing(project, owner):
    rows = "".join(f"text number {i},positive\n" for i in range(200))
    error = rejected(project, owner, "text,label\n" + rows + "last one,angry\n")
    assert (error["row"], error["code"]) == (202, "unknown_label")


def test_errors_are_all_counted_and_the_first_fifty_shown(project, owner):
    body = "text,split\n" + "".join(f"row {i},nope\n" for i in range(120))
    with pytest.raises(ValidationFailed) as exc_info:
        upload(project, owner, body)
    details = exc_info.value.details
    assert details["error_count"] == 120
    assert len(details["errors"]) == 50
    assert [e["row"] for e in details["errors"][:3]] == [2, 3, 4]
    assert set(details["errors"][0]) == {"row", "field", "code", "message"}
    assert "120 errors" in exc_info.value.message
    assert_nothing_written(project)


def test_import_records_reports_errors_by_position(project, owner):
    with pytest.raises(ValidationFailed) as exc_info:
        import_records(
            project=project, user=owner, records=[{"text": "ok"}, {"text": ""}, "nope"], name="api", source="api"
        )
    details = exc_info.value.details
    assert details["error_count"] == 2
    assert [(e["row"], e["code"]) for e in details["errors"]] == [(2, "empty_text"), (3, "wrong_type")]
    assert_nothing_written(project)

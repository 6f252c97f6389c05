"""The streaming readers, on inputs larger than their read buffer."""

from __future__ import annotations

import io
import json

from labeling.importing import parsers
from labeling.importing.parsers import count_rows, read_csv, read_json_array, read_jsonl


def test_json_array_elements_spanning_read_buffers_are_decoded_whole():
    big = "x" * (parsers.READ_CHARS * 2 + 17)
    records = [{"text": "small"}, {"text": big}, {"text": 12345}, {"text": "after"}]
    rows = list(read_json_array(io.StringIO(json.dumps(records))))
    assert [row.row for row in rows] == [1, 2, 3, 4]
    assert [row.values["text"] for row in rows] == ["small", big, 12345, "after"]
    assert all(row.error is None for row in rows)


def test_json_array_number_cut_by_the_buffer_is_read_whole():
    padding = " " * (parsers.READ_CHARS - len('[{"text": "a"}, '))
    text = '[{"text": "a"},' + padding + "1234567, 8]"
    rows = list(read_json_array(io.StringIO(text)))
    assert [row.error.message for row in rows[1:]] == [
        'Each row must be a JSON object with a "text" key, not a number.'
    ] * 2
    assert len(rows) == 3


def test_empty_json_array_has_no_rows_and_trailing_garbage_is_an_error():
    assert list(read_json_array(io.StringIO("  [ ]  "))) == []
    rows = list(read_json_array(io.StringIO('[{"text": "a"}] x')))
    assert rows[-1].error.code == "malformed_json"
    assert rows[-1].row == 2


def test_missing_comma_between_elements_is_reported_at_the_next_element():
    rows = list(read_json_array(io.StringIO('[{"text": "a"} {"text": "b"}]')))
    assert rows[-1].error.code == "malformed_json"
    assert rows[-1].row == 2


def test_csv_rows_are_numbered_by_the_line_they_start_on():
    stream = io.StringIO('text,label\n"two\nlines",a\n\nfour,b\n')
    rows = list(read_csv(stream))
    assert [(row.row, row.values["text"]) for row in rows] == [(2, "two\nlines"), (5, "four")]


def test_csv_header_names_are_case_and_space_insensitive():
    rows = list(read_csv(io.StringIO(" Text ,LABEL\nhi,a\n")))
    assert rows[0].values == {"text": "hi", "label": "a"}


def test_jsonl_skips_blank_lines_but_keeps_line_numbers():
    rows = list(read_jsonl(io.StringIO('{"text": "a"}\n\n   \n{"text": "b"}\n')))
    assert [row.row for row in rows] == [1, 4]


def test_count_rows_stops_at_the_limit():
    stream = io.StringIO("text\n" + "row\n" * 1000)
    assert count_rows(read_csv(stream), limit=10) == 10
    assert stream.tell() < len(stream.getvalue())

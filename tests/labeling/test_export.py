"""Exports: CSV and JSON Lines that round-trip every value, streamed in keyset batches."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from labeling.services import exports
from labeling.services.exports import export_columns, export_rows
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db

# "annotations" is the item's annotation log; the last three come from modeling's export extension
# (each item's latest prediction).
HEADER = [
    "id",
    "external_id",
    "text",
    "label",
    "gold_source",
    "language",
    "split",
    "status",
    "metadata",
    "created_at",
    "annotations",
    "prediction",
    "prediction_score",
    "prediction_version",
]
TRICKY_TEXT = 'Line one,\nline "two";\r\n\tמילים בעברית 🙂 =SUM(A1)'


@pytest.fixture
def exported(project, other_project):
    negative, _neutral, positive = project.labels.all()
    ItemFactory(project=other_project, text="not ours")
    return [
        ItemFactory(
            project=project,
            text=TRICKY_TEXT,
            external_id="ext-1",
            language="he",
            split="eval",
            status="gold",
            gold_label=negative,
            gold_source="import",
            metadata={"source": "mail", "nested": {"n": [1, 2]}},
        ),
        ItemFactory(project=project, text="plain", language="en"),
        ItemFactory(project=project, text="good one", status="gold", gold_label=positive, gold_source="single"),
    ]


def download(client, url) -> tuple[StreamingHttpResponse, str]:
    response = client.get(url)
    assert isinstance(response, StreamingHttpResponse), type(response)
    return response, b"".join(response.streaming_content).decode("utf-8")


def test_csv_round_trips_every_value(project, exported, owner, client_for):
    url = reverse("labeling:export", kwargs={"slug": project.slug, "fmt": "csv"})
    response, body = download(client_for(owner), url)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith(f'attachment; filename="{project.slug}-')
    rows = list(csv.DictReader(io.StringIO(body, newline="")))
    assert list(rows[0]) == HEADER
    assert [row["id"] for row in rows] == [str(item.pk) for item in exported]
    first = rows[0]
    assert first["text"] == TRICKY_TEXT
    assert (first["external_id"], first["label"], first["gold_source"]) == ("ext-1", "negative", "import")
    assert (first["language"], first["split"], first["status"]) == ("he", "eval", "gold")
    assert json.loads(first["metadata"]) == {"source": "mail", "nested": {"n": [1, 2]}}
    assert (rows[1]["label"], rows[1]["external_id"], rows[1]["gold_source"]) == ("", "", "")
    assert rows[2]["label"] == "positive"


def test_jsonl_round_trips_every_value(project, exported, owner, api_client_for):
    url = reverse("api-export", kwargs={"slug": project.slug}) + "?format=jsonl"
    response, body = download(api_client_for(owner), url)
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    rows = [json.loads(line) for line in body.splitlines()]
    assert [row["id"] for row in rows] == [item.pk for item in exported]
    assert rows[0]["text"] == TRICKY_TEXT
    assert rows[0]["metadata"] == {"source": "mail", "nested": {"n": [1, 2]}}
    assert (rows[0]["label"], rows[1]["label"], rows[2]["label"]) == ("negative", None, "positive")
    assert rows[1]["external_id"] is None
    assert list(rows[0]) == HEADER


def test_api_export_defaults_to_csv(project, exported, admin_member, api_client_for):
    response, body = download(api_client_for(admin_member), reverse("api-export", kwargs={"slug": project.slug}))
    assert response["Content-Type"].startswith("text/csv")
    assert body.splitlines()[0] == ",".join(HEADER)


def test_an_empty_project_exports_a_header_only(project, owner, client_for):
    _response, body = download(
        client_for(owner), reverse("labeling:export", kwargs={"slug": project.slug, "fmt": "csv"})
    )
    assert body == ",".join(HEADER) + "\r\n"
    _response, body = download(
        client_for(owner), reverse("labeling:export", kwargs={"slug": project.slug, "fmt": "jsonl"})
    )
    assert body == ""


def test_rows_are_read_in_keyset_batches_each_row_once(project, monkeypatch):
    monkeypatch.setattr(exports, "BATCH_SIZE", 3)
    items = ItemFactory.create_batch(7, project=project)
    with CaptureQueriesContext(connection) as queries:
        ids = [row["id"] for row in export_rows(project=project)]
    assert ids == [item.pk for item in items]
    item_sql = [q["sql"].upper() for q in queries.captured_queries if "LABELING_ITEM" in q["sql"].upper()]
    assert len(item_sql) == 3  # 3 + 3 + 1 rows
    assert all("LIMIT 3" in sql and "OFFSET" not in sql for sql in item_sql)


def test_streaming_starts_before_all_rows_are_read(project, owner, client_for, monkeypatch):
    monkeypatch.setattr(exports, "BATCH_SIZE", 2)
    monkeypatch.setattr(exports, "ROWS_PER_CHUNK", 2)
    ItemFactory.create_batch(5, project=project)
    response = client_for(owner).get(reverse("labeling:export", kwargs={"slug": project.slug, "fmt": "jsonl"}))
    with CaptureQueriesContext(connection) as queries:
        chunks = iter(response.streaming_content)
        first = next(chunks)
    # The first chunk needed one batch only; the response did not materialise the export up front.
    assert len([q for q in queries.captured_queries if "labeling_item" in q["sql"]]) == 1
    assert first.count(b"\n") == 2


def test_columns_can_be_extended(project):
    ItemFactory(project=project, text="abc")
    columns = [*export_columns(project), exports.ExportColumn("length", lambda row, _ctx: len(row["text"]), ("text",))]
    assert next(export_rows(project=project, columns=columns))["length"] == 3


def test_unknown_format_is_a_400_not_a_500(project, owner, client_for, api_client_for):
    page = client_for(owner).get(reverse("labeling:export", kwargs={"slug": project.slug, "fmt": "xml"}))
    assert page.status_code == 400
    assert "Unknown export format &#x27;xml&#x27;; use csv or jsonl." in page.content.decode()
    response = api_client_for(owner).get(reverse("api-export", kwargs={"slug": project.slug}) + "?format=xml")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"

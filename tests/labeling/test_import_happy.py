"""Successful imports: items, gold labels, splits, metadata, duplicates and counts."""

from __future__ import annotations

import hashlib
import io
import json

from labeling.models import Dataset, Item, Label, ProjectCounts
from labeling.services.imports import import_records, import_upload
from tests.factories import ItemFactory


def upload(project, user, data: str | bytes, filename: str, fmt: str | None = None):
    raw = data.encode() if isinstance(data, str) else data
    return import_upload(project=project, user=user, fileobj=io.BytesIO(raw), filename=filename, fmt=fmt)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_csv_import_creates_items_with_gold_labels_splits_and_metadata(project, owner):
    body = (
        "id,text,label,language,split,metadata\n"
        'r1,Great product!,positive,en,train,"{""source"": ""web"", ""stars"": 5}"\n'
        "r2,  Terrible  ,,de,eval,\n"
        "r3,Meh,neutral,,,\n"
    )
    outcome = upload(project, owner, body, "reviews.csv")
    assert not outcome.queued
    dataset = outcome.dataset
    assert (dataset.name, dataset.format, dataset.source) == ("reviews.csv", "csv", "upload")
    assert (dataset.rows_total, dataset.items_created, dataset.duplicates_skipped, dataset.gold_labels) == (3, 3, 0, 2)
    assert dataset.file_sha256 == hashlib.sha256(body.encode()).hexdigest()
    assert dataset.created_by == owner
    items = {item.external_id: item for item in Item.objects.filter(project=project)}
    positive = Label.objects.get(project=project, name="positive")
    r1, r2, r3 = items["r1"], items["r2"], items["r3"]
    assert (r1.text, r1.status, r1.gold_label, r1.gold_source) == ("Great product!", "gold", positive, "import")
    assert (r1.language, r1.split, r1.metadata) == ("en", "train", {"source": "web", "stars": 5})
    assert (r2.text, r2.status, r2.gold_label, r2.gold_source, r2.split) == (
        "  Terrible  ",
        "unlabeled",
        None,
        "",
        "eval",
    )
    assert r2.content_hash == sha("  Terrible  ")
    assert (r3.split, r3.language, r3.metadata, r3.gold_label.name) == ("pool", "", {}, "neutral")
    assert {item.dataset_id for item in items.values()} == {dataset.pk}
    counts = ProjectCounts.objects.get(project=project)
    assert (counts.items, counts.unlabeled, counts.gold) == (3, 1, 2)


def test_jsonl_import_accepts_integer_ids_and_normalises_language_codes(project, owner):
    lines = [
        {"id": 17, "text": "Hola", "language": "es_MX", "label": "Positive"},
        {"text": "Ciao", "split": "TRAIN", "metadata": {"tags": ["a", "b"]}},
    ]
    body = "\n".join(json.dumps(line) for line in lines) + "\n\n"
    dataset = upload(project, owner, body, "data.ndjson").dataset
    assert (dataset.format, dataset.items_created, dataset.gold_labels) == ("jsonl", 2, 1)
    hola = Item.objects.get(project=project, external_id="17")
    assert (hola.language, hola.gold_label.name) == ("es-mx", "positive")
    ciao = Item.objects.get(project=project, text="Ciao")
    assert (ciao.split, ciao.metadata, ciao.external_id) == ("train", {"tags": ["a", "b"]}, None)


def test_pretty_printed_json_array_imports_with_unicode_and_newlines(project, owner):
    records = [{"text": "שלום עולם", "language": "he"}, {"text": "line one\nline two 🚀", "label": "negative"}]
    dataset = upload(project, owner, json.dumps(records, indent=2, ensure_ascii=False), "data.json").dataset
    assert (dataset.format, dataset.items_created, dataset.gold_labels) == ("json", 2, 1)
    assert set(Item.objects.filter(project=project).values_list("text", flat=True)) == {r["text"] for r in records}
    item = Item.objects.get(project=project, language="he")
    assert item.content_hash == sha("שלום עולם")


def test_format_override_beats_the_extension(project, owner):
    dataset = upload(project, owner, '{"text": "a"}\n{"text": "b"}\n', "export.txt", fmt="jsonl").dataset
    assert (dataset.format, dataset.items_created) == ("jsonl", 2)


def test_csv_with_bom_crlf_and_multiline_cells(project, owner):
    body = '\ufefftext,label\r\n"first\r\nspans two lines",positive\r\nsecond,negative\r\n'
    dataset = upload(project, owner, body.encode("utf-8"), "excel.csv").dataset
    assert (dataset.items_created, dataset.gold_labels) == (2, 2)
    assert Item.objects.filter(project=project, text="first\r\nspans two lines").exists()


def test_duplicate_texts_are_kept_once_and_reported(project, owner):
    ItemFactory(project=project, text="already here")
    ProjectCounts.objects.filter(project=project).update(items=1, unlabeled=1)
    body = "text,label\nnew one,positive\nalready here,positive\nnew one,negative\nNew one,\nanother,\n"
    outcome = upload(project, owner, body, "dups.csv")
    dataset = outcome.dataset
    assert (dataset.rows_total, dataset.items_created, dataset.duplicates_skipped, dataset.gold_labels) == (5, 3, 2, 1)
    assert dataset.duplicate_rows == [
        {"row": 4, "duplicate_of": "an earlier row of this file"},
        {"row": 3, "duplicate_of": "an existing item of this project"},
    ]
    texts = sorted(Item.objects.filter(project=project).values_list("text", flat=True))
    assert texts == ["New one", "already here", "another", "new one"]
    assert Item.objects.get(project=project, text="new one").gold_label.name == "positive"
    counts = ProjectCounts.objects.get(project=project)
    assert (counts.items, counts.unlabeled, counts.gold) == (4, 3, 1)


def test_second_import_adds_to_the_counts(project, owner):
    upload(project, owner, "text\none\ntwo\n", "a.csv")
    upload(project, owner, "text,label\nthree,positive\none,positive\n", "b.csv")
    counts = ProjectCounts.objects.get(project=project)
    assert (counts.items, counts.unlabeled, counts.gold) == (3, 2, 1)
    assert list(Dataset.objects.filter(project=project).order_by("id").values_list("items_created", flat=True)) == [
        2,
        1,
    ]


def test_unknown_columns_are_ignored_and_named(project, owner):
    dataset = upload(project, owner, "text,score,author\nhello,3,ann\n", "extra.csv").dataset
    assert dataset.ignored_fields == ["author", "score"]
    assert Item.objects.get(project=project).metadata == {}


def test_import_records_writes_items_synchronously(project, owner, settings):
    settings.IMPORT_SYNC_MAX_ROWS = 2
    records = [{"text": f"seed {i}", "label": "positive" if i % 2 else None} for i in range(10)]
    dataset = import_records(project=project, user=owner, records=records, name="demo seed", source="seed")
    assert (dataset.name, dataset.format, dataset.source, dataset.job) == ("demo seed", "json", "seed", None)
    assert (dataset.items_created, dataset.gold_labels) == (10, 5)
    assert Item.objects.filter(project=project, status="gold", gold_source="import").count() == 5


def test_items_of_other_projects_do_not_count_as_duplicates(project, other_project, owner):
    ItemFactory(project=other_project, text="shared text", external_id="x1")
    dataset = upload(project, owner, "id,text\nx1,shared text\n", "a.csv").dataset
    assert dataset.items_created == 1
    assert Item.objects.filter(text="shared text").count() == 2


def test_texts_with_tabs_newlines_and_backslashes_are_stored_exactly(project, owner):
    records = [
        {"id": "tab\tid", "text": "tab\there\\back\\\\slash\r\nend\\N", "metadata": {"q": 'say "hi"\\n', "t": "a\tb"}},
        {"text": "\\N"},
    ]
    body = "\n".join(json.dumps(record) for record in records)
    upload(project, owner, body, "tricky.jsonl")
    item = Item.objects.get(project=project, external_id="tab\tid")
    assert item.text == records[0]["text"]
    assert item.content_hash == sha(records[0]["text"])
    assert item.metadata == records[0]["metadata"]
    assert Item.objects.filter(project=project, text="\\N").exists()

"""POST /api/v1/projects/{slug}/imports and GET …/datasets: status codes and bodies."""

from __future__ import annotations

import gzip
import io

import pytest

from labeling.models import Dataset, Item

URL = "/api/v1/projects/acme-sentiment/imports"


def named(data: bytes, name: str) -> io.BytesIO:
    file = io.BytesIO(data)
    file.name = name
    return file


def post_file(client, data: bytes, name: str = "data.csv", **extra):
    return client.post(URL, {"file": named(data, name), **extra}, format="multipart")


def test_multipart_csv_import_returns_201_with_the_dataset_summary(project, owner, api_client_for):
    response = post_file(api_client_for(owner), b"text,label\nhello,positive\nhello,positive\nbye,\n")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "data.csv" and body["source"] == "api" and body["format"] == "csv"
    assert (body["rows_total"], body["items_created"], body["duplicates_skipped"], body["gold_labels"]) == (3, 2, 1, 1)
    assert body["duplicate_rows"] == [{"row": 3, "duplicate_of": "an earlier row of this file"}]
    assert body["created_by"] == "owner" and body["job"] is None
    assert Item.objects.filter(project=project).count() == 2


def test_format_field_overrides_the_extension(project, owner, api_client_for):
    response = post_file(api_client_for(owner), b'{"text": "a"}\n', "rows.txt", format="jsonl")
    assert response.status_code == 201, response.content
    assert response.json()["format"] == "jsonl"


def test_json_body_import_returns_201(project, admin_member, api_client_for):
    items = [{"text": "one", "label": "negative", "split": "eval"}, {"text": "two", "id": "b"}]
    response = api_client_for(admin_member).post(URL, {"items": items, "name": "from api"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "from api" and response.json()["items_created"] == 2
    assert Item.objects.get(project=project, text="one").split == "eval"


def test_invalid_rows_return_400_with_the_row_report(project, owner, api_client_for):
    response = post_file(api_client_for(owner), b"text,label\nfine,positive\n,positive\nok,nope\n")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["error_count"] == 2
    assert [(e["row"], e["field"], e["code"]) for e in error["details"]["errors"]] == [
        (3, "text", "empty_text"),
        (4, "label", "unknown_label"),
    ]
    assert not Item.objects.exists() and not Dataset.objects.exists()


def test_json_body_errors_are_numbered_by_position(project, owner, api_client_for):
    response = api_client_for(owner).post(URL, {"items": [{"text": "a"}, {"txt": "b"}]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["errors"][0]["row"] == 2
    assert not Item.objects.exists()


def test_json_body_without_items_is_400(project, owner, api_client_for):
    response = api_client_for(owner).post(URL, {"rows": []}, format="json")
    assert response.status_code == 400
    assert "items" in response.json()["error"]["details"]


def test_file_over_the_limit_is_413(project, owner, api_client_for, settings):
    settings.IMPORT_MAX_BYTES = 2_000
    response = post_file(api_client_for(owner), b"text\n" + b"a line of text\n" * 200)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not Item.objects.exists()


def test_declared_body_far_over_the_limit_is_413_before_reading(project, owner, api_client_for, settings):
    settings.IMPORT_MAX_BYTES = 1_000
    response = post_file(api_client_for(owner), b"text\n" + b"a line of text\n" * 10_000)
    assert response.status_code == 413
    assert "import limit" in response.json()["error"]["message"]


def test_json_body_over_the_body_limit_is_413(project, owner, api_client_for, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_024
    items = [{"text": f"text {i}"} for i in range(200)]
    response = api_client_for(owner).post(URL, {"items": items}, format="json")
    assert response.status_code == 413
    assert "upload larger datasets as a file" in response.json()["error"]["message"]


def test_compressed_upload_is_415(project, owner, api_client_for):
    response = post_file(api_client_for(owner), gzip.compress(b"text\nhello\n"), "data.csv.gz")
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert error["details"]["errors"][0]["code"] == "compressed_file"


def test_large_file_is_accepted_as_a_job_with_202(project, owner, api_client_for, settings, tmp_path):
    settings.IMPORT_SYNC_MAX_ROWS = 10
    settings.ARTIFACT_ROOT = tmp_path
    body = b"text\n" + b"".join(f"row {i}\n".encode() for i in range(11))
    response = post_file(api_client_for(owner), body)
    assert response.status_code == 202, response.content
    job = response.json()["job"]
    assert job["status"] == "queued"
    assert job["url"] == f"/api/v1/jobs/{job['id']}" == response["Location"]
    assert api_client_for(owner).get(job["url"]).json()["kind"] == "import"


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [("anonymous", 401, "not_authenticated"), ("outsider", 404, "not_found"), ("reviewer", 403, "permission_denied")],
)
def test_only_owners_and_admins_may_import(users, api_client_for, role, status, code):
    response = post_file(api_client_for(users[role]), b"text\nhello\n")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not Item.objects.exists()


def test_dataset_list_shows_the_project_datasets_newest_first(project, owner, reviewer, api_client_for):
    client = api_client_for(owner)
    post_file(client, b"text\none\n", "first.csv")
    post_file(client, b"text\ntwo\n", "second.csv")
    response = api_client_for(reviewer).get("/api/v1/projects/acme-sentiment/datasets")
    assert response.status_code == 200
    assert [d["name"] for d in response.json()] == ["second.csv", "first.csv"]
    assert response.json()[0]["items_created"] == 1


def test_dataset_list_hides_the_project_from_outsiders(project, outsider, api_client_for):
    assert api_client_for(outsider).get("/api/v1/projects/acme-sentiment/datasets").status_code == 404


def test_schema_documents_the_import_endpoints(owner, api_client_for):
    response = api_client_for(owner).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    post = paths["/api/v1/projects/{slug}/imports"]["post"]
    assert set(post["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"201", "202", "400", "413", "415"} <= set(post["responses"])
    assert "get" in paths["/api/v1/projects/{slug}/datasets"]

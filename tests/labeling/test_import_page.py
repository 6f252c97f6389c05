"""The import page: the form, a successful upload, the error table, background imports."""

from __future__ import annotations

import gzip

from django.core.files.uploadedfile import SimpleUploadedFile

from labeling.models import Item
from webapp.models import Job

URL = "/projects/acme-sentiment/import/"


def test_page_shows_the_form_columns_and_labels(project, owner, client_for):
    response = client_for(owner).get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'enctype="multipart/form-data"' in html
    for column in ("<code>text</code>", "<code>id</code>", "<code>split</code>", "<code>metadata</code>"):
        assert column in html
    assert "negative" in html and "Nothing imported yet." in html


def test_successful_upload_redirects_to_the_project_with_a_message(project, owner, client_for):
    client = client_for(owner)
    file = SimpleUploadedFile("reviews.csv", b"text,label\ngood,positive\ngood,positive\nmeh,\n", "text/csv")
    response = client.post(URL, {"file": file})
    assert response.status_code == 302
    assert response["Location"] == "/projects/acme-sentiment/"
    assert Item.objects.filter(project=project).count() == 2
    page = client.get(URL).content.decode()
    assert "Imported 2 items from reviews.csv (1 with gold labels, 1 duplicates skipped)." in page
    assert '<td dir="auto">reviews.csv</td>' in page


def test_errors_are_shown_as_a_row_numbered_table(project, owner, client_for):
    body = "text,split\n" + "".join(f"row {i},later\n" for i in range(60))
    response = client_for(owner).post(URL, {"file": SimpleUploadedFile("bad.csv", body.encode())})
    assert response.status_code == 400
    html = response.content.decode()
    assert "60 errors, first 50 shown" in html
    assert html.count("<code>invalid_split</code>") == 50
    assert "<tr><td>2</td><td>split</td>" in html
    assert not Item.objects.exists()


def test_compressed_upload_is_refused_on_the_page(project, owner, client_for):
    file = SimpleUploadedFile("data.csv", gzip.compress(b"text\nhello\n"))
    response = client_for(owner).post(URL, {"file": file})
    assert response.status_code == 415
    assert "Upload the uncompressed CSV/JSONL/JSON" in response.content.decode()


def test_large_upload_redirects_to_the_job_page(project, owner, client_for, settings, tmp_path):
    settings.IMPORT_SYNC_MAX_ROWS = 5
    settings.ARTIFACT_ROOT = tmp_path
    body = b"text\n" + b"".join(f"row {i}\n".encode() for i in range(6))
    response = client_for(owner).post(URL, {"file": SimpleUploadedFile("big.csv", body), "format": "csv"})
    job = Job.objects.get(project=project, kind="import")
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{job.pk}/"


def test_missing_file_rerenders_the_form(project, owner, client_for):
    response = client_for(owner).post(URL, {})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()


def test_reviewers_cannot_open_the_import_page(project, reviewer, client_for):
    assert client_for(reviewer).get(URL).status_code == 403

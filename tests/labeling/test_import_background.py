"""Large imports run as a job: the upload waits on disk, progress is reported, a cancel writes nothing."""

from __future__ import annotations

import io
import threading
import time

import pytest
from django.db import connection

from labeling.models import Dataset, Item, ProjectCounts
from labeling.services.imports import import_file, import_upload, upload_path
from labeling.tasks import run_import
from tests.conftest import requires_postgres
from webapp.jobs import job_cancel, run_job
from webapp.models import Job, JobCancelled


def csv_body(rows: int, label_every: int = 0) -> bytes:
    lines = ["id,text,label"]
    for i in range(rows):
        label = "positive" if label_every and i % label_every == 0 else ""
        lines.append(f"ext-{i},short text number {i},{label}")
    return ("\n".join(lines) + "\n").encode()


def queue(project, user, body: bytes, filename: str = "big.csv") -> Job:
    outcome = import_upload(project=project, user=user, fileobj=io.BytesIO(body), filename=filename)
    assert outcome.queued and outcome.dataset is None
    return outcome.job


@pytest.fixture
def small_sync_limit(settings, tmp_path):
    settings.IMPORT_SYNC_MAX_ROWS = 20
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    return settings


def test_large_upload_is_queued_with_the_file_kept_on_disk(project, owner, small_sync_limit):
    body = csv_body(50)
    job = queue(project, owner, body)
    assert (job.kind, job.status, job.project, job.created_by) == ("import", "queued", project, owner)
    assert job.params["format"] == "csv" and job.params["name"] == "big.csv" and job.params["bytes"] == len(body)
    assert upload_path(job.pk).read_bytes() == body
    assert [p.name for p in upload_path(job.pk).parent.iterdir()] == [str(job.pk)]
    assert not Item.objects.filter(project=project).exists()


def test_running_the_job_imports_everything_and_deletes_the_upload(project, owner, small_sync_limit):
    job = queue(project, owner, csv_body(50, label_every=5))
    run_import(str(job.pk))
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.progress == 1.0
    dataset = Dataset.objects.get(project=project)
    assert dataset.job_id == job.pk
    assert job.result == {
        "dataset_id": dataset.pk,
        "dataset": "big.csv",
        "rows_total": 50,
        "items_created": 50,
        "duplicates_skipped": 0,
        "gold_labels": 10,
    }
    assert Item.objects.filter(project=project).count() == 50
    counts = ProjectCounts.objects.get(project=project)
    assert (counts.items, counts.unlabeled, counts.gold) == (50, 40, 10)
    assert not upload_path(job.pk).exists()


def test_a_job_with_bad_rows_fails_with_the_row_report_and_writes_nothing(project, owner, small_sync_limit):
    body = csv_body(40) + b"ext-x,,\n"
    job = queue(project, owner, body)
    run_import(str(job.pk))
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.result["details"]["errors"] == [
        {"row": 42, "field": "text", "code": "empty_text", "message": "The text is empty."}
    ]
    assert not Item.objects.filter(project=project).exists()
    assert not Dataset.objects.exists()
    assert not upload_path(job.pk).exists()


def test_cancelling_a_queued_import_writes_nothing_and_deletes_the_upload(project, owner, small_sync_limit):
    job = queue(project, owner, csv_body(50))
    job_cancel(job=job, user=owner)
    run_import(str(job.pk))
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert not Item.objects.filter(project=project).exists()
    assert not upload_path(job.pk).exists()


def test_uploads_of_jobs_cancelled_while_queued_are_swept_by_the_next_queued_import(project, owner, small_sync_limit):
    cancelled = queue(project, owner, csv_body(30))
    job_cancel(job=cancelled, user=owner)  # the worker never runs a revoked task, so it cannot clean up
    assert upload_path(cancelled.pk).exists()
    waiting = queue(project, owner, csv_body(40))
    assert not upload_path(cancelled.pk).exists()
    assert upload_path(waiting.pk).exists()


def test_progress_is_reported_while_checking_then_while_writing(project, owner, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(csv_body(12_000))
    reports: list[tuple[float, str]] = []
    dataset = import_file(
        project=project,
        user=owner,
        path=path,
        fmt="csv",
        name="rows.csv",
        progress=lambda fraction, message: reports.append((fraction, message)),
    )
    assert dataset.items_created == 12_000
    fractions = [fraction for fraction, _ in reports]
    assert fractions == sorted(fractions)
    assert 0 < fractions[0] < 0.5 <= fractions[-1] < 1
    assert reports[0][1] == "Checked 5,000 rows"
    assert reports[-1][1] == "Wrote 12,000 of 12,000 items"


def test_cancel_seen_mid_write_rolls_back_every_written_row(project, owner, tmp_path):
    """The cancel lands after items were inserted in the import's transaction: none survive it."""
    path = tmp_path / "rows.csv"
    path.write_bytes(csv_body(3_000))
    job = Job.objects.create(kind=Job.Kind.IMPORT, project=project, created_by=owner)
    seen_during_write: list[int] = []

    def progress(fraction: float, message: str) -> None:
        if fraction >= 0.5:  # writing: the rows so far are in the database, uncommitted
            seen_during_write.append(Item.objects.filter(project=project).count())
            Job.objects.filter(pk=job.pk).update(cancel_requested=True)
        job.set_progress(fraction, message)

    def body(job: Job) -> dict:
        import_file(project=project, user=owner, path=path, fmt="csv", name="rows.csv", job=job, progress=progress)
        return {}

    run_job(str(job.pk), Job.Kind.IMPORT, body)
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert seen_during_write and seen_during_write[0] > 0
    assert not Item.objects.filter(project=project).exists()
    assert not Dataset.objects.exists()
    assert ProjectCounts.objects.get(project=project).items == 0


def test_job_set_progress_raises_once_cancelled(project):
    job = Job.objects.create(kind=Job.Kind.IMPORT, project=project)
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    with pytest.raises(JobCancelled):
        job.set_progress(0.5, "x")


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_cancel_from_another_connection_stops_a_running_import(project, owner, settings, tmp_path):
    """Real concurrency: the import runs in a worker thread, the cancel comes from here, mid-write."""
    settings.IMPORT_SYNC_MAX_ROWS = 100
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    job = queue(project, owner, csv_body(200_000))
    worker = threading.Thread(target=_run_and_close, args=(str(job.pk),))
    worker.start()
    live = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and worker.is_alive():
        job.refresh_from_db()
        live.append(job.progress)
        if job.progress >= 0.5:
            job_cancel(job=job, user=owner)
            break
        time.sleep(0.005)
    worker.join(60)
    job.refresh_from_db()
    assert job.status == "cancelled", (job.status, job.message)
    assert any(0 < p < 0.5 for p in live), "progress of the checking pass was visible from another connection"
    assert not Item.objects.filter(project=project).exists()
    assert not Dataset.objects.exists()
    assert not upload_path(job.pk).exists()


def _run_and_close(job_id: str) -> None:
    try:
        run_import(job_id)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_api_upload_runs_as_an_eager_celery_job(project, owner, api_client_for, small_sync_limit):
    from webapp.celery import app

    app.conf.task_always_eager = True
    try:
        body = csv_body(60)
        file = io.BytesIO(body)
        file.name = "big.csv"
        response = api_client_for(owner).post(
            f"/api/v1/projects/{project.slug}/imports", {"file": file}, format="multipart"
        )
    finally:
        app.conf.task_always_eager = False
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert response.json()["job"]["url"] == f"/api/v1/jobs/{job.pk}"
    assert job.status == "succeeded", job.error
    assert job.celery_task_id
    assert Item.objects.filter(project=project).count() == 60
    assert not upload_path(job.pk).exists()


def test_sweep_deletes_uploads_of_cancelled_or_vanished_jobs_only(project, owner, settings, tmp_path):
    from labeling.services.imports import import_uploads_sweep, upload_path
    from labeling.tasks import sweep_import_uploads
    from webapp.jobs import job_cancel, job_create

    settings.ARTIFACT_ROOT = tmp_path
    waiting = job_create(kind="import", project_id=project.pk, user=owner)
    cancelled = job_create(kind="import", project_id=project.pk, user=owner)
    job_cancel(job=cancelled, user=owner)
    vanished = job_create(kind="import", project_id=project.pk, user=owner)
    for job in (waiting, cancelled, vanished):
        upload_path(job.pk).parent.mkdir(parents=True, exist_ok=True)
        upload_path(job.pk).write_text("text\nhello\n")
    vanished_path = upload_path(vanished.pk)
    vanished.delete()
    assert sweep_import_uploads() == 2
    assert upload_path(waiting.pk).exists()
    assert not upload_path(cancelled.pk).exists() and not vanished_path.exists()
    assert import_uploads_sweep() == 0

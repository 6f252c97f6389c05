"""Real tasks through a real Celery worker process (Redis in CI, the filesystem broker by default)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from tests.factories import ProjectFactory, UserFactory
from tests.worker_harness import running_worker, wait_until
from webapp.celery import app
from webapp.models import Job
from webapp.tasks import MAX_ATTEMPTS, REAP_GRACE_SECONDS, reap_stale_jobs

pytestmark = pytest.mark.integration


def _running_job(*, started_ago: timedelta, attempts: int = 1) -> Job:
    return Job.objects.create(
        kind=Job.Kind.TRAIN,
        status=Job.Status.RUNNING,
        started_at=timezone.now() - started_ago,
        attempts=attempts,
    )


def _limit(extra_seconds: int) -> timedelta:
    return timedelta(seconds=settings.JOB_HARD_TIME_LIMIT + REAP_GRACE_SECONDS + extra_seconds)


@pytest.mark.django_db
def test_reaper_fails_jobs_past_the_hard_limit_with_an_actionable_message():
    stale = _running_job(started_ago=_limit(60))
    healthy = _running_job(started_ago=_limit(-60))
    assert reap_stale_jobs() == {"timed_out": 1, "worker_lost": 0}
    stale.refresh_from_db()
    healthy.refresh_from_db()
    assert stale.status == Job.Status.FAILED and stale.finished_at is not None
    assert "hard time limit" in stale.error and "JOB_HARD_TIME_LIMIT" in stale.error
    assert healthy.status == Job.Status.RUNNING


@pytest.mark.django_db
def test_reaper_gives_up_on_jobs_whose_worker_keeps_dying():
    dying = _running_job(started_ago=timedelta(minutes=1), attempts=MAX_ATTEMPTS + 1)
    retrying = _running_job(started_ago=timedelta(minutes=1), attempts=MAX_ATTEMPTS)
    finished = Job.objects.create(kind=Job.Kind.TRAIN, status=Job.Status.SUCCEEDED, attempts=MAX_ATTEMPTS + 2)
    assert reap_stale_jobs() == {"timed_out": 0, "worker_lost": 1}
    dying.refresh_from_db()
    retrying.refresh_from_db()
    finished.refresh_from_db()
    assert dying.status == Job.Status.FAILED and f"died {MAX_ATTEMPTS + 1} times" in dying.error
    assert (retrying.status, finished.status) == (Job.Status.RUNNING, Job.Status.SUCCEEDED)


def test_beat_schedules_the_reaper_and_the_worker_knows_the_task():
    app.loader.import_default_modules()
    entry = app.conf.beat_schedule["reap-stale-jobs"]
    assert entry["task"] in app.tasks
    assert 0 < entry["schedule"] <= 3600


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_reaper(celery_worker_process):
    stale = _running_job(started_ago=_limit(60))
    healthy = _running_job(started_ago=timedelta(seconds=5))
    reap_stale_jobs.delay()

    def reaped() -> bool:
        stale.refresh_from_db()
        return stale.status == Job.Status.FAILED

    wait_until(reaped, timeout=60, what="the stale job being failed", log=celery_worker_process.log)
    celery_worker_process.wait_for_log("webapp.tasks.reap_stale_jobs", timeout=10)
    healthy.refresh_from_db()
    assert healthy.status == Job.Status.RUNNING
    assert "hard time limit" in stale.error


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_consumes_the_gpu_queue(celery_worker_process):
    stale = _running_job(started_ago=_limit(60))
    reap_stale_jobs.apply_async(queue="gpu")

    def reaped() -> bool:
        stale.refresh_from_db()
        return stale.status == Job.Status.FAILED

    wait_until(reaped, timeout=60, what="the task sent to the gpu queue running", log=celery_worker_process.log)


@pytest.mark.django_db(transaction=True)
def test_a_large_upload_is_imported_by_a_real_worker(tmp_path, settings):
    from labeling.services.imports import import_upload

    settings.IMPORT_SYNC_MAX_ROWS = 5
    project = ProjectFactory(slug="worker-import")
    user = UserFactory(username="importer")
    rows = "".join(f"text {n} for the worker,{('negative', 'positive')[n % 2]}\n" for n in range(40))
    upload = io.BytesIO(f"text,label\n{rows}".encode())
    with running_worker(tmp_path, env={"IMPORT_SYNC_MAX_ROWS": "5"}) as worker:
        outcome = import_upload(project=project, user=user, fileobj=upload, filename="big.csv")
        assert outcome.queued and outcome.dataset is None
        job = outcome.job

        def finished() -> bool:
            job.refresh_from_db()
            return job.is_finished

        wait_until(finished, timeout=90, what="the import job finishing", log=worker.log)
        worker.wait_for_log("labeling.tasks.run_import", timeout=10)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert project.items.count() == 40
    assert project.items.filter(gold_label__name="positive").count() == 20
    assert job.progress == 1.0

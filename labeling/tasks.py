"""Celery tasks of the labeling app: thin wrappers that run a service as a ``Job``."""

from __future__ import annotations

from celery import shared_task

from labeling.services.imports import import_job_run, import_upload_discard, import_uploads_sweep
from labeling.services.queue import lease_expire_sweep
from webapp.jobs import run_job
from webapp.models import Job


@shared_task(name="labeling.tasks.run_import", queue="default", ignore_result=True)
def run_import(job_id: str) -> None:
    """Run a queued dataset import, then delete its upload however the job ended."""
    try:
        run_job(job_id, Job.Kind.IMPORT, import_job_run)
    finally:
        import_upload_discard(job_id=job_id)


@shared_task(name="labeling.tasks.sweep_import_uploads", queue="default", ignore_result=True)
def sweep_import_uploads() -> int:
    """Delete uploads left behind by import jobs that were cancelled before they ran."""
    return import_uploads_sweep()


@shared_task(name="labeling.tasks.expire_leases", queue="default", ignore_result=True)
def expire_leases() -> int:
    """Return items whose lease ran out (no heartbeat from an open page) to the queue."""
    return lease_expire_sweep()

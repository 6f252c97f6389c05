"""Celery tasks: drift (thin: ids in, a service call, the result recorded).

``build_drift_reference`` is routed to the ``gpu`` queue (webapp/celery.py), like modeling's
comparison: it scores the eval split with the version's model (on a machine without CUDA the gpu
worker runs it on the CPU). The window runs are CPU statistics on the ``default`` queue.
"""

from __future__ import annotations

from celery import shared_task

from monitoring.models import DriftRun
from monitoring.services.drift import drift_run_job, drift_windows_run
from monitoring.services.reference import reference_build_run, references_enqueue_missing
from webapp.jobs import run_job
from webapp.models import Job


@shared_task(name="monitoring.tasks.drift.build_drift_reference", ignore_result=True, acks_late=True)
def build_drift_reference(job_id: str) -> None:
    """Score the job's version on the eval split and store its drift reference and projection file."""
    run_job(job_id, Job.Kind.DRIFT, reference_build_run)


@shared_task(name="monitoring.tasks.drift.enqueue_drift_references", ignore_result=True, queue="default")
def enqueue_drift_references() -> int:
    """Queue a reference build for every approved or production version without one."""
    return references_enqueue_missing()


@shared_task(name="monitoring.tasks.drift.run_drift_windows", ignore_result=True, queue="default")
def run_drift_windows() -> int:
    """Run the last closed hourly and daily windows not run yet; return how many runs were stored."""
    return drift_windows_run(window=DriftRun.Window.HOURLY) + drift_windows_run(window=DriftRun.Window.DAILY)


@shared_task(name="monitoring.tasks.drift.run_drift_window", ignore_result=True, acks_late=True, queue="default")
def run_drift_window(job_id: str) -> None:
    """Run an owner's on-demand drift window (the job's ``hours``)."""
    run_job(job_id, Job.Kind.DRIFT, drift_run_job)

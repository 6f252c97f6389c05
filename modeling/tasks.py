"""Celery tasks of the modeling app: thin, idempotent wrappers that run a service as a ``Job`` (``gpu`` queue),
and the beat tasks (``default`` queue).

The services import torch only inside their job bodies, so a worker's parent process that imports
this module to register the tasks never loads torch nor initialises CUDA.
"""

from __future__ import annotations

from celery import shared_task

from modeling.services.comparison import comparison_run
from modeling.services.retraining import retraining_after_job, retrainings_advance_due
from modeling.services.scoring import pool_score_run
from modeling.services.training import train_run, versions_fail_orphaned
from webapp.jobs import run_job
from webapp.models import Job


# acks_late + reject_on_worker_lost (set app-wide): a worker killed mid-training leaves the message to be
# redelivered; run_job runs a job that is still queued or running again and skips a finished one.
@shared_task(name="modeling.tasks.train_model_version", ignore_result=True, acks_late=True)
def train_model_version(job_id: str) -> None:
    """Fine-tune, calibrate and save the job's model version, then queue pool scoring."""
    try:
        run_job(job_id, Job.Kind.TRAIN, train_run)
    finally:
        # A failed training ends its retraining chain here (and lets a follow-up start).
        retraining_after_job(job_id=job_id)


@shared_task(name="modeling.tasks.score_pool", ignore_result=True, acks_late=True)
def score_pool(job_id: str) -> None:
    """Score the project's unlabeled pool with the job's model version."""
    try:
        run_job(job_id, Job.Kind.SCORE, pool_score_run)
    finally:
        # The chain's last step: settle its retraining and start the follow-up, if one is due.
        retraining_after_job(job_id=job_id)


@shared_task(name="modeling.tasks.compare_versions", ignore_result=True, acks_late=True)
def compare_versions(job_id: str) -> None:
    """Score the job's candidate beside production on the frozen eval split and store the comparison."""
    run_job(job_id, Job.Kind.COMPARE, comparison_run)


@shared_task(name="modeling.tasks.fail_orphaned_versions", ignore_result=True, queue="default")
def fail_orphaned_versions() -> int:
    """Fail versions whose training job was cancelled before it ran or reaped after its worker died."""
    return versions_fail_orphaned()


@shared_task(name="modeling.tasks.retrain_due_projects", ignore_result=True, queue="default")
def retrain_due_projects() -> int:
    """Start due retrainings (new-label threshold or a waiting follow-up) and settle chains whose jobs ended."""
    return retrainings_advance_due()

"""Maintenance tasks that beat schedules: reaping jobs that will never finish on their own."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.models import Job

logger = logging.getLogger(__name__)

# Past the hard time limit Celery has already killed the task; the grace covers a slow final save.
REAP_GRACE_SECONDS = 15 * 60
# A task is redelivered after its worker dies (acks_late); past this many starts, stop trying.
MAX_ATTEMPTS = 3


def _fail_if_unfinished(job_id: object, message: str) -> bool:
    """Mark the job failed unless it finished meanwhile (locked, so a late success is never overwritten)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_finished:
            return False
        job.mark_failed(message)
        return True


@shared_task(name="webapp.tasks.reap_stale_jobs", ignore_result=True)
def reap_stale_jobs() -> dict[str, int]:
    """Fail running jobs past the hard time limit and jobs whose worker died too often."""
    hours = settings.JOB_HARD_TIME_LIMIT / 3600
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_HARD_TIME_LIMIT + REAP_GRACE_SECONDS)
    overdue = Job.objects.filter(status=Job.Status.RUNNING, started_at__lt=cutoff).values_list("pk", flat=True)
    timed_out = sum(
        _fail_if_unfinished(
            pk,
            f"The job ran past the {hours:g} h hard time limit (JOB_HARD_TIME_LIMIT) and its worker stopped "
            "reporting; start it again, with a smaller batch or a higher JOB_HARD_TIME_LIMIT if it needs longer.",
        )
        for pk in list(overdue)
    )
    crashed = Job.objects.filter(
        status__in=(Job.Status.QUEUED, Job.Status.RUNNING), attempts__gt=MAX_ATTEMPTS
    ).values_list("pk", "attempts")
    worker_lost = sum(
        _fail_if_unfinished(
            pk,
            f"The worker running this job died {attempts} times (out of memory, or killed); it will not be retried. "
            "Check the worker's memory and logs, then start the job again.",
        )
        for pk, attempts in list(crashed)
    )
    if timed_out or worker_lost:
        logger.warning("reaped stale jobs", extra={"timed_out": timed_out, "worker_lost": worker_lost})
    return {"timed_out": timed_out, "worker_lost": worker_lost}

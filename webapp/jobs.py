"""Running, reading and cancelling background jobs (the ``Job`` model)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery import Task
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from webapp.errors import ApplicationError, Conflict, Forbidden, NotFound
from webapp.models import Job, JobCancelled

logger = logging.getLogger(__name__)

# Roles allowed to cancel another member's job; kept here as strings so webapp imports no app.
_MANAGER_ROLES = ("owner", "admin")


def job_create(*, kind: str, project_id: int | None, user: Any, params: dict[str, Any] | None = None) -> Job:
    """Create a queued job row."""
    return Job.objects.create(
        kind=kind,
        project_id=project_id,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        params=params or {},
    )


def job_enqueue(*, job: Job, task: Task, queue: str | None = None) -> None:
    """Send ``task(job.id)`` to the broker once the surrounding transaction commits."""

    def send() -> None:
        options = {"queue": queue} if queue else {}
        result = task.apply_async(args=[str(job.pk)], **options)
        Job.objects.filter(pk=job.pk).update(celery_task_id=result.id or "")

    transaction.on_commit(send)


def job_for_user(*, user: AbstractBaseUser | AnonymousUser, job_id: Any) -> Job:
    """Return the job if the user may see it (its creator, a member of its project, a superuser)."""
    if not user.is_authenticated:
        raise NotFound("Job not found.")
    try:
        job = Job.objects.select_related("project").get(pk=job_id)
    except (Job.DoesNotExist, ValueError, DjangoValidationError):  # a malformed UUID is simply not found
        raise NotFound("Job not found.") from None
    if user.is_superuser or job.created_by_id == user.pk:
        return job
    if job.project_id and job.project.memberships.filter(user=user).exists():
        return job
    raise NotFound("Job not found.")


def job_cancel(*, job: Job, user: AbstractBaseUser) -> Job:
    """Cancel a queued job at once, or ask a running one to stop at its next progress report."""
    may_manage = user.is_superuser or job.created_by_id == user.pk
    if not may_manage and job.project_id:
        may_manage = job.project.memberships.filter(user=user, role__in=_MANAGER_ROLES).exists()
    if not may_manage:
        raise Forbidden("Only the job's creator or a project owner/admin can cancel it.")
    if job.is_finished:
        raise Conflict(f"The job already {job.status}; there is nothing to cancel.")
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        job.cancel_requested = True
        job.save(update_fields=["cancel_requested"])
        if job.status == Job.Status.QUEUED:
            job.mark_cancelled()
    if job.celery_task_id and job.status == Job.Status.CANCELLED:
        from webapp.celery import app

        app.control.revoke(job.celery_task_id)
    return job


def run_job(job_id: str, kind: str, body: Callable[[Job], dict[str, Any] | None]) -> None:
    """Run ``body(job)`` as the job's work: idempotent, recording success, failure or cancellation.

    A job that already finished is left alone, so a redelivered task (acks_late after a worker
    crash) never runs a finished job twice. ``ApplicationError`` messages are shown to the user
    as they are; anything else is logged with its traceback and shown as an internal error.
    """
    job = Job.objects.filter(pk=job_id, kind=kind).first()
    if job is None:
        logger.warning("job missing", extra={"job_id": job_id, "kind": kind})
        return
    if job.is_finished:
        logger.info("job already finished", extra={"job_id": job_id, "status": job.status})
        return
    if job.cancel_requested:
        job.mark_cancelled()
        return
    job.mark_running()
    started = time.monotonic()
    try:
        result = body(job)
    except JobCancelled:
        job.mark_cancelled()
        logger.info("job cancelled", extra={"job_id": job_id, "kind": kind})
    except ApplicationError as exc:
        job.mark_failed(exc.message, result={"code": exc.code, "details": exc.details})
        logger.info("job failed", extra={"job_id": job_id, "kind": kind, "code": exc.code})
    except Exception as exc:
        job.mark_failed(f"Internal error ({exc.__class__.__name__}); the operators have the details in the logs.")
        logger.exception("job crashed", extra={"job_id": job_id, "kind": kind})
        raise
    else:
        job.mark_succeeded(result or {})
        logger.info(
            "job succeeded", extra={"job_id": job_id, "kind": kind, "seconds": round(time.monotonic() - started, 3)}
        )

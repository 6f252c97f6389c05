"""Retraining in the loop: automatic after N new gold labels or on demand, one chain per project at a time.

A chain is train → evaluate → calibrate (the training job) → score the pool → refresh the queue (the
scoring job, which the training job queues). A ``Retraining`` row follows it: ``running`` while its
version's jobs run, then ``succeeded`` or ``failed``. Triggers arriving meanwhile coalesce:

- a "Retrain now" press creates, or joins, the project's single ``pending`` follow-up;
- new gold labels only raise ``Project.labels_since_training`` (labeling records the fact, DESIGN.md);
  when the chain ends, one automatic follow-up starts if the counter reached the project's threshold.

Training takes the labels it reads off the counter (``training_rows_consume``), so labels that arrive
while a chain trains count toward the follow-up.

Two partial unique constraints make "one running and one pending retraining per project" a database
guarantee; every service here first locks the project row, so concurrent callers (two beat runs, beat
and a button press) run one after the other and see each other's rows instead of tripping on them.
The project lock is the only lock taken before the version and job inserts, and labeling takes the
project row last, so the two never wait on each other in opposite orders.

The chain is advanced (settled when its jobs ended, the follow-up started) at the end of every
training and scoring job and every 30 s by beat, which also covers a worker that died mid-chain once
the reaper fails its job.

A failed chain is not retried automatically: the labels it started with are consumed (by training
reading them, or when the failure is recorded if it never got that far), so the next automatic run
waits for N new labels, and "Retrain now" works at any time. The project is never wedged: a failed
chain leaves no running row behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from labeling.models import ROLE_RANK, Project, Role
from labeling.selectors import role_for_user
from modeling.ml.config import TrainConfig
from modeling.models import ModelVersion, Retraining
from modeling.services.training import (
    NOT_OVERRIDABLE,
    PARENT_STATUSES,
    train_config_from_overrides,
    training_enqueue,
)
from webapp.errors import ApplicationError, Forbidden
from webapp.models import Job

logger = logging.getLogger(__name__)

ACTIVE_JOB = (Job.Status.QUEUED, Job.Status.RUNNING)
ENDED_BADLY = (Job.Status.FAILED, Job.Status.CANCELLED)
CHAIN_JOBS = (Job.Kind.TRAIN, Job.Kind.SCORE)


@dataclass(frozen=True)
class RetrainOutcome:
    """What a "Retrain now" request did: started a chain, or joined the follow-up of the one in flight."""

    action: Literal["started", "coalesced"]
    retraining: Retraining
    running: Retraining | None
    message: str


def _lock(project_id: int) -> Project:
    return Project.objects.select_for_update().get(pk=project_id)


def _busy(project: Project) -> bool:
    """True while a training or pool scoring of the project is queued or running (whoever started it)."""
    return Job.objects.filter(project=project, kind__in=CHAIN_JOBS, status__in=ACTIVE_JOB).exists()


def _chain_state(run: Retraining) -> tuple[str, str]:
    """Return (status, error) of the run's chain as its version and jobs tell it."""
    version = run.version
    if version is None:
        return Retraining.Status.FAILED, "The model version of this retraining was deleted."
    job = version.job
    if version.status == ModelVersion.Status.FAILED or job is None or job.status in ENDED_BADLY:
        cancelled = job is not None and job.status == Job.Status.CANCELLED
        reason = version.error or (job.error if job else "") or ("it was cancelled." if cancelled else "it stopped.")
        return Retraining.Status.FAILED, f"Training v{version.number} failed: {reason}"
    if job.status != Job.Status.SUCCEEDED:
        return Retraining.Status.RUNNING, ""
    scoring = Job.objects.filter(kind=Job.Kind.SCORE, params__model_version_id=version.pk).order_by("-created_at")
    score_job = scoring.first()
    if score_job is None:
        return Retraining.Status.FAILED, f"Pool scoring of v{version.number} was never queued."
    if score_job.status in ENDED_BADLY:
        reason = score_job.error or "it was cancelled"
        return Retraining.Status.FAILED, f"Pool scoring of v{version.number} failed: {reason}"
    if score_job.status == Job.Status.SUCCEEDED:
        return Retraining.Status.SUCCEEDED, ""
    return Retraining.Status.RUNNING, ""


def _consume(project: Project, count: int | None) -> None:
    """Take `count` labels off the project's new-label counter (never below zero) and reload it."""
    if count:
        Project.objects.filter(pk=project.pk).update(
            labels_since_training=Greatest(F("labels_since_training") - count, 0)
        )
        project.refresh_from_db(fields=["labels_since_training"])


def _settle(project: Project) -> Retraining | None:
    """Return the project's running retraining, after marking it finished if its chain ended (then None)."""
    run = Retraining.objects.filter(project=project, status=Retraining.Status.RUNNING).select_related("version__job")
    current = run.first()
    if current is None:
        return None
    status, error = _chain_state(current)
    if status == Retraining.Status.RUNNING:
        return current
    current.mark_finished(status, error)
    version = current.version
    if status == Retraining.Status.FAILED and (version is None or "new_labels" not in version.data):
        # Training never read (and so never consumed) the labels this run started with: consume them
        # here, or the next beat run would start the same failing chain again, and again.
        _consume(project, current.labels_at_start)
    logger.info("retraining finished", extra={"project_id": project.pk, "retraining_id": current.pk, "status": status})
    return None


def _retrain_config(project: Project) -> TrainConfig:
    """Return the hyperparameters of the latest trained version (the latest version's, else the defaults)."""
    versions = ModelVersion.objects.filter(project=project).order_by("-number")
    source = versions.filter(status__in=PARENT_STATUSES).first() or versions.first()
    stored = source.train_config if source is not None else {}
    return train_config_from_overrides({key: value for key, value in stored.items() if key not in NOT_OVERRIDABLE})


def _start(project: Project, run: Retraining) -> Retraining:
    """Queue the run's training (its version is the system's for automatic runs) and mark the run running."""
    version = training_enqueue(project=project, user=run.requested_by, config=_retrain_config(project))
    run.mark_running(version=version, labels_at_start=project.labels_since_training)
    logger.info(
        "retraining started",
        extra={"project_id": project.pk, "retraining_id": run.pk, "trigger": run.trigger, "version": version.number},
    )
    return run


def _record_failed_start(project: Project, run: Retraining, exc: ApplicationError) -> None:
    """Record a run that could not start (too little data, say) and consume the labels that triggered it."""
    run.version, run.labels_at_start = None, project.labels_since_training
    run.status, run.error, run.finished_at = Retraining.Status.FAILED, f"Could not start: {exc.message}", timezone.now()
    run.save()
    _consume(project, project.labels_since_training)
    logger.info("retraining could not start", extra={"project_id": project.pk, "code": exc.code})


def _require_manager(project: Project, user: Any) -> None:
    role = role_for_user(user=user, project=project)
    if role is None or ROLE_RANK[role] < ROLE_RANK[Role.OWNER]:
        raise Forbidden("Retraining needs the model owner role in this project.")


@transaction.atomic
def retraining_request(*, project: Project, user: Any) -> RetrainOutcome:
    """Start a retraining now, or, while one is in flight, join the single follow-up that starts after it.

    Owners and admins only. Raises ValidationFailed (and changes nothing) when a chain would start but
    the project lacks the data to train.
    """
    _require_manager(project, user)
    locked = _lock(project.pk)
    running = _settle(locked)
    pending = Retraining.objects.filter(project=locked, status=Retraining.Status.PENDING).first()
    if running is None and not _busy(locked):
        if pending is not None:
            pending.requests += 1
        run = _start(
            locked, pending or Retraining(project=locked, trigger=Retraining.Trigger.MANUAL, requested_by=user)
        )
        assert run.version is not None
        message = f"Retraining started: v{run.version.number} is queued for training, then pool scoring."
        return RetrainOutcome("started", run, None, message)
    if pending is None:
        pending = Retraining.objects.create(project=locked, trigger=Retraining.Trigger.MANUAL, requested_by=user)
    else:
        Retraining.objects.filter(pk=pending.pk).update(requests=F("requests") + 1)
        pending.refresh_from_db(fields=["requests"])
    behind = f"v{running.version.number}" if running and running.version else "the training in progress"
    message = f"Queued as the follow-up: it starts when {behind} and its pool scoring finish."
    return RetrainOutcome("coalesced", pending, running, message)


@transaction.atomic
def retraining_advance(*, project_id: int) -> Retraining | None:
    """Settle the project's running chain; when idle, start the pending follow-up or an automatic run if due.

    Return the retraining started, if any. A run that cannot start is recorded as failed (not raised):
    this runs from beat and from the worker, with nobody to answer.
    """
    locked = _lock(project_id)
    if _settle(locked) is not None or _busy(locked):
        return None
    run = Retraining.objects.filter(project=locked, status=Retraining.Status.PENDING).first()
    if run is None:
        if locked.labels_since_training < locked.retrain_after_labels:
            return None
        run = Retraining(project=locked, trigger=Retraining.Trigger.AUTO)
    try:
        with transaction.atomic():
            return _start(locked, run)
    except ApplicationError as exc:
        _record_failed_start(locked, run, exc)
        return None


def retrainings_advance_due() -> int:
    """Advance every project with a chain in flight, a follow-up waiting or enough new labels; return starts.

    Beat runs this every 30 s (``modeling.tasks.retrain_due_projects``). One project's failure is
    logged and does not hold up the others.
    """
    due = Q(labels_since_training__gte=F("retrain_after_labels"))
    due |= Q(retrainings__status__in=(Retraining.Status.PENDING, Retraining.Status.RUNNING))
    started = 0
    for project_id in list(Project.objects.filter(due).values_list("pk", flat=True).distinct()):
        try:
            started += retraining_advance(project_id=project_id) is not None
        except Exception:
            logger.exception("advancing a retraining failed", extra={"project_id": project_id})
    return started


def retraining_after_job(*, job_id: str) -> Retraining | None:
    """Advance the retraining of a finished training or scoring job's project (the chain's next step)."""
    job = Job.objects.filter(pk=job_id).only("status", "project_id").first()
    if job is None or job.project_id is None or not job.is_finished:
        return None
    return retraining_advance(project_id=job.project_id)

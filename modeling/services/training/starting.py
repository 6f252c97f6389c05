"""Starting training: the role and data checks, the next version number under the project lock, the
version and its training job, enqueued on commit. Called by owners (``training_start``) or by the
system (automatic retraining, ``training_enqueue``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Max

from labeling.models import ROLE_RANK, Item, Project, Role
from labeling.selectors import role_for_user
from modeling.ml.config import TrainConfig
from modeling.models import ModelVersion
from modeling.services.training.overrides import train_config_from_overrides
from modeling.services.training.rows import TRAINING_SPLITS
from webapp.errors import Conflict, Forbidden, ValidationFailed
from webapp.jobs import job_create, job_enqueue
from webapp.models import Job

logger = logging.getLogger(__name__)


ACTIVE_JOB = (Job.Status.QUEUED, Job.Status.RUNNING)
PARENT_STATUSES = (ModelVersion.Status.CANDIDATE, ModelVersion.Status.APPROVED, ModelVersion.Status.PRODUCTION)


def _require_manager(*, project: Project, user: Any) -> None:
    """Refuse users below the owner role."""
    role = role_for_user(user=user, project=project)
    if role is None or ROLE_RANK[role] < ROLE_RANK[Role.OWNER]:
        raise Forbidden("Starting training needs the model owner role in this project.")


def _check_training_data(project: Project) -> None:
    """Refuse a project without gold training examples of two labels or without gold eval examples."""
    gold = Item.objects.filter(project=project, gold_label__isnull=False)
    train_labels = gold.filter(split__in=TRAINING_SPLITS).values("gold_label").distinct().count()
    has_eval = gold.filter(split=Item.Split.EVAL).exists()
    missing = []
    if train_labels < 2:
        missing.append(f"gold train or labeled pool items for at least 2 labels (found {train_labels})")
    if not has_eval:
        missing.append("gold items in the eval split (found none)")
    if missing:
        raise ValidationFailed(
            "Not enough labelled data to train: needs " + " and ".join(missing) + ".",
            details={"missing": missing},
            code="not_enough_data",
        )


@transaction.atomic
def training_start(*, project: Project, user: Any, overrides: dict[str, Any] | None) -> ModelVersion:
    """Create the next queued ModelVersion and its training job, and enqueue it on commit.

    Owners and admins only. Raises ValidationFailed for bad overrides or missing data and Conflict
    while another training of the project is queued or running.
    """
    _require_manager(project=project, user=user)
    return training_enqueue(project=project, user=user, config=train_config_from_overrides(overrides))


@transaction.atomic
def training_enqueue(*, project: Project, user: Any, config: TrainConfig) -> ModelVersion:
    """Create the next queued ModelVersion with `config` and its training job, and enqueue it on commit.

    No role check: callers check it (`training_start`) or are the system (automatic retraining, `user`
    None, which makes the version's ``created_by`` null). Raises ValidationFailed for missing data and
    Conflict while another training of the project is queued or running.
    """
    _check_training_data(project)
    # The project row lock serialises starts: the active-training check and the next number are
    # read and written by one transaction at a time, so two clicks never share a number.
    Project.objects.select_for_update().get(pk=project.pk)
    versions = ModelVersion.objects.filter(project=project)
    active = versions.filter(job__status__in=ACTIVE_JOB, status__in=("queued", "training")).first()
    if active is not None:
        raise Conflict(f"Version {active.number} is still {active.status}; wait for it or cancel its job.")
    number = (versions.aggregate(top=Max("number"))["top"] or 0) + 1
    job = job_create(kind=Job.Kind.TRAIN, project_id=project.pk, user=user)
    version = versions.create(
        project=project,
        number=number,
        parent=versions.filter(status__in=PARENT_STATUSES).order_by("-number").first(),
        base_checkpoint=project.base_checkpoint,
        train_config=config.to_dict(),
        job=job,
        created_by=job.created_by,
    )
    job.params = {"model_version_id": version.pk}
    job.save(update_fields=["params"])
    from modeling.tasks import train_model_version

    job_enqueue(job=job, task=train_model_version)
    logger.info("training queued", extra={"project_id": project.pk, "version": number, "job_id": str(job.pk)})
    return version

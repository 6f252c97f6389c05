"""Starting a comparison: owners and admins queue candidate vs the current production version as a
``compare`` job; a comparison of the same pair still queued or running is returned instead of a
second one.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from modeling.models import Comparison, ModelVersion
from modeling.services.releases import lock_project, require_manager
from modeling.services.releases import production_version as current_production
from webapp.errors import Conflict
from webapp.jobs import job_create, job_enqueue
from webapp.models import Job

logger = logging.getLogger(__name__)


COMPARABLE = (ModelVersion.Status.CANDIDATE, ModelVersion.Status.APPROVED)
ACTIVE_JOB = (Job.Status.QUEUED, Job.Status.RUNNING)


@transaction.atomic
def comparison_start(*, version: ModelVersion, user: Any) -> Comparison:
    """Queue a comparison of ``version`` with the current production version (owners and admins).

    A comparison of the same pair still queued or running is returned instead of a second one.
    409 for a version that is not a trained candidate or approved version.
    """
    project = lock_project(version.project_id)
    require_manager(project, user, "Running a comparison")
    version = ModelVersion.objects.get(pk=version.pk)
    if version.status not in COMPARABLE:
        raise Conflict(
            f"v{version.number} is {version.get_status_display().lower()}; "
            "only a candidate or approved version is compared with production.",
            code="not_comparable",
        )
    if not version.artifact_path or not version.manifest_sha256:
        raise Conflict(f"v{version.number} has no saved artifact to score with.", code="not_comparable")
    production = current_production(project=project)
    active = (
        Comparison.objects.filter(candidate=version, production=production, job__status__in=ACTIVE_JOB)
        .select_related("job")
        .first()
    )
    if active is not None:
        return active
    job = job_create(kind=Job.Kind.COMPARE, project_id=project.pk, user=user)
    comparison = Comparison.objects.create(
        project=project, candidate=version, production=production, job=job, created_by=job.created_by
    )
    job.params = {"comparison_id": comparison.pk}
    job.save(update_fields=["params"])
    from modeling.tasks import compare_versions

    job_enqueue(job=job, task=compare_versions)
    logger.info("comparison queued", extra={"comparison_id": comparison.pk, "job_id": str(job.pk)})
    return comparison

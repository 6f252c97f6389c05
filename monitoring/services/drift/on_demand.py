"""On-demand drift runs: an owner asks for the last N hours (24 by default), a maintenance job runs them.

One such job per project at a time (a second request returns the queued one). The run is an
investigation: it is stored and shown like a scheduled one but never fires or resolves alerts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from labeling.models import Project
from modeling.services.releases import require_manager
from monitoring.models import DriftRun
from monitoring.services.drift.windows import drift_run_compute, production_with_reference
from webapp.errors import Conflict, ValidationFailed
from webapp.jobs import job_create, job_enqueue
from webapp.models import Job

ON_DEMAND_HOURS = 24
MAX_ON_DEMAND_HOURS = 24 * 30
JOB_TASK = "drift_window"


def drift_run_request(*, project: Project, user: Any, hours: int = ON_DEMAND_HOURS) -> Job:
    """Queue an on-demand run over the last ``hours`` (owners and admins); reuse one already queued."""
    require_manager(project, user, "Running the drift tests")
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_ON_DEMAND_HOURS:
        raise ValidationFailed(
            f"hours must be a whole number from 1 to {MAX_ON_DEMAND_HOURS}.", details={"field": "hours"}
        )
    version, reference = production_with_reference(project)
    if version is None:
        raise Conflict("This project has no production version: there is no traffic to test.", code="no_production")
    if reference is None:
        raise Conflict(
            f"v{version.number} has no drift reference yet; it is computed shortly after a version is approved.",
            code="no_reference",
        )
    active = Job.objects.filter(
        kind=Job.Kind.DRIFT,
        project=project,
        params__task=JOB_TASK,
        status__in=(Job.Status.QUEUED, Job.Status.RUNNING),
    ).first()
    if active is not None:
        return active
    from monitoring.tasks.drift import run_drift_window

    with transaction.atomic():
        job = job_create(
            kind=Job.Kind.DRIFT, project_id=project.pk, user=user, params={"task": JOB_TASK, "hours": hours}
        )
        job_enqueue(job=job, task=run_drift_window)
    return job


def drift_run_job(job: Job) -> dict[str, Any]:
    """The on-demand job's body: test the last ``hours`` of production traffic; return the run's id."""
    existing = DriftRun.objects.filter(job=job).first()
    if existing is not None:
        return {"drift_run": existing.pk, "drifted": existing.drifted}
    project = Project.objects.get(pk=job.project_id)
    version, reference = production_with_reference(project)
    if version is None or reference is None:
        raise Conflict("The production version changed and has no drift reference yet.", code="no_reference")
    end = timezone.now()
    job.set_progress(0.1, "testing the window against the reference")
    run = drift_run_compute(
        project=project,
        version=version,
        reference=reference,
        window=DriftRun.Window.ON_DEMAND,
        start=end - timedelta(hours=int(job.params.get("hours", ON_DEMAND_HOURS))),
        end=end,
        user=job.created_by,
        job=job,
    )
    return {"drift_run": run.pk, "drifted": run.drifted, "n_current": run.n_current}

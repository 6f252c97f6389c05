"""Versions whose training job ended without running (or was reaped) do not stay "training" forever."""

from __future__ import annotations

import pytest

from modeling.models import ModelVersion
from modeling.tasks import fail_orphaned_versions
from webapp.jobs import job_cancel, job_create
from webapp.models import Job

pytestmark = pytest.mark.django_db


def _version(project, owner, number, status):
    job = job_create(kind=Job.Kind.TRAIN, project_id=project.pk, user=owner)
    return ModelVersion.objects.create(project=project, number=number, base_checkpoint="x", status=status, job=job)


def test_cancelled_and_reaped_jobs_fail_their_versions_and_live_ones_are_left_alone(project, owner):
    cancelled = _version(project, owner, 1, ModelVersion.Status.QUEUED)
    job_cancel(job=cancelled.job, user=owner)
    reaped = _version(project, owner, 2, ModelVersion.Status.TRAINING)
    reaped.job.mark_failed("The worker running this job stopped answering; start it again.")
    running = _version(project, owner, 3, ModelVersion.Status.TRAINING)
    running.job.mark_running()
    finished = _version(project, owner, 4, ModelVersion.Status.CANDIDATE)
    finished.job.mark_failed("irrelevant")

    assert fail_orphaned_versions() == 2
    for version in (cancelled, reaped, running, finished):
        version.refresh_from_db()
    assert (cancelled.status, cancelled.error) == ("failed", "Training was cancelled.")
    assert (reaped.status, reaped.error) == ("failed", "The worker running this job stopped answering; start it again.")
    assert running.status == "training" and finished.status == "candidate"
    assert fail_orphaned_versions() == 0

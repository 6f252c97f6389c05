"""Versions left behind by jobs that ended without running their body (cancelled while queued) or
whose worker died (failed by the stale-job reaper): marked failed by beat.
"""

from __future__ import annotations

from modeling.models import ModelVersion
from webapp.models import Job


def versions_fail_orphaned() -> int:
    """Mark failed the versions still queued/training whose job ended without success; return how many.

    A job cancelled while queued never runs its body, and the stale-job reaper (in ``webapp``, which
    knows nothing of versions) fails jobs whose worker died: either way the version would otherwise
    show "training" forever. Run by beat (``modeling.tasks.fail_orphaned_versions``).
    """
    orphans = ModelVersion.objects.filter(
        status__in=[ModelVersion.Status.QUEUED, ModelVersion.Status.TRAINING],
        job__status__in=[Job.Status.FAILED, Job.Status.CANCELLED],
    ).select_related("job")
    count = 0
    for version in orphans:
        job = version.job
        assert job is not None
        reason = job.error or ("Training was cancelled." if job.status == Job.Status.CANCELLED else "Training failed.")
        version.mark_failed(reason)
        count += 1
    return count

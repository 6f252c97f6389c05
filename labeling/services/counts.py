"""Keeping ``ProjectCounts`` true: incremental changes and a full recount.

The queue's services add their deltas in one statement right after their transaction commits (see
``labeling.services.queue.counters._writing``), so the counters trail the items by that statement: a recount
taken in that instant, or a process that dies in it, leaves the counters off by the in-flight deltas.
Run ``project_recount`` (``manage.py recount_projects``) again while nobody labels to settle them.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count

from labeling.models import Item, Project, ProjectCounts

STATUS_FIELDS = {status: status for status in Item.Status.values}


def status_deltas(before: str | None, after: str | None, n: int = 1) -> dict[str, int]:
    """Return the counter changes for ``n`` items moving from status ``before`` to ``after``.

    ``None`` stands for "did not exist" (an insert) or "no longer exists" (a delete).
    """
    deltas: dict[str, int] = {}
    if before is None and after is not None:
        deltas["items"] = n
    if after is None and before is not None:
        deltas["items"] = -n
    if before is not None:
        deltas[STATUS_FIELDS[before]] = deltas.get(STATUS_FIELDS[before], 0) - n
    if after is not None:
        deltas[STATUS_FIELDS[after]] = deltas.get(STATUS_FIELDS[after], 0) + n
    return {field: delta for field, delta in deltas.items() if delta}


@transaction.atomic
def project_recount(*, project: Project) -> ProjectCounts:
    """Rebuild the project's counters from the items table (repairs any drift)."""
    counts, _ = ProjectCounts.objects.select_for_update().get_or_create(project=project)
    by_status = dict(Item.objects.filter(project=project).values_list("status").annotate(n=Count("id")))
    for status, field in STATUS_FIELDS.items():
        setattr(counts, field, by_status.get(status, 0))
    counts.items = sum(by_status.values())
    counts.save()
    return counts

"""The queue's order: the model's ranked batch becomes the queued items and their priorities.

``queue_set_priorities`` replaces the untagged part of the queue with a new ranking in one transaction
(tagged batches, see ``queue_batches``, stay); ``overlap_target_for`` picks, by a hash of the id, the
share of items that two reviewers label.
"""

from __future__ import annotations

import hashlib
import math

from django.db import transaction

from labeling.models import Item, Project
from labeling.services.counts import status_deltas
from labeling.services.queue.counters import counter_deltas_apply
from webapp.errors import ValidationFailed


def overlap_target_for(item_id: int, overlap_fraction: float) -> int:
    """Return 2 for the deterministic ``overlap_fraction`` share of items (by a hash of the id), else 1."""
    bucket = int.from_bytes(hashlib.sha256(f"overlap:{item_id}".encode()).digest()[:8], "big") / 2**64
    return 2 if bucket < overlap_fraction else 1


@transaction.atomic
def queue_set_priorities(*, project: Project, ranked: list[tuple[int, float, bool]], version_number: int) -> int:
    """Make ``ranked`` (item id, priority, is random pick) the project's queue; return how many items it queued.

    Queued items outside the batch go back to unlabeled, except those another part of the system queued
    as a tagged batch (``Item.queue_tag``, see ``queue_batches``); only unlabeled or queued items join.
    """
    if any(not math.isfinite(priority) for _, priority, _ in ranked):
        raise ValidationFailed("Every queue priority must be a finite number.")
    by_id = {int(item_id): (float(priority), bool(is_random)) for item_id, priority, is_random in ranked}
    dropped = (
        Item.objects.filter(project=project, status=Item.Status.QUEUED, priority__isnull=False, queue_tag="")
        .exclude(pk__in=list(by_id))
        .update(status=Item.Status.UNLABELED, priority=None, is_random_pick=False, ranked_by_version=None)
    )
    items = list(
        Item.objects.select_for_update().filter(
            project=project, pk__in=list(by_id), status__in=(Item.Status.UNLABELED, Item.Status.QUEUED)
        )
    )
    joined = sum(1 for item in items if item.status == Item.Status.UNLABELED)
    for item in items:
        item.priority, item.is_random_pick = by_id[item.pk]
        item.status, item.ranked_by_version = Item.Status.QUEUED, version_number
        item.overlap_target = overlap_target_for(item.pk, project.overlap_fraction)
    fields = ["status", "priority", "is_random_pick", "ranked_by_version", "overlap_target"]
    Item.objects.bulk_update(items, fields, batch_size=500)
    counter_deltas_apply(
        project.pk, status_deltas("queued", "unlabeled", dropped), status_deltas("unlabeled", "queued", joined)
    )
    return len(items)

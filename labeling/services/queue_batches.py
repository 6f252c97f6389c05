"""Putting texts from outside the pool into the labeling queue as one tagged batch.

Monitoring sends production texts here (the audit sample, the texts behind a drift alert); labeling
knows nothing of why, only the batch's tag (``Item.queue_tag``) and the priority each text gets. Tagged
items stay queued when active learning re-ranks the pool (``queue_set_priorities`` leaves them alone),
and their gold labels feed training like any pool item's.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from labeling.models import Item, Project
from labeling.services.counts import status_deltas
from labeling.services.queue import counter_deltas_apply, overlap_target_for
from webapp.errors import ValidationFailed

MAX_BATCH = 5_000
MAX_TAG_CHARS = 40


@dataclass(frozen=True)
class QueueText:
    """One text to queue: its priority (higher first), language and metadata (e.g. the prediction id)."""

    text: str
    priority: float
    language: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    is_random_pick: bool = False


@dataclass(frozen=True)
class QueueBatchResult:
    """Item ids per outcome: created and queued, already in the project and (re)queued, already labeled."""

    created: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    already_labeled: list[int] = field(default_factory=list)

    @property
    def queued(self) -> int:
        return len(self.created) + len(self.requeued)

    @property
    def message(self) -> str:
        """Return one sentence a person can read after the click."""
        parts = [f"{self.queued} text{'s' if self.queued != 1 else ''} queued for labeling"]
        if self.requeued:
            parts.append(f"{len(self.requeued)} of them already in the project")
        if self.already_labeled:
            parts.append(f"{len(self.already_labeled)} already labeled (left alone)")
        return ", ".join(parts) + "."


def _validate(project: Project, texts: Sequence[QueueText], tag: str) -> None:
    if not tag or len(tag) > MAX_TAG_CHARS:
        raise ValidationFailed(f"A queue batch needs a tag of 1 to {MAX_TAG_CHARS} characters.")
    if not texts:
        raise ValidationFailed("The batch holds no text to queue.")
    if len(texts) > MAX_BATCH:
        raise ValidationFailed(f"At most {MAX_BATCH:,} texts go to the queue at once, got {len(texts):,}.")
    for index, entry in enumerate(texts):
        if not entry.text or entry.text.isspace() or "\x00" in entry.text:
            raise ValidationFailed(f"Text {index} is empty or holds a NUL character.", details={"index": index})
        if len(entry.text) > project.max_text_chars:
            raise ValidationFailed(
                f"Text {index} has {len(entry.text):,} characters; the project's limit is {project.max_text_chars:,}.",
                details={"index": index},
            )
        if not math.isfinite(entry.priority):
            raise ValidationFailed(f"Text {index} has no finite priority.", details={"index": index})


@transaction.atomic
def queue_batch_add(*, project: Project, texts: Sequence[QueueText], tag: str) -> QueueBatchResult:
    """Queue ``texts`` under ``tag``: new texts become pool items, known unlabeled ones are (re)queued.

    A text the project already holds keeps its item (one item per text); if that item is labeled, in
    review or gold it is left alone and reported. Repeated texts in the batch keep the highest priority.
    """
    _validate(project, texts, tag)
    by_hash: dict[str, QueueText] = {}
    for entry in texts:
        digest = hashlib.sha256(entry.text.encode("utf-8")).hexdigest()
        if digest not in by_hash or entry.priority > by_hash[digest].priority:
            by_hash[digest] = entry
    existing = {
        item.content_hash: item
        for item in Item.objects.select_for_update()
        .filter(project=project, content_hash__in=list(by_hash))
        .order_by("pk")
    }
    requeue = [item for item in existing.values() if item.status in (Item.Status.UNLABELED, Item.Status.QUEUED)]
    joined = sum(1 for item in requeue if item.status == Item.Status.UNLABELED)
    for item in requeue:
        item.status, item.queue_tag = Item.Status.QUEUED, tag
        item.priority = max(item.priority or -math.inf, by_hash[item.content_hash].priority)
    Item.objects.bulk_update(requeue, ["status", "queue_tag", "priority"], batch_size=500)
    created = Item.objects.bulk_create(
        [
            Item(
                project=project,
                text=entry.text,
                content_hash=digest,
                language=entry.language,
                split=Item.Split.POOL,
                metadata=entry.metadata,
                status=Item.Status.QUEUED,
                priority=entry.priority,
                is_random_pick=entry.is_random_pick,
                queue_tag=tag,
            )
            for digest, entry in by_hash.items()
            if digest not in existing
        ],
        batch_size=500,
    )
    _set_overlap(project, created)
    counter_deltas_apply(
        project.pk, status_deltas(None, Item.Status.QUEUED, len(created)), status_deltas("unlabeled", "queued", joined)
    )
    return QueueBatchResult(
        created=[item.pk for item in created],
        requeued=[item.pk for item in requeue],
        already_labeled=[item.pk for item in existing.values() if item not in requeue],
    )


def _set_overlap(project: Project, created: list[Item]) -> None:
    """Give new items their overlap target, which hashes the id (known only after the insert)."""
    if any(item.pk is None for item in created):  # a backend that returns no ids from bulk inserts
        raise RuntimeError("bulk_create returned no primary keys")
    for item in created:
        item.overlap_target = overlap_target_for(item.pk, project.overlap_fraction)
    Item.objects.bulk_update(created, ["overlap_target"], batch_size=500)

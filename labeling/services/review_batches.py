"""Sending chosen gold items back to review, so an owner decides their label again on the review page.

Another part of the system (e.g. a model comparison that found items two models disagree on) passes
item ids; labeling knows nothing of why. A gold item sent to review keeps its current gold label
until an owner adjudicates it: the eval split stays what it was (every comparison meanwhile scores
the same items), and the adjudication (a ``resolve`` row, see ``labeling.services.queue``) then
decides the label, replacing an imported one or confirming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction

from labeling.models import Item, Project, ProjectCounts
from labeling.services.counts import status_deltas
from webapp.errors import ValidationFailed

MAX_ITEMS = 1_000


@dataclass(frozen=True)
class ReviewBatch:
    """What happened to each requested item: sent now, already in review, or left alone (with its status)."""

    sent: list[int] = field(default_factory=list)
    already_in_review: list[int] = field(default_factory=list)
    not_gold: dict[int, str] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)

    @property
    def message(self) -> str:
        """Return one sentence a person can read after the click."""
        parts = [f"{len(self.sent)} item{'s' if len(self.sent) != 1 else ''} sent to review"]
        if self.already_in_review:
            parts.append(f"{len(self.already_in_review)} already in review")
        if self.not_gold:
            parts.append(f"{len(self.not_gold)} not gold (left alone)")
        if self.missing:
            parts.append(f"{len(self.missing)} no longer in the project")
        return ", ".join(parts) + "."


def _clean_ids(item_ids: Sequence[object]) -> list[int]:
    """Return the distinct ids in order, refusing non-integers and oversized batches."""
    ids: list[int] = []
    for value in item_ids:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationFailed(f"Item ids must be positive whole numbers, got {value!r}.")
        if value not in ids:
            ids.append(value)
    if not ids:
        raise ValidationFailed("Name at least one item to send to review.")
    if len(ids) > MAX_ITEMS:
        raise ValidationFailed(f"At most {MAX_ITEMS} items go to review at once, got {len(ids)}.")
    return ids


@transaction.atomic
def review_batch_send(*, project: Project, item_ids: Sequence[object]) -> ReviewBatch:
    """Move the project's gold items among ``item_ids`` to review; report the others and change nothing for them.

    Callers check the owner role. Items are locked in id order, the lock order of every item write.
    """
    ids = _clean_ids(item_ids)
    items = list(Item.objects.select_for_update().filter(project=project, pk__in=ids).order_by("pk"))
    found = {item.pk: item for item in items}
    batch = ReviewBatch(
        sent=[pk for pk in ids if pk in found and found[pk].status == Item.Status.GOLD],
        already_in_review=[pk for pk in ids if pk in found and found[pk].status == Item.Status.IN_REVIEW],
        not_gold={
            pk: found[pk].status
            for pk in ids
            if pk in found and found[pk].status not in (Item.Status.GOLD, Item.Status.IN_REVIEW)
        },
        missing=[pk for pk in ids if pk not in found],
    )
    if batch.sent:
        Item.objects.filter(pk__in=batch.sent).update(status=Item.Status.IN_REVIEW)
        ProjectCounts(project_id=project.pk).add(
            status_deltas(Item.Status.GOLD, Item.Status.IN_REVIEW, len(batch.sent))
        )
    return batch

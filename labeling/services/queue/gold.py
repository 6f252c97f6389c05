"""The gold rules: an item's status, gold label and gold source, derived from its rows and saved.

The state is never set directly: ``_derive`` reads the item's effective annotations (label rows no
retract row undoes), its latest adjudication and its active leases, and ``_apply`` saves the answer and
returns the counter deltas it implies. The hot paths pass ``_apply`` the answer they already know.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from labeling.models import Annotation, Item, Lease
from labeling.services.counts import status_deltas


@dataclass(frozen=True)
class Derived:
    status: str
    gold_label_id: int | None
    gold_source: str


def _effective(item: Item) -> list[Annotation]:
    """Return each reviewer's latest label annotation of the item that no retract row undoes."""
    rows = Annotation.objects.filter(item=item, kind=Annotation.Kind.LABEL, retracted_by__isnull=True).order_by("id")
    latest: dict[int, Annotation] = {}
    for row in rows:
        latest[row.user_id] = row
    return list(latest.values())


def _active_leases(item: Item, now: datetime) -> Any:
    return Lease.objects.filter(item=item, released_at__isnull=True, expires_at__gt=now)


def _resolution(item: Item) -> Annotation | None:
    """Return the item's latest adjudication that no retract row undoes, if any."""
    return (
        Annotation.objects.filter(item=item, kind=Annotation.Kind.RESOLVE, retracted_by__isnull=True)
        .order_by("-id")
        .first()
    )


def _derive(item: Item, now: datetime) -> Derived:
    """Return the item's status and gold fields as its annotations and active leases imply (the gold rules).

    An adjudication decides; else an "unclear" flag or disagreeing overlap reviewers send the item to
    review; else one reviewer (overlap 1) or all overlap reviewers agreeing make the gold label.
    """
    resolution = _resolution(item)
    if resolution is not None:
        return Derived(Item.Status.GOLD, resolution.label_id, Item.GoldSource.ADJUDICATION)
    annotations = _effective(item)
    held = _active_leases(item, now).exists()
    if not annotations:
        idle = Item.Status.QUEUED if item.priority is not None else Item.Status.UNLABELED
        return Derived(Item.Status.LEASED if held else idle, None, "")
    if any(a.unclear for a in annotations):
        return Derived(Item.Status.IN_REVIEW, None, "")
    if len(annotations) < item.overlap_target:
        return Derived(Item.Status.LEASED if held else Item.Status.LABELED, None, "")
    labels = {a.label_id for a in annotations}
    if len(labels) > 1:
        return Derived(Item.Status.IN_REVIEW, None, "")
    source = Item.GoldSource.SINGLE if item.overlap_target == 1 else Item.GoldSource.AGREEMENT
    return Derived(Item.Status.GOLD, labels.pop(), source)


def _apply(item: Item, now: datetime, derived: Derived | None = None) -> dict[str, int]:
    """Save the derived state onto the item; return its counter deltas (and the gold change under ``_gold``).

    ``derived`` is the state when the caller already knows it from the locked row (the hot paths).
    """
    before_status, was_gold = item.status, item.status == Item.Status.GOLD
    derived = derived or _derive(item, now)
    after = (derived.status, derived.gold_label_id, derived.gold_source)
    if after != (item.status, item.gold_label_id, item.gold_source):
        item.status, item.gold_label_id, item.gold_source = after
        item.save(update_fields=["status", "gold_label", "gold_source"])
    deltas = status_deltas(before_status, item.status) if before_status != item.status else {}
    deltas["_gold"] = int(item.status == Item.Status.GOLD) - int(was_gold)
    return deltas

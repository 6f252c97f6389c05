"""Checks every write on a leased item shares: lock the item, find the reviewer's lease, check it is usable.

A lease row is only ever written under its item's lock, so the item is locked first and the lease read
after. A lapsed lease stays usable while nobody else took its item (the reviewer was only slow); one
that was used, or whose item went to someone else, is refused with a 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from labeling.models import Annotation, Item, Lease, Project
from labeling.services.queue import rows
from labeling.services.queue.gold import _active_leases, _apply, _effective
from webapp.errors import Conflict, NotFound, ValidationFailed


def _lock_item(project: Project, item_id: int) -> Item:
    item = rows.lock_item(project.pk, item_id)
    if item is None:
        raise NotFound("Item not found in this project.")
    return item


def _lease_of(project: Project, user: Any, lease_id: Any, item: Item | None = None) -> Lease:
    """Return the reviewer's lease (read under its item's lock, which every lease write holds)."""
    lease = Lease.objects.filter(pk=lease_id, project=project, user=user).first()
    if lease is None:
        raise NotFound("Lease not found: it belongs to someone else or never existed. Ask for the next item.")
    if item is not None and lease.item_id != item.pk:
        raise ValidationFailed(f"Lease {lease.pk} is for item {lease.item_id}, not item {item.pk}.")
    return lease


def _taken_by_other(item: Item, user: Any, now: datetime) -> bool:
    """True when someone else now holds the item and it has no room for a second reviewer."""
    if item.status in (Item.Status.GOLD, Item.Status.IN_REVIEW):
        return True
    others = _active_leases(item, now).exclude(user=user).count()
    others += sum(1 for a in _effective(item) if a.user_id != user.pk)
    return others > 0 and (item.overlap_target == 1 or others >= item.overlap_target)


def _check_lease_usable(lease: Lease, item: Item, user: Any, now: datetime) -> None:
    """Refuse a lease that ended or whose lapsed item went to someone else (409); accept one that lapsed idle.

    A lease released before it expired was used (submitted or skipped); one released at or after its
    expiry was only reclaimed by the expiry sweep, so it stays usable while nobody else took the item.
    """
    if lease.is_active(now):
        return
    if lease.released_at is not None and lease.released_at < lease.expires_at:
        raise Conflict(
            "This lease has already ended (submitted, skipped or given back by an undo); ask for the next item."
        )
    if Annotation.objects.filter(lease=lease, kind=Annotation.Kind.LABEL).exists():
        raise Conflict("This lease was already used for a submission; ask for the next item.")
    if _taken_by_other(item, user, now):
        raise Conflict("Your lease on this item expired and the item went to another reviewer; ask for the next item.")


def _release(lease: Lease, now: datetime) -> dict[str, int]:
    """End one lease of the reviewer's, re-deriving its item; return the counter deltas."""
    item = Item.objects.select_for_update().get(pk=lease.item_id)
    Lease.objects.filter(pk=lease.pk, released_at__isnull=True).update(released_at=now)
    return _apply(item, now)

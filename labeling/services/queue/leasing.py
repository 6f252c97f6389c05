"""Handing out items: the next-item query, the leases a reviewer holds, heartbeats, skips and expiry.

The next-item query locks its candidates one row at a time with ``SKIP LOCKED`` on PostgreSQL:
concurrent reviewers walk past each other's rows instead of queueing behind them, and never receive the
same item. A reviewer holds at most ``MAX_HELD`` leases (the item on screen and one prefetched); expired
leases are released lazily on each next-item call and in bulk by the beat sweep.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from labeling.models import QUEUE_OPEN, Annotation, Item, Lease, Project, Skip
from labeling.services.queue import rows
from labeling.services.queue.counters import Tally, _writing
from labeling.services.queue.gold import Derived, _apply
from labeling.services.queue.lease_checks import _check_lease_usable, _lease_of, _lock_item
from webapp.errors import NotFound, ValidationFailed

# Candidates locked per next-item query: enough to step over overlap items that are full.
CANDIDATES = 20
# Expired leases released lazily per next-item call; the beat sweep handles any backlog.
LAZY_EXPIRY_LIMIT = 20
# Leases one reviewer may hold at once: the item on screen and the one prefetched behind it.
MAX_HELD = 2
OPEN_STATUSES = (Item.Status.QUEUED, Item.Status.LEASED, Item.Status.LABELED)


def _locking(qs: Any) -> Any:
    """Lock the queryset's rows; SKIP LOCKED on PostgreSQL (SQLite serialises writers anyway)."""
    if connection.vendor == "postgresql":
        return qs.select_for_update(skip_locked=True, of=("self",))
    return qs.select_for_update()


def _release_expired(project: Project | None, now: datetime, limit: int) -> int:
    """Release up to ``limit`` expired leases, oldest first, and return their items to the queue; return how many.

    With a project this reads the partial ``lease_active_expiry`` index (project, expires_at) from its
    oldest entry, so the lazy release on every next-item call costs one short index probe (its SQL is
    prepared once: ``rows``).
    """
    if project is not None:
        oldest = rows.expired_leases(project.pk, now, limit)
    else:
        expired = Lease.objects.filter(released_at__isnull=True, expires_at__lte=now).order_by("expires_at")
        oldest = list(expired.values_list("id", "item_id", "project_id")[:limit])
    released = 0
    for lease_id, item_id, project_id in oldest:
        with _writing(project_id) as tally:
            item = _locking(Item.objects.filter(pk=item_id)).first()
            if item is None:
                continue  # another transaction holds the item; it will see the lapsed lease itself
            updated = Lease.objects.filter(pk=lease_id, released_at__isnull=True, expires_at__lte=now).update(
                released_at=now
            )
            if updated:
                tally.add(_apply(item, now))
                released += updated
    return released


def lease_expire_sweep(*, limit: int = 10_000) -> int:
    """Release every expired lease (for beat) and return how many were released."""
    return _release_expired(None, timezone.now(), limit)


def _candidates(project: Project, user: Any) -> Any:
    """Queued items, and overlap items still open, that this user never labeled or skipped, best first.

    The definition of ``rows.lock_candidate``'s statement, which the next-item call runs instead (its SQL
    prepared once); tests/labeling/test_queue_rows.py checks the two agree.

    ``QUEUE_OPEN`` is the ``item_queue_candidates`` index's condition and ``-priority, id`` its order, so
    PostgreSQL reads the index from the top, probes the user's annotations and skips per row and stops
    at the first row it can lock: no scan or sort of the queue, however long it is.
    """
    mine = Q(item=OuterRef("pk"), user=user)
    # One filter() call: each chained call clones the query, and this one is built on every next-item call.
    unseen = (~Exists(Annotation.objects.filter(mine)), ~Exists(Skip.objects.filter(mine)))
    return Item.objects.filter(QUEUE_OPEN, *unseen, project=project).order_by("-priority", "id")


def _has_room(item: Item, now: datetime) -> bool:
    if item.status == Item.Status.QUEUED:
        return True  # a queued item has no active lease: leasing it makes it leased, under this same lock
    return rows.places_taken(item.pk, now) < item.overlap_target


def _held(project: Project, user: Any, now: datetime) -> list[Lease]:
    """Return the reviewer's active leases in the project, oldest (the item on screen) first, items loaded."""
    return rows.held_leases(project.pk, user.pk, now)


def _serialize_reviewer(project: Project, user: Any) -> None:
    """Hold a per-(project, reviewer) lock for the transaction, so two concurrent top-ups cannot both count
    one lease held and each add one (three leases). SQLite needs none: its IMMEDIATE transactions serialise.

    The single bigint key space of advisory locks does not overlap the two-int4 one the imports use.
    """
    if connection.vendor != "postgresql":
        return
    digest = hashlib.sha256(f"queue-hold:{project.pk}:{user.pk}".encode()).digest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s::int8)", [int.from_bytes(digest[:8], "big", signed=True)])


# What leasing makes of an item with room: it has fewer effective annotations than its target (else it
# would be gold or in review, not a candidate) and no adjudication, and now an active lease.
LEASED = Derived(Item.Status.LEASED, None, "")


def _lease_one(
    project: Project, user: Any, now: datetime, seconds: int, held: list[Lease], tally: Tally
) -> Lease | None:
    """Lease the reviewer the highest-priority item with room that they do not already hold; None if none."""
    # An overlap item the reviewer holds is still a candidate for others, so step over it explicitly.
    passed = [lease.item_id for lease in held]
    # Strictly after the reviewer's newest lease: the oldest-first order decides which item is on screen.
    created = max([now, *(lease.created_at + timedelta(microseconds=1) for lease in held)])
    # One row at a time: locking a whole page would hide all of it from concurrent reviewers. The
    # statement is _candidates(...).select_related("predicted_label") locked, its SQL prepared once.
    for _ in range(CANDIDATES):
        item = rows.lock_candidate(project.pk, user.pk, passed, now)
        if item is None:
            return None
        if _has_room(item, now):
            expires = created + timedelta(seconds=seconds)
            lease = Lease.objects.create(project=project, item=item, user=user, created_at=created, expires_at=expires)
            tally.add(_apply(item, now, LEASED))
            return lease
        passed.append(item.pk)
    return None


def queue_hold(*, project: Project, user: Any, count: int = 1, ttl: int | None = None) -> list[Lease]:
    """Return the reviewer's active leases, oldest first, leasing them queue items until they hold ``count``.

    ``count`` is 1 (the item to label) or 2 (that item and a prefetched one behind it): a reviewer never
    holds more than ``MAX_HELD`` leases, and every lease expires and is renewed by heartbeats alike.
    New leases last ``ttl`` seconds (the project's lease TTL by default). Fewer come back when the
    queue has nothing left for this reviewer; none is an empty queue. Each lease comes with its item
    (and the item's suggested label) loaded.
    """
    if not 1 <= count <= MAX_HELD:
        raise ValidationFailed(f"A reviewer holds 1 to {MAX_HELD} leases at a time, not {count}.")
    now = timezone.now()
    _release_expired(project, now, LAZY_EXPIRY_LIMIT)
    seconds = ttl if ttl is not None else project.lease_ttl_seconds
    with _writing(project.pk) as tally:
        _serialize_reviewer(project, user)
        held = _held(project, user, now)  # under the lock: read once, it is the truth until the commit
        while len(held) < count:
            lease = _lease_one(project, user, now, seconds, held, tally)
            if lease is None:
                break
            held.append(lease)
    return held


def queue_next(*, project: Project, user: Any, ttl: int | None = None) -> Lease | None:
    """Return the reviewer's oldest active lease, else lease them the highest-priority free item for ``ttl`` seconds.

    Returns None when nothing is left for this reviewer.
    """
    held = queue_hold(project=project, user=user, count=1, ttl=ttl)
    return held[0] if held else None


def lease_heartbeat(*, lease: Lease, user: Any) -> Lease:
    """Extend the reviewer's lease by the project's TTL from now.

    404 for another reviewer's lease; 409 when it lapsed and its item went to someone else.
    """
    if lease.user_id != user.pk:
        raise NotFound("Lease not found: it belongs to someone else or never existed.")
    project = Project.objects.get(pk=lease.project_id)
    with _writing(project.pk) as tally:
        now = timezone.now()
        item = _lock_item(project, lease.item_id)
        locked = _lease_of(project, user, lease.pk)
        _check_lease_usable(locked, item, user, now)
        # A lapsed lease nobody took comes back to life: the reviewer was only slow.
        locked.expires_at, locked.released_at = now + timedelta(seconds=project.lease_ttl_seconds), None
        locked.save(update_fields=["expires_at", "released_at"])
        tally.add(_apply(item, now))
    return locked


def queue_skip(*, project: Project, user: Any, lease_id: Any, reason: str = "") -> Skip:
    """Record that the reviewer passed on their leased item, release the lease and return the item to others.

    Idempotent per lease: skipping a lease this skip already ended (a retried request) returns that skip.
    """
    lease = Lease.objects.filter(pk=lease_id, project=project, user=user).first()
    if lease is None:
        raise NotFound("Lease not found: it belongs to someone else or never existed. Ask for the next item.")
    with _writing(project.pk) as tally:
        now = timezone.now()
        item = _lock_item(project, lease.item_id)
        lease = _lease_of(project, user, lease_id, item)
        # A skip ends its lease at the skip's own timestamp, which identifies a retry exactly.
        ended_by = Skip.objects.filter(item=item, user=user, created_at=lease.released_at).first()
        if lease.released_at is not None and ended_by is not None:
            return ended_by
        _check_lease_usable(lease, item, user, now)
        skip, _ = Skip.objects.get_or_create(item=item, user=user, defaults={"reason": reason[:500], "created_at": now})
        Lease.objects.filter(pk=lease.pk).update(released_at=now)
        tally.add(_apply(item, now))
    return skip

"""The labeling queue: leases, append-only annotations, skips, undo, the gold rules and queue priorities.

Every write locks the item row first; a lease row is only ever written under its item's lock, so the
item lock covers it. The next-item query locks its candidates with ``SKIP LOCKED`` on PostgreSQL:
concurrent reviewers walk past each other's rows instead of queueing behind them, and never receive
the same item.

An item's status, gold label and gold source are always *derived* (``_derive``) from its effective
annotations (label rows not retracted) and its active leases; each service appends rows, then applies
the derivation and the counter deltas it implies. That single rule keeps submit, undo, skip and
expiry consistent with each other and with a full recount. The two hot paths (a lease of a queued
item, a submit on an overlap-1 item) know the derivation's answer from the locked row itself and skip
its three reads: a queued item has no effective annotation and no active lease, and an overlap-1 item
without an adjudication has no effective annotation but the one being submitted.

Counters (``ProjectCounts``, one row per project that every status change touches) are added to in
one statement *after* the service's transaction commits (``_writing``): inside it, that row's lock
would be held until the commit by every reviewer's transaction in turn, and 32 busy reviewers queued
behind it. The new-gold counter (``Project.labels_since_training``) stays the transaction's last
statement: modeling's training snapshot relies on it (``training_rows_consume``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import BigIntegerField, Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from labeling.models import QUEUE_OPEN, Annotation, Item, Label, Lease, Project, ProjectCounts, Skip
from labeling.services.counts import status_deltas
from webapp.errors import Conflict, NotFound, ValidationFailed

# Candidates locked per next-item query: enough to step over overlap items that are full.
CANDIDATES = 20
# Expired leases released lazily per next-item call; the beat sweep handles any backlog.
LAZY_EXPIRY_LIMIT = 20
MAX_SECONDS_SPENT = 86_400.0
# Leases one reviewer may hold at once: the item on screen and the one prefetched behind it.
MAX_HELD = 2
OPEN_STATUSES = (Item.Status.QUEUED, Item.Status.LEASED, Item.Status.LABELED)


@dataclass(frozen=True)
class Suggestion:
    """What the labeling page showed: the model's label, its confidence and the version number behind it."""

    label_id: int
    confidence: float
    version_number: int


@dataclass(frozen=True)
class Derived:
    status: str
    gold_label_id: int | None
    gold_source: str


def _locking(qs: Any) -> Any:
    """Lock the queryset's rows; SKIP LOCKED on PostgreSQL (SQLite serialises writers anyway)."""
    if connection.vendor == "postgresql":
        return qs.select_for_update(skip_locked=True, of=("self",))
    return qs.select_for_update()


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


def _sum(changes: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for change in changes:
        for key, delta in change.items():
            total[key] = total.get(key, 0) + delta
    return total


def _add_new_gold(project_id: int, gold: int) -> None:
    if gold:
        Project.objects.filter(pk=project_id).update(
            labels_since_training=Greatest(F("labels_since_training") + gold, 0)
        )


def counter_deltas_apply(project_id: int, *changes: dict[str, int]) -> None:
    """Apply summed counter deltas inside the caller's transaction, counters first, then the new-gold counter.

    For bulk writers that run seldom (``queue_set_priorities``, ``queue_batches``); the per-reviewer
    services use ``_writing``, which adds to the counters after their commit.
    """
    total = _sum(list(changes))
    gold = total.pop("_gold", 0)
    ProjectCounts(project_id=project_id).add(total)
    _add_new_gold(project_id, gold)


@dataclass
class Tally:
    """The counter deltas one service's writes imply, collected while it runs."""

    changes: list[dict[str, int]] = field(default_factory=list)

    def add(self, change: dict[str, int]) -> None:
        self.changes.append(change)


@contextmanager
def _writing(project_id: int) -> Iterator[Tally]:
    """Run the block in a transaction that ends with the new-gold counter; add its counter deltas after commit.

    The counters' one row is updated in a statement of its own once the items' changes committed, so no
    reviewer's transaction holds that row's lock while its process runs Python (or waits for a core).
    A crash between the commit and that statement leaves the counters short of it: ``project_recount``
    repairs that, as any drift. Called inside an outer transaction (a test, a caller's ``atomic``), the
    counters are updated inside it too, so they still commit together with the items.
    """
    tally = Tally()
    with transaction.atomic():
        yield tally
        total = _sum(tally.changes)
        _add_new_gold(project_id, total.pop("_gold", 0))  # last: modeling's training snapshot waits on it
    ProjectCounts(project_id=project_id).add({key: delta for key, delta in total.items() if delta})


def _lock_item(project: Project, item_id: int) -> Item:
    item = Item.objects.select_for_update().filter(pk=item_id, project=project).first()
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


def _release_expired(project: Project | None, now: datetime, limit: int) -> int:
    """Release up to ``limit`` expired leases, oldest first, and return their items to the queue; return how many.

    With a project this reads the partial ``lease_active_expiry`` index (project, expires_at) from its
    oldest entry, so the lazy release on every next-item call costs one short index probe.
    """
    expired = Lease.objects.filter(released_at__isnull=True, expires_at__lte=now)
    if project is not None:
        expired = expired.filter(project=project)
    released = 0
    oldest = expired.order_by("expires_at").values_list("id", "item_id", "project_id")[:limit]
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
    return _active_leases(item, now).count() + len(_effective(item)) < item.overlap_target


def _held(project: Project, user: Any, now: datetime) -> list[Lease]:
    """Return the reviewer's active leases in the project, oldest (the item on screen) first, items loaded."""
    active = Lease.objects.filter(project=project, user=user, released_at__isnull=True, expires_at__gt=now)
    return list(active.select_related("item__predicted_label").order_by("created_at"))


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
    candidates = _candidates(project, user).select_related("predicted_label")
    # One row at a time: locking a whole page would hide all of it from concurrent reviewers.
    for _ in range(CANDIDATES):
        item = _locking(candidates.exclude(pk__in=passed))[:1].first()
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


def _label_in_project(project: Project, label_id: Any, field: str) -> Label:
    label = Label.objects.filter(pk=label_id, project=project).first() if str(label_id).isdigit() else None
    if label is None:
        names = ", ".join(Label.objects.filter(project=project).values_list("name", flat=True))
        raise ValidationFailed(
            f"{field} {label_id!r} is not a label of this project; use one of: {names}.", details={field: label_id}
        )
    return label


def _validate_submission(seconds_spent: float | None, suggestion: Suggestion | None) -> None:
    if seconds_spent is not None and not (math.isfinite(seconds_spent) and 0 <= seconds_spent <= MAX_SECONDS_SPENT):
        raise ValidationFailed(f"seconds_spent must be between 0 and {MAX_SECONDS_SPENT:.0f}.")
    if suggestion is not None and not (math.isfinite(suggestion.confidence) and 0.0 <= suggestion.confidence <= 1.0):
        raise ValidationFailed("The suggestion's confidence must be between 0 and 1.")


def _replayed(user: Any, client_key: str | None, item: Item) -> Annotation | None:
    """Return the annotation this ``client_key`` already created (a retried request), if any."""
    if not client_key:
        return None
    existing = Annotation.objects.filter(user=user, client_key=client_key).first()
    if existing is not None and existing.item_id != item.pk:
        raise ValidationFailed(
            f"client_key {client_key!r} was already used for item {existing.item_id}; use a new key."
        )
    return existing


def _label_ids(label: Label | int | str) -> Any:
    """The id a label argument names (an unknown value is kept, for the error message)."""
    if isinstance(label, Label):
        return label.pk
    return int(label) if str(label).isdigit() else label


@dataclass(frozen=True)
class _Submission:
    """The locked item and the reviewer's lease on it, with what the checks before a submit need to know."""

    lease: Lease
    item: Item
    replayed: Annotation | None


def _lock_submission(
    project: Project, user: Any, item_id: int, lease_id: Any, label_id: Any, suggestion: Suggestion | None,
    client_key: str | None,
) -> _Submission:  # fmt: skip
    """Lock the item, then read the lease with the label, suggestion and replay checks' facts in one statement.

    Two statements, not one joined ``FOR UPDATE``: a statement that waited for the item's lock still
    sees every other row as it was when it started, so a skip or a second submit that held the lock
    would leave it an outdated copy of the lease. Anything unusual (no such item or lease, a label outside
    the project, a replayed key) is then checked again the long way, in the original order, for the
    exact error or the replayed row.
    """
    item = Item.objects.select_for_update().filter(pk=item_id, project=project).first()
    labels = Label.objects.filter(project=project)
    facts = {
        "label_ok": Exists(labels.filter(pk=label_id if isinstance(label_id, int) else None)),
        "suggested_ok": Exists(labels.filter(pk=suggestion.label_id)) if suggestion else Value(True),
        "replay_id": Subquery(Annotation.objects.filter(user=user, client_key=client_key).values("pk")[:1])
        if client_key
        else Value(None, output_field=BigIntegerField()),
    }
    lease = Lease.objects.filter(pk=lease_id, project=project, user=user, item_id=item_id).annotate(**facts).first()
    if item is not None and lease is not None and lease.label_ok and lease.suggested_ok and lease.replay_id is None:
        return _Submission(lease=lease, item=item, replayed=None)
    _label_in_project(project, label_id, "label")
    if suggestion is not None:
        _label_in_project(project, suggestion.label_id, "suggested label")
    if item is None:
        raise NotFound("Item not found in this project.")
    replay = _replayed(user, client_key, item)
    return _Submission(lease=lease or _lease_of(project, user, lease_id, item), item=item, replayed=replay)


def _derive_submitted(item: Item, annotation: Annotation) -> Derived | None:
    """The gold rules' answer for an overlap-1 item just labeled, or None when they must read the rows.

    Without an adjudication, an overlap-1 item a reviewer may submit on has no effective annotation
    (one would have made it gold or sent it to review, and nobody else then gets its lease): the new
    label is its only one.
    """
    if item.overlap_target != 1 or item.gold_source == Item.GoldSource.ADJUDICATION:
        return None
    if annotation.unclear:
        return Derived(Item.Status.IN_REVIEW, None, "")
    return Derived(Item.Status.GOLD, annotation.label_id, Item.GoldSource.SINGLE)


def annotation_submit(
    *,
    project: Project,
    user: Any,
    item: Item | int,
    label: Label | int | str,
    lease_id: Any,
    note: str = "",
    unclear: bool = False,
    seconds_spent: float | None = None,
    client_key: str | None = None,
    suggestion: Suggestion | None = None,
) -> Annotation:
    """Record the reviewer's label for a leased item (or its id), apply the gold rules and release the lease.

    Idempotent on ``client_key``: a retry returns the first row. 400 for a label outside the project's
    set; 404 for an item outside the project; 409 when the lease lapsed and the item went to someone else.
    """
    _validate_submission(seconds_spent, suggestion)
    item_id = item.pk if isinstance(item, Item) else item
    with _writing(project.pk) as tally:
        found = _lock_submission(project, user, item_id, lease_id, _label_ids(label), suggestion, client_key)
        if found.replayed is not None:
            return found.replayed
        now = timezone.now()
        _check_lease_usable(found.lease, found.item, user, now)
        annotation = Annotation.objects.create(
            project=project,
            item=found.item,
            user=user,
            label_id=_label_ids(label),
            note=note,
            unclear=unclear,
            seconds_spent=seconds_spent,
            suggested_label_id=suggestion.label_id if suggestion else None,
            suggested_confidence=suggestion.confidence if suggestion else None,
            suggested_by_version=suggestion.version_number if suggestion else None,
            lease=found.lease,
            client_key=client_key or None,
            created_at=now,
        )
        Lease.objects.filter(pk=found.lease.pk, released_at__isnull=True).update(released_at=now)
        tally.add(_apply(found.item, now, _derive_submitted(found.item, annotation)))
    return annotation


def annotation_undo(*, project: Project, user: Any, annotation: Annotation) -> Lease:
    """Retract the reviewer's latest annotation (a retract row) and lease its item back to them.

    Only the author's latest, not yet retracted annotation can be undone (409 otherwise).
    """
    if annotation.user_id != user.pk or annotation.project_id != project.pk:
        raise NotFound("Annotation not found.")
    with _writing(project.pk) as tally:
        item = _lock_item(project, annotation.item_id)
        mine = Annotation.objects.filter(project=project, user=user, kind=Annotation.Kind.LABEL)
        latest = mine.order_by("-id").first()
        if latest is None or latest.pk != annotation.pk or Annotation.objects.filter(retracts=annotation).exists():
            raise Conflict("Only your latest submission can be undone, once.")
        now = timezone.now()
        others = Lease.objects.filter(project=project, user=user, released_at__isnull=True).exclude(item=item)
        for other in others:
            tally.add(_release(other, now))
        Annotation.objects.create(
            project=project, item=item, user=user, kind=Annotation.Kind.RETRACT, label_id=annotation.label_id,
            retracts=annotation, created_at=now,
        )  # fmt: skip
        lease = Lease.objects.create(
            project=project, item=item, user=user, created_at=now,
            expires_at=now + timedelta(seconds=project.lease_ttl_seconds),
        )  # fmt: skip
        tally.add(_apply(item, now))
    return lease


def annotation_resolve(*, project: Project, user: Any, item: Item, label: Label | int, note: str = "") -> Annotation:
    """Record an owner's adjudication of ``item`` (a ``resolve`` row) and make its label the gold label.

    Only items in review (disagreement or "unclear") or already adjudicated can be resolved (409 otherwise);
    a label outside the label set is a 400. Callers check the owner role.
    """
    chosen = _label_in_project(project, label.pk if isinstance(label, Label) else label, "label")
    with _writing(project.pk) as tally:
        locked = _lock_item(project, item.pk)
        adjudicated = locked.status == Item.Status.GOLD and locked.gold_source == Item.GoldSource.ADJUDICATION
        if locked.status != Item.Status.IN_REVIEW and not adjudicated:
            status = locked.get_status_display().lower()
            raise Conflict(f"Item {locked.pk} is {status}, not in review; nothing to resolve.")
        now = timezone.now()
        resolution = Annotation.objects.create(
            project=project, item=locked, user=user, kind=Annotation.Kind.RESOLVE, label=chosen, note=note,
            created_at=now,
        )  # fmt: skip
        tally.add(_apply(locked, now))
    return resolution


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

"""Writing annotations: a reviewer's submit (the hot path), their undo, and an owner's adjudication.

Annotations are append-only: an undo appends a retract row, an adjudication a resolve row, and the gold
rules (``gold``) then re-derive the item. A submit is idempotent on its ``client_key`` and checks the
label, the suggestion and a replay in the statement that reads the lease: the usual submit needs no
separate read for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone

from labeling.models import Annotation, Item, Label, Lease, Project
from labeling.services.queue import rows
from labeling.services.queue.counters import _writing
from labeling.services.queue.gold import Derived, _apply
from labeling.services.queue.lease_checks import _check_lease_usable, _lease_of, _lock_item, _release
from webapp.errors import Conflict, NotFound, ValidationFailed

MAX_SECONDS_SPENT = 86_400.0


@dataclass(frozen=True)
class Suggestion:
    """What the labeling page showed: the model's label, its confidence and the version number behind it."""

    label_id: int
    confidence: float
    version_number: int


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
    # Both statements' SQL is prepared once per process (rows): compiling them was most of a submit's CPU.
    item = rows.lock_item(project.pk, item_id)
    found = rows.submission_lease(
        project.pk,
        user.pk,
        item_id,
        lease_id,
        label_id,
        suggestion.label_id if suggestion else None,
        client_key or None,
    )
    if item is not None and found is not None:
        lease, label_ok, suggested_ok, replay_id = found
        if label_ok and suggested_ok and replay_id is None:
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

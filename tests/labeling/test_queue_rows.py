"""The next-item call's prepared SQL (``labeling.services.queue.rows``) against the ORM querysets it replaced.

The querysets stay the readable definition; each test builds a queue state, then asserts the prepared
statement answers exactly what the queryset answers, with the same field values and related objects
loaded, on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from labeling.models import Annotation, Item, Lease, Skip
from labeling.services.queue import annotation_submit, queue_hold, rows
from labeling.services.queue.gold import _active_leases, _effective
from labeling.services.queue.leasing import _candidates
from tests.labeling.test_queue import make_queue, reviewer_named

pytestmark = pytest.mark.django_db

FIELDS = [field.attname for field in Item._meta.concrete_fields]


def orm_candidate(project, user, passed):
    """The first queryset candidate with room, as the ORM-only next-item call found it (one row at a time)."""
    now = timezone.now()
    for item in _candidates(project, user).select_related("predicted_label").exclude(pk__in=passed):
        if item.status == Item.Status.QUEUED:
            return item
        if _active_leases(item, now).count() + len(_effective(item)) < item.overlap_target:
            return item
    return None


def candidate(project, user, passed):
    return rows.lock_candidate(project.pk, user.pk, passed, timezone.now())


def same_item(left: Item | None, right: Item | None) -> None:
    assert (left is None) == (right is None)
    if left is None or right is None:
        return
    assert [getattr(left, name) for name in FIELDS] == [getattr(right, name) for name in FIELDS]


def test_the_candidate_is_the_querysets_first_row_as_the_queue_changes(project, reviewer):
    items = make_queue(project, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    other = reviewer_named(project, "other")
    label = project.labels.first()
    # The top item: annotated by this reviewer; the second: skipped; the third: an overlap item another
    # reviewer labeled (still open for this one); the fourth: passed over by this call.
    Annotation.objects.create(project=project, item=items[0], user=reviewer, label=label)
    Skip.objects.create(item=items[1], user=reviewer)
    Item.objects.filter(pk=items[2].pk).update(overlap_target=2, status=Item.Status.LABELED)
    Annotation.objects.create(project=project, item=items[2], user=other, label=label)
    for passed in ([], [items[2].pk], [items[2].pk, items[3].pk], [item.pk for item in items]):
        expected, got = orm_candidate(project, reviewer, passed), candidate(project, reviewer, passed)
        same_item(expected, got)
    # For the other reviewer the annotated and skipped items are still candidates; the overlap one is not.
    same_item(orm_candidate(project, other, []), candidate(project, other, []))
    assert candidate(project, other, []).pk == items[0].pk


def test_overlap_items_whose_places_are_taken_are_stepped_over_and_counted_like_the_gold_rules(project, reviewer):
    first, second, third = make_queue(project, [0.9, 0.8, 0.7])
    Item.objects.filter(pk__in=[first.pk, second.pk]).update(overlap_target=2, status=Item.Status.LEASED)
    a, b, c = (reviewer_named(project, name) for name in ("a", "b", "c"))
    label = project.labels.first()
    now = timezone.now()
    # first: one active lease and one standing label fill its two places. second: a lapsed lease, a
    # released one and a retracted label take none of them; b's two labels (a change of mind) take one.
    Lease.objects.create(project=project, item=first, user=a, expires_at=now + timedelta(minutes=5))
    Annotation.objects.create(project=project, item=first, user=b, label=label)
    Lease.objects.create(project=project, item=second, user=a, expires_at=now - timedelta(seconds=1))
    Lease.objects.create(project=project, item=second, user=b, expires_at=now + timedelta(minutes=5), released_at=now)
    retracted = Annotation.objects.create(project=project, item=second, user=c, label=label)
    Annotation.objects.create(
        project=project, item=second, user=c, label=label, kind=Annotation.Kind.RETRACT, retracts=retracted
    )
    Annotation.objects.create(project=project, item=second, user=b, label=label)
    Annotation.objects.create(project=project, item=second, user=b, label=label)
    assert rows.places_taken(first.pk, now) == 2 == _active_leases(first, now).count() + len(_effective(first))
    assert rows.places_taken(second.pk, now) == 1 == _active_leases(second, now).count() + len(_effective(second))
    same_item(orm_candidate(project, reviewer, []), candidate(project, reviewer, []))
    assert candidate(project, reviewer, []).pk == second.pk
    Lease.objects.create(project=project, item=second, user=c, expires_at=now + timedelta(minutes=5))
    same_item(orm_candidate(project, reviewer, []), candidate(project, reviewer, []))
    assert candidate(project, reviewer, []).pk == third.pk


def test_the_candidate_comes_with_its_suggested_label_loaded_without_another_query(project, reviewer):
    suggested, plain = make_queue(project, [0.9, 0.1])
    label = project.labels.last()
    Item.objects.filter(pk=suggested.pk).update(predicted_label=label, predicted_confidence=0.75)
    item = candidate(project, reviewer, [])
    with CaptureQueriesContext(transaction.get_connection()) as context:
        assert item is not None and item.predicted_label is not None
        assert (item.predicted_label.pk, item.predicted_label.name, item.predicted_confidence) == (
            label.pk,
            label.name,
            0.75,
        )
    assert len(context.captured_queries) == 0
    after = candidate(project, reviewer, [suggested.pk])
    with CaptureQueriesContext(transaction.get_connection()) as context:
        assert after is not None and after.pk == plain.pk and after.predicted_label is None
    assert len(context.captured_queries) == 0


def test_held_leases_equal_the_querysets_oldest_first_with_items_loaded(project, reviewer):
    make_queue(project, [0.9, 0.8, 0.7])
    held = queue_hold(project=project, user=reviewer, count=2)
    now = timezone.now()
    expected = list(
        Lease.objects.filter(project=project, user=reviewer, released_at__isnull=True, expires_at__gt=now)
        .select_related("item__predicted_label")
        .order_by("created_at")
    )
    got = rows.held_leases(project.pk, reviewer.pk, now)
    assert [lease.pk for lease in got] == [lease.pk for lease in expected] == [lease.pk for lease in held]
    for mine, theirs in zip(got, expected, strict=True):
        assert (mine.created_at, mine.expires_at, mine.released_at, mine.user_id) == (
            theirs.created_at,
            theirs.expires_at,
            theirs.released_at,
            theirs.user_id,
        )
        same_item(mine.item, theirs.item)
    # A lease that lapsed or was released is not held; another reviewer's never is.
    Lease.objects.filter(pk=got[0].pk).update(expires_at=now - timedelta(seconds=1))
    assert [lease.pk for lease in rows.held_leases(project.pk, reviewer.pk, now)] == [got[1].pk]
    annotation_submit(
        project=project, user=reviewer, item=got[1].item_id, label=project.labels.first().pk, lease_id=got[1].pk
    )
    assert rows.held_leases(project.pk, reviewer.pk, now) == []
    assert rows.held_leases(project.pk, reviewer_named(project, "someone").pk, now) == []


def test_expired_leases_are_the_oldest_lapsed_unreleased_ones_up_to_the_limit(project, reviewer):
    make_queue(project, [0.9, 0.8, 0.7, 0.6])
    held = queue_hold(project=project, user=reviewer, count=2)
    other = queue_hold(project=project, user=reviewer_named(project, "other"), count=2)
    now = timezone.now()
    for offset, lease in enumerate([*held, *other]):
        Lease.objects.filter(pk=lease.pk).update(expires_at=now - timedelta(minutes=10 - offset))
    Lease.objects.filter(pk=other[1].pk).update(released_at=now)  # released: not expired, whatever its time
    expected = [held[0].pk, held[1].pk, other[0].pk]
    assert [lease_id for lease_id, _, _ in rows.expired_leases(project.pk, now, 20)] == expected
    assert rows.expired_leases(project.pk, now, 2) == [
        (held[0].pk, held[0].item_id, project.pk),
        (held[1].pk, held[1].item_id, project.pk),
    ]
    assert rows.expired_leases(project.pk, now - timedelta(hours=1), 20) == []


def test_the_submission_read_returns_the_lease_with_its_label_suggestion_and_replay_facts(
    project, other_project, reviewer
):
    (item,) = make_queue(project, [0.9])
    (lease,) = queue_hold(project=project, user=reviewer, count=1)
    mine, theirs = project.labels.first().pk, other_project.labels.first().pk

    def facts(label, suggested=None, key=None, lease_id=lease.pk, user=reviewer):
        found = rows.submission_lease(project.pk, user.pk, item.pk, lease_id, label, suggested, key)
        return None if found is None else (found[0].pk, *found[1:])

    assert facts(mine) == (lease.pk, True, True, None)
    assert facts(theirs) == (lease.pk, False, True, None)
    assert facts("not-a-label") == (lease.pk, False, True, None)
    assert facts(mine, suggested=theirs) == (lease.pk, True, False, None)
    assert facts(mine, suggested=mine) == (lease.pk, True, True, None)
    annotation = annotation_submit(
        project=project, user=reviewer, item=item.pk, label=mine, lease_id=lease.pk, client_key="k"
    )
    assert facts(mine, key="k") == (lease.pk, True, True, annotation.pk)
    assert facts(mine, key="other-key") == (lease.pk, True, True, None)
    assert facts(mine, user=reviewer_named(project, "someone")) is None
    assert facts(mine, lease_id=uuid.uuid4()) is None
    with pytest.raises(ValidationError):
        facts(mine, lease_id="not-a-uuid")
    assert rows.lock_item(project.pk, item.pk).pk == item.pk
    assert rows.lock_item(other_project.pk, item.pk) is None

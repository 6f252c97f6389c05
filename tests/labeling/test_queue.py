"""The queue: priority order, leases and their expiry, heartbeats, skips, priorities from active learning."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from labeling.models import Item, Lease, ProjectCounts, Skip
from labeling.services.counts import project_recount
from labeling.services.queue import (
    MAX_HELD,
    annotation_submit,
    annotation_undo,
    lease_expire_sweep,
    lease_heartbeat,
    overlap_target_for,
    queue_hold,
    queue_next,
    queue_set_priorities,
    queue_skip,
)
from labeling.tasks import expire_leases
from tests.conftest import requires_postgres
from tests.factories import ItemFactory, MembershipFactory, UserFactory
from webapp.errors import Conflict, NotFound, ValidationFailed


def counts_tuple(project) -> tuple[int, ...]:
    c = ProjectCounts.objects.get(project=project)
    return (c.items, c.unlabeled, c.queued, c.leased, c.labeled, c.in_review, c.gold)


def assert_counts_true(project) -> None:
    """The incrementally kept counters equal a full recount."""
    kept = counts_tuple(project)
    project_recount(project=project)
    assert kept == counts_tuple(project)


def make_queue(project, priorities: list[float]) -> list[Item]:
    """Items queued with the given priorities (overlap off), counted as inserted unlabeled."""
    items = [ItemFactory(project=project) for _ in priorities]
    ProjectCounts.objects.filter(project=project).update(items=len(items), unlabeled=len(items))
    project.overlap_fraction = 0.0
    project.save(update_fields=["overlap_fraction"])
    queue_set_priorities(
        project=project, ranked=[(i.pk, p, False) for i, p in zip(items, priorities, strict=True)], version_number=1
    )
    return items


def reviewer_named(project, name: str):
    user = UserFactory(username=name)
    MembershipFactory(project=project, user=user)
    return user


@pytest.mark.django_db
def test_the_queue_serves_items_by_priority_and_marks_them_leased(project, reviewer):
    low, high, mid = make_queue(project, [0.1, 0.9, 0.5])
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None and lease.item_id == high.pk
    high.refresh_from_db()
    assert high.status == Item.Status.LEASED
    assert (lease.expires_at - lease.created_at).total_seconds() == project.lease_ttl_seconds
    assert counts_tuple(project)[2:4] == (2, 1)
    second = queue_next(project=project, user=reviewer_named(project, "second"))
    third = queue_next(project=project, user=reviewer_named(project, "third"))
    assert second is not None and third is not None and (second.item_id, third.item_id) == (mid.pk, low.pk)
    assert_counts_true(project)


@pytest.mark.django_db
def test_a_reviewer_gets_their_active_lease_back_instead_of_a_new_item(project, reviewer):
    make_queue(project, [0.3, 0.2])
    first = queue_next(project=project, user=reviewer)
    again = queue_next(project=project, user=reviewer)
    assert first is not None and again is not None and again.pk == first.pk
    assert Lease.objects.count() == 1


@pytest.mark.django_db
def test_two_reviewers_get_different_items(project, reviewer):
    make_queue(project, [0.9, 0.8])
    other = reviewer_named(project, "second")
    a, b = queue_next(project=project, user=reviewer), queue_next(project=project, user=other)
    assert a is not None and b is not None and a.item_id != b.item_id
    assert queue_next(project=project, user=reviewer_named(project, "third")) is None


@pytest.mark.django_db
def test_a_reviewer_never_gets_an_item_they_labeled_or_skipped(project, reviewer):
    first, second, third = make_queue(project, [0.9, 0.8, 0.7])
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None and lease.item_id == first.pk
    queue_skip(project=project, user=reviewer, lease_id=lease.pk, reason="sarcasm, can't tell")
    assert Skip.objects.get(item=first, user=reviewer).reason == "sarcasm, can't tell"
    first.refresh_from_db()
    assert first.status == Item.Status.QUEUED
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None and lease.item_id == second.pk
    label = project.labels.first()
    annotation_submit(project=project, user=reviewer, item=second, label=label, lease_id=lease.pk)
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None and lease.item_id == third.pk
    # The skipped item still goes to someone else.
    other = queue_next(project=project, user=reviewer_named(project, "second"))
    assert other is not None and other.item_id == first.pk
    assert_counts_true(project)


@pytest.mark.django_db
def test_an_expired_lease_returns_the_item_to_the_queue(project, reviewer):
    (item,) = make_queue(project, [0.5])
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None
    Lease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    other = reviewer_named(project, "second")
    taken = queue_next(project=project, user=other)
    assert taken is not None and taken.item_id == item.pk and taken.user_id == other.pk
    lease.refresh_from_db()
    assert lease.released_at is not None
    assert_counts_true(project)


@pytest.mark.django_db
def test_the_expiry_sweep_requeues_lapsed_items(project, reviewer):
    (item,) = make_queue(project, [0.5])
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None
    assert lease_expire_sweep() == 0
    Lease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_leases() == 1  # the beat task, run in-process
    item.refresh_from_db()
    assert item.status == Item.Status.QUEUED
    assert_counts_true(project)


@pytest.mark.django_db
def test_a_heartbeat_extends_the_lease(project, reviewer):
    make_queue(project, [0.5])
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None
    Lease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() + timedelta(seconds=5))
    lease.refresh_from_db()
    extended = lease_heartbeat(lease=lease, user=reviewer)
    assert extended.expires_at > timezone.now() + timedelta(seconds=project.lease_ttl_seconds - 5)


@pytest.mark.django_db
def test_a_lapsed_lease_nobody_took_revives_on_heartbeat(project, reviewer):
    (item,) = make_queue(project, [0.5])
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None
    Lease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    lease_expire_sweep()
    revived = lease_heartbeat(lease=lease, user=reviewer)
    assert revived.released_at is None and revived.is_active()
    item.refresh_from_db()
    assert item.status == Item.Status.LEASED
    assert_counts_true(project)


@pytest.mark.django_db
def test_heartbeat_on_a_lapsed_lease_taken_by_someone_else_is_a_conflict(project, reviewer):
    make_queue(project, [0.5])
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None
    Lease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert queue_next(project=project, user=reviewer_named(project, "second")) is not None
    with pytest.raises(Conflict, match="went to another reviewer"):
        lease_heartbeat(lease=lease, user=reviewer)


@pytest.mark.django_db
def test_someone_elses_lease_is_not_found(project, reviewer):
    make_queue(project, [0.5])
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None
    other = reviewer_named(project, "second")
    with pytest.raises(NotFound):
        lease_heartbeat(lease=lease, user=other)
    with pytest.raises(NotFound):
        queue_skip(project=project, user=other, lease_id=lease.pk)


@pytest.mark.django_db
def test_set_priorities_replaces_the_previous_batch(project):
    old = make_queue(project, [0.9, 0.8])
    fresh = [ItemFactory(project=project) for _ in range(2)]
    ProjectCounts.objects.filter(project=project).update(items=4, unlabeled=2)
    gold = ItemFactory(project=project, status=Item.Status.GOLD)
    ProjectCounts.objects.filter(project=project).update(items=5, gold=1)
    queued = queue_set_priorities(
        project=project,
        ranked=[(fresh[0].pk, 2.0, True), (old[1].pk, 1.0, False), (gold.pk, 3.0, False)],
        version_number=7,
    )
    assert queued == 2
    old[0].refresh_from_db()
    assert (old[0].status, old[0].priority) == (Item.Status.UNLABELED, None)
    fresh[0].refresh_from_db()
    assert (fresh[0].status, fresh[0].priority, fresh[0].is_random_pick, fresh[0].ranked_by_version) == (
        Item.Status.QUEUED,
        2.0,
        True,
        7,
    )
    gold.refresh_from_db()
    assert (gold.status, gold.priority) == (Item.Status.GOLD, None)
    assert_counts_true(project)


@pytest.mark.django_db
def test_set_priorities_refuses_a_non_finite_priority_without_writing(project):
    (item,) = make_queue(project, [0.5])
    with pytest.raises(ValidationFailed):
        queue_set_priorities(project=project, ranked=[(item.pk, float("nan"), False)], version_number=2)
    item.refresh_from_db()
    assert item.ranked_by_version == 1


def test_overlap_marks_about_the_configured_fraction_deterministically():
    marked = [overlap_target_for(i, 0.10) for i in range(1, 5001)]
    assert marked == [overlap_target_for(i, 0.10) for i in range(1, 5001)]
    assert 0.08 < marked.count(2) / len(marked) < 0.12
    assert set(overlap_target_for(i, 0.0) for i in range(100)) == {1}


@pytest.mark.django_db
def test_the_next_item_query_uses_no_random_order_and_the_priority_index(project, reviewer):
    make_queue(project, [0.5, 0.4])
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        queue_next(project=project, user=reviewer)
    sql = " ".join(q["sql"] for q in ctx.captured_queries).upper()
    assert "RANDOM()" not in sql
    assert '"PRIORITY" IS NOT NULL' in sql  # the partial index's condition, so the planner can use it


@pytest.mark.django_db
def test_prefetch_holds_the_next_two_items_oldest_first_and_never_more(project, reviewer):
    first, second, third = make_queue(project, [0.9, 0.8, 0.7])
    held = queue_hold(project=project, user=reviewer, count=2)
    assert [lease.item_id for lease in held] == [first.pk, second.pk]
    assert held[0].created_at < held[1].created_at  # the order says which one is on screen
    again = queue_hold(project=project, user=reviewer, count=2)
    assert [lease.pk for lease in again] == [lease.pk for lease in held]
    assert queue_next(project=project, user=reviewer).pk == held[0].pk
    with pytest.raises(ValidationFailed, match="1 to 2 leases"):
        queue_hold(project=project, user=reviewer, count=MAX_HELD + 1)
    assert Lease.objects.filter(user=reviewer, released_at__isnull=True).count() == 2
    third.refresh_from_db()
    assert third.status == Item.Status.QUEUED
    assert counts_tuple(project)[2:4] == (1, 2)
    assert_counts_true(project)


@pytest.mark.django_db
def test_a_prefetched_item_is_never_handed_to_another_reviewer(project, reviewer):
    make_queue(project, [0.9, 0.8, 0.7])
    mine = {lease.item_id for lease in queue_hold(project=project, user=reviewer, count=2)}
    other = reviewer_named(project, "second")
    theirs = queue_hold(project=project, user=other, count=2)
    assert len(theirs) == 1 and theirs[0].item_id not in mine
    assert queue_next(project=project, user=reviewer_named(project, "third")) is None


@pytest.mark.django_db
def test_a_reviewer_never_holds_the_same_overlap_item_twice(project, reviewer):
    first, second = make_queue(project, [0.9, 0.8])
    Item.objects.filter(pk__in=[first.pk, second.pk]).update(overlap_target=2)
    held = queue_hold(project=project, user=reviewer, count=2)
    assert [lease.item_id for lease in held] == [first.pk, second.pk]
    # Both overlap items still have room for a second reviewer, who may hold them at the same time.
    other = queue_hold(project=project, user=reviewer_named(project, "second"), count=2)
    assert [lease.item_id for lease in other] == [first.pk, second.pk]
    assert queue_next(project=project, user=reviewer_named(project, "third")) is None
    assert_counts_true(project)


@pytest.mark.django_db
def test_after_a_submit_the_prefetched_item_comes_first_and_the_next_one_is_prefetched(project, reviewer):
    first, second, third = make_queue(project, [0.9, 0.8, 0.7])
    current, prefetched = queue_hold(project=project, user=reviewer, count=2)
    label = project.labels.first()
    annotation_submit(project=project, user=reviewer, item=first, label=label, lease_id=current.pk)
    held = queue_hold(project=project, user=reviewer, count=2)
    assert [lease.pk for lease in held[:1]] == [prefetched.pk]
    assert [lease.item_id for lease in held] == [second.pk, third.pk]
    assert_counts_true(project)


@pytest.mark.django_db
def test_a_skip_keeps_the_prefetched_item_and_records_the_reason(project, reviewer):
    first, second, third = make_queue(project, [0.9, 0.8, 0.7])
    current, _prefetched = queue_hold(project=project, user=reviewer, count=2)
    queue_skip(project=project, user=reviewer, lease_id=current.pk, reason="not English")
    assert Skip.objects.get(user=reviewer).item_id == first.pk
    assert [lease.item_id for lease in queue_hold(project=project, user=reviewer, count=2)] == [second.pk, third.pk]
    first.refresh_from_db()
    assert first.status == Item.Status.QUEUED
    assert_counts_true(project)


@pytest.mark.django_db
def test_undo_gives_back_both_held_items_and_leases_the_undone_one_first(project, reviewer):
    first, second, third = make_queue(project, [0.9, 0.8, 0.7])
    current, _ = queue_hold(project=project, user=reviewer, count=2)
    annotation = annotation_submit(
        project=project, user=reviewer, item=first, label=project.labels.first(), lease_id=current.pk
    )
    assert [lease.item_id for lease in queue_hold(project=project, user=reviewer, count=2)] == [second.pk, third.pk]
    undone = annotation_undo(project=project, user=reviewer, annotation=annotation)
    assert [lease.pk for lease in queue_hold(project=project, user=reviewer, count=1)] == [undone.pk]
    third.refresh_from_db()
    assert third.status == Item.Status.QUEUED
    assert [lease.item_id for lease in queue_hold(project=project, user=reviewer, count=2)] == [first.pk, second.pk]
    assert_counts_true(project)


@pytest.mark.django_db
def test_a_lapsed_prefetch_goes_to_another_reviewer_and_submitting_on_it_is_a_conflict(project, reviewer):
    _first, second = make_queue(project, [0.9, 0.8])
    current, prefetched = queue_hold(project=project, user=reviewer, count=2)
    Lease.objects.filter(pk=prefetched.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    taken = queue_next(project=project, user=reviewer_named(project, "second"))
    assert taken is not None and taken.item_id == second.pk
    with pytest.raises(Conflict, match="went to another reviewer"):
        annotation_submit(
            project=project, user=reviewer, item=second, label=project.labels.first(), lease_id=prefetched.pk
        )
    assert [lease.pk for lease in queue_hold(project=project, user=reviewer, count=2)] == [current.pk]
    assert_counts_true(project)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_top_ups_by_one_reviewer_never_hold_more_than_two(project, reviewer):
    """Six requests of one reviewer (say, two tabs) race to prefetch: the per-reviewer lock keeps it at two."""
    make_queue(project, [float(i) for i in range(20)])
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def work() -> None:
        try:
            barrier.wait()
            queue_hold(project=project, user=reviewer, count=2)
        except BaseException as exc:  # reported by the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert Lease.objects.filter(user=reviewer).count() == 2
    assert_counts_true(project)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_reviewers_never_get_the_same_item(project):
    """Real concurrency: 8 reviewers in threads, each on its own connection, race for 30 items."""
    make_queue(project, [float(i) for i in range(30)])
    reviewers = [reviewer_named(project, f"racer{i}") for i in range(8)]
    label = project.labels.first()
    got: dict[int, list[int]] = {r.pk: [] for r in reviewers}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(reviewers))

    def work(user) -> None:
        try:
            barrier.wait()
            while (lease := queue_next(project=project, user=user)) is not None:
                got[user.pk].append(lease.item_id)
                item = Item.objects.get(pk=lease.item_id)
                annotation_submit(project=project, user=user, item=item, label=label, lease_id=lease.pk)
        except BaseException as exc:  # reported by the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(r,)) for r in reviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    served = [item_id for items in got.values() for item_id in items]
    assert len(served) == 30 and len(set(served)) == 30
    assert sum(1 for items in got.values() if items) > 1, "the race never ran concurrently"
    assert Item.objects.filter(project=project, status=Item.Status.GOLD).count() == 30
    assert_counts_true(project)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_reviewers_who_prefetch_never_share_an_item(project):
    """8 reviewers in threads each hold two items and label the first until the queue runs dry."""
    from django.db.models import Count

    make_queue(project, [float(i) for i in range(40)])
    reviewers = [reviewer_named(project, f"prefetcher{i}") for i in range(8)]
    label = project.labels.first()
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(reviewers))

    def work(user) -> None:
        try:
            barrier.wait()
            while held := queue_hold(project=project, user=user, count=2):
                assert len(held) <= 2
                item = Item.objects.get(pk=held[0].item_id)
                annotation_submit(project=project, user=user, item=item, label=label, lease_id=held[0].pk)
        except BaseException as exc:  # reported by the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(r,)) for r in reviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    per_item = Lease.objects.filter(project=project).values("item").annotate(n=Count("id"))
    assert len(per_item) == 40 and {row["n"] for row in per_item} == {1}  # each item leased once, to one reviewer
    assert Item.objects.filter(project=project, status=Item.Status.GOLD).count() == 40
    assert_counts_true(project)

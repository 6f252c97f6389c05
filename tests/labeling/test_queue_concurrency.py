"""The queue under real concurrency on PostgreSQL: reviewers in threads, each on its own connection.

Threads share the interpreter lock, but every database call releases it, so the reviewers' transactions
really do interleave on the server: row locks, ``SKIP LOCKED`` and the lease rows are what keep them
apart, exactly as with separate worker processes. SQLite serialises writers and cannot show any of it.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection, transaction
from django.utils import timezone

from labeling.models import Item, Lease, ProjectCounts
from labeling.services.counts import project_recount
from labeling.services.queue import (
    annotation_submit,
    lease_expire_sweep,
    queue_next,
    queue_set_priorities,
    rows,
)
from tests.conftest import requires_postgres
from tests.factories import ItemFactory, MembershipFactory, UserFactory
from webapp.errors import Conflict

pytestmark = requires_postgres

# Pairs of leases on one overlap-1 item, held by different reviewers at overlapping times. A lease
# ends at its release or its expiry, whichever comes first.
DOUBLE_LEASES = """
SELECT count(*) FROM labeling_lease a
JOIN labeling_lease b ON b.item_id = a.item_id AND b.user_id <> a.user_id AND a.id < b.id
JOIN labeling_item i ON i.id = a.item_id
WHERE a.project_id = %s AND i.overlap_target = 1
  AND a.created_at < LEAST(COALESCE(b.released_at, 'infinity'), b.expires_at)
  AND b.created_at < LEAST(COALESCE(a.released_at, 'infinity'), a.expires_at)
"""


def reviewers(project, count: int, prefix: str) -> list:
    users = [UserFactory(username=f"{prefix}{i}") for i in range(count)]
    for user in users:
        MembershipFactory(project=project, user=user)
    return users


def queue_batch(project, count: int, *, overlap_every: int = 0) -> list[Item]:
    """``count`` new items queued with distinct priorities; every ``overlap_every``-th goes to two reviewers."""
    items = [ItemFactory(project=project) for _ in range(count)]
    project_recount(project=project)
    project.overlap_fraction = 0.0
    project.save(update_fields=["overlap_fraction"])
    ranked = [(item.pk, float(count - rank), False) for rank, item in enumerate(items)]
    queue_set_priorities(project=project, ranked=ranked, version_number=1)
    if overlap_every:
        Item.objects.filter(pk__in=[item.pk for item in items[::overlap_every]]).update(overlap_target=2)
    return list(Item.objects.filter(pk__in=[item.pk for item in items]))


def race(users: list, work: Callable[[object], None], *, timeout: float = 120) -> None:
    """Run ``work(user)`` for every user at once, each in a thread with its own connection; re-raise failures."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(users))

    def run(user) -> None:
        try:
            barrier.wait()
            work(user)
        except BaseException as exc:  # re-raised by the test thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a reviewer thread hung"
    assert not errors, errors


def label_until_empty(project, served: list[tuple[int, int]], *, seed: int) -> Callable[[object], None]:
    """A reviewer who asks for the next item, pauses 0-3 ms, submits, and repeats until the queue is empty."""
    labels = list(project.labels.all())

    def work(user) -> None:
        rng = random.Random(seed * 1000 + user.pk)
        while (lease := queue_next(project=project, user=user)) is not None:
            served.append((user.pk, lease.item_id))
            time.sleep(rng.random() / 300)
            item = Item.objects.get(pk=lease.item_id)
            annotation_submit(project=project, user=user, item=item, label=rng.choice(labels), lease_id=lease.pk)

    return work


def double_leases(project) -> int:
    with connection.cursor() as cursor:
        cursor.execute(DOUBLE_LEASES, [project.pk])
        return cursor.fetchone()[0]


def counts_true(project) -> bool:
    def snapshot() -> tuple[int, ...]:
        c = ProjectCounts.objects.get(project=project)
        return (c.items, c.unlabeled, c.queued, c.leased, c.labeled, c.in_review, c.gold)

    kept = snapshot()
    project_recount(project=project)
    return kept == snapshot()


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_never_receive_the_same_item_round_after_round(project):
    """Eight reviewers race through six queues of 25 items, every fifth an overlap item for two reviewers."""
    users = reviewers(project, 8, "racer")
    for round_number in range(6):
        items = queue_batch(project, 25, overlap_every=5)
        target = {item.pk: item.overlap_target for item in items}
        served: list[tuple[int, int]] = []
        race(users, label_until_empty(project, served, seed=round_number))
        per_item = Counter(item_id for _, item_id in served)
        assert per_item == Counter(target), f"round {round_number}: an item was served too often or never"
        assert len(set(served)) == len(served), f"round {round_number}: a reviewer got the same item twice"
        assert len({user_id for user_id, _ in served}) > 1, "the race never ran concurrently"
    assert double_leases(project) == 0
    done = Item.objects.filter(project=project).values_list("status", flat=True)
    assert set(done) <= {Item.Status.GOLD, Item.Status.IN_REVIEW}
    assert counts_true(project)


@pytest.mark.django_db(transaction=True)
def test_expired_leases_return_their_items_to_the_reviewers_still_working(project):
    """Four reviewers take an item each and walk away; after expiry four others label everything."""
    items = queue_batch(project, 20)
    walkers, workers = reviewers(project, 4, "walker"), reviewers(project, 4, "worker")
    abandoned = {walker.pk: queue_next(project=project, user=walker, ttl=1) for walker in walkers}
    assert len({lease.item_id for lease in abandoned.values()}) == 4
    time.sleep(1.2)
    served: list[tuple[int, int]] = []
    race(workers, label_until_empty(project, served, seed=7))
    assert Counter(item_id for _, item_id in served) == Counter(item.pk for item in items)
    assert {lease.item_id for lease in abandoned.values()} <= {item_id for _, item_id in served}
    for lease in Lease.objects.filter(pk__in=[lease.pk for lease in abandoned.values()]):
        assert lease.released_at is not None and lease.released_at >= lease.expires_at  # released by expiry
    walker = walkers[0]
    late = abandoned[walker.pk]
    with pytest.raises(Conflict, match="went to another reviewer"):
        annotation_submit(
            project=project, user=walker, item=Item.objects.get(pk=late.item_id), label=project.labels.first(),
            lease_id=late.pk,
        )  # fmt: skip
    assert set(Item.objects.filter(project=project).values_list("status", flat=True)) == {Item.Status.GOLD}
    assert double_leases(project) == 0
    assert counts_true(project)


@pytest.mark.django_db(transaction=True)
def test_the_expiry_sweep_and_reviewers_releasing_at_once_release_each_lease_once(project):
    """Two beat sweeps and six reviewers' lazy expiry race over twelve lapsed leases."""
    queue_batch(project, 30)
    walkers, workers = reviewers(project, 12, "walker"), reviewers(project, 6, "worker")
    for walker in walkers:
        assert queue_next(project=project, user=walker, ttl=1) is not None
    time.sleep(1.2)
    swept: list[int] = []
    labeled: list[tuple[int, int]] = []

    def work(user) -> None:
        if user.username.startswith("sweeper"):
            swept.append(lease_expire_sweep())
            return
        lease = queue_next(project=project, user=user)
        assert lease is not None
        labeled.append((user.pk, lease.item_id))

    sweepers = [UserFactory(username=f"sweeper{i}") for i in range(2)]
    race([*sweepers, *workers], work)
    lapsed = Lease.objects.filter(user__in=walkers)
    assert lapsed.count() == 12 and not lapsed.filter(released_at__isnull=True).exists()
    assert sum(swept) <= 12
    # A double release would apply its counter deltas twice: the kept counters would drift from a recount.
    assert counts_true(project)
    counts = ProjectCounts.objects.get(project=project)
    assert (counts.leased, counts.queued) == (6, 24)
    assert len({item_id for _, item_id in labeled}) == 6
    assert double_leases(project) == 0


@pytest.mark.django_db
def test_the_next_item_query_reads_the_candidate_index_in_order_without_sorting_the_queue(project, reviewer):
    """At 5,000 queued items the plan walks item_queue_candidates from the top: no scan or sort of the queue."""
    Item.objects.bulk_create(
        Item(project=project, text=f"text {i}", content_hash=f"{i:064x}", status=Item.Status.QUEUED, priority=i % 997)
        for i in range(5000)
    )
    Item.objects.filter(project=project, pk__in=Item.objects.filter(project=project)[:100]).update(overlap_target=2)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE labeling_item")
    with transaction.atomic():
        plan = rows.explain_candidate(project.pk, reviewer.pk, timezone.now())  # the statement queue_next runs
        passing = rows.explain_candidate(project.pk, reviewer.pk, timezone.now(), [1, 2])  # items held or passed
    assert "item_queue_candidates" in plan and "item_queue_candidates" in passing, plan + passing
    assert "Sort" not in passing and "Seq Scan on labeling_item" not in passing, passing
    assert "Sort" not in plan and "Seq Scan on labeling_item" not in plan, plan
    lease = queue_next(project=project, user=reviewer)
    top = Item.objects.filter(project=project).order_by("-priority", "id").first()
    assert lease is not None and top is not None and lease.item_id == top.pk


@requires_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first", ["skip", "submit"])
def test_a_submit_that_waited_on_its_items_lock_sees_the_lease_as_it_is_now(project, first):
    """A skip (or a submit) of the lease commits while a second submit on it waits for the item's lock:
    the waiting submit must see the lease ended (409), not the copy it would have read before waiting.
    """
    from labeling.models import Annotation
    from labeling.services.queue import queue_skip
    from webapp.errors import Conflict

    reviewer = UserFactory(username="two-tabs")
    MembershipFactory(project=project, user=reviewer)
    item = ItemFactory(project=project)
    ProjectCounts.objects.filter(project=project).update(items=1, unlabeled=1)
    project.overlap_fraction = 0.0
    project.save(update_fields=["overlap_fraction"])
    queue_set_priorities(project=project, ranked=[(item.pk, 1.0, False)], version_number=1)
    lease = queue_next(project=project, user=reviewer)
    labels = list(project.labels.values_list("pk", flat=True))
    holding, release, outcome = threading.Event(), threading.Event(), {}

    def first_action() -> None:
        try:
            with transaction.atomic():  # keeps the item locked until ``release``
                if first == "skip":
                    queue_skip(project=project, user=reviewer, lease_id=lease.pk)
                else:
                    annotation_submit(project=project, user=reviewer, item=item.pk, label=labels[0], lease_id=lease.pk)
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    def waiting_submit() -> None:
        try:
            annotation_submit(project=project, user=reviewer, item=item.pk, label=labels[1], lease_id=lease.pk)
            outcome["result"] = "saved"
        except Conflict as exc:
            outcome["result"] = exc
        finally:
            connection.close()

    holder = threading.Thread(target=first_action)
    holder.start()
    assert holding.wait(30)
    waiter = threading.Thread(target=waiting_submit)
    waiter.start()
    deadline = time.monotonic() + 20
    while not _a_backend_waits_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _a_backend_waits_on_a_lock()
    release.set()
    holder.join(30)
    waiter.join(30)
    assert isinstance(outcome.get("result"), Conflict), outcome
    assert Annotation.objects.filter(item=item).count() == (1 if first == "submit" else 0)
    assert counts_true(project)


def _a_backend_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0

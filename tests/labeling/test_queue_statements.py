"""SQL statements per labeling round trip, pinned: next → submit is the queue's hot path.

Each figure counts the statements that do work (transaction control left out: BEGIN, COMMIT and, in a
test's outer transaction, savepoints). PostgreSQL adds one to every top-up: the per-reviewer advisory
lock (SQLite's IMMEDIATE transactions serialise writers without it). Before these were cut (measured
on PostgreSQL): next 12, submit 12 plus the item the API view loaded first, so 25 per round trip; the
page's submit with prefetch 31.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling.models import Item
from labeling.services.queue import annotation_submit, queue_next
from tests.labeling.test_queue import assert_counts_true, make_queue

pytestmark = pytest.mark.django_db
BASE = "/api/v1/projects/acme-sentiment"
CONTROL = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK")

# expiry probe, held leases, candidate (locked), lease insert, item status, counters (+ advisory lock on PostgreSQL)
NEXT = 6
# item lock, lease with label/replay facts, annotation insert, lease release, item gold, new-gold counter, counters
SUBMIT = 7
# session, user, project, role; the submit; the top-up (one item); the queue's size for the answer
PAGE_SUBMIT = 4 + SUBMIT + NEXT + 1


def statements(context: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in context.captured_queries if not query["sql"].startswith(CONTROL)]


def lock_statements() -> int:
    return 1 if connection.vendor == "postgresql" else 0


def test_next_then_submit_takes_thirteen_statements_fourteen_on_postgresql(project, reviewer):
    make_queue(project, [0.9, 0.8, 0.7])
    label = project.labels.get(name="positive")
    with CaptureQueriesContext(connection) as next_call:
        lease = queue_next(project=project, user=reviewer)
    with CaptureQueriesContext(connection) as submit_call:
        annotation_submit(
            project=project, user=reviewer, item=lease.item_id, label=label.pk, lease_id=lease.pk, client_key="k1"
        )
    assert len(statements(next_call)) == NEXT + lock_statements(), "\n".join(statements(next_call))
    assert len(statements(submit_call)) == SUBMIT, "\n".join(statements(submit_call))
    item = Item.objects.get(pk=lease.item_id)
    assert (item.status, item.gold_label_id, item.gold_source) == ("gold", label.pk, "single")
    assert_counts_true(project)


def test_the_pages_submit_with_prefetch_takes_eighteen_statements_nineteen_on_postgresql(project, reviewer, client_for):
    make_queue(project, [0.9, 0.8, 0.7, 0.6])
    client = client_for(reviewer)
    held = client.post(f"{BASE}/queue/next", {"prefetch": True}, content_type="application/json").json()
    label = str(project.labels.get(name="neutral").pk)  # the page sends the id
    body = {"item": held["item"]["id"], "label": label, "lease": held["lease"]["id"], "prefetch": True}
    with CaptureQueriesContext(connection) as page_call:
        response = client.post(f"{BASE}/annotations", body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert len(statements(page_call)) == PAGE_SUBMIT + lock_statements(), "\n".join(statements(page_call))
    answer = response.json()
    assert answer["next"]["item"]["id"] == held["prefetched"]["item"]["id"]
    assert answer["prefetched"]["item"]["id"] not in (held["item"]["id"], held["prefetched"]["item"]["id"])
    assert answer["remaining"] == 1
    assert_counts_true(project)


@pytest.mark.django_db(transaction=True)
def test_the_counters_row_is_updated_after_each_commit_never_inside_a_transaction(project, reviewer):
    """Its one row per project is every status change's: no reviewer's transaction may hold its lock."""
    make_queue(project, [0.9, 0.8])
    with CaptureQueriesContext(connection) as calls:
        lease = queue_next(project=project, user=reviewer)
        label = project.labels.get(name="neutral")
        annotation_submit(project=project, user=reviewer, item=lease.item_id, label=label, lease_id=lease.pk)
    depth, inside = 0, []
    for sql in (query["sql"] for query in calls.captured_queries):
        depth += sql.startswith("BEGIN") - sql.startswith(("COMMIT", "ROLLBACK"))
        if depth and "labeling_projectcounts" in sql:
            inside.append(sql)
    counter_updates = [
        q["sql"] for q in calls.captured_queries if q["sql"].startswith('UPDATE "labeling_projectcounts"')
    ]
    assert len(counter_updates) == 2 and inside == []
    assert_counts_true(project)

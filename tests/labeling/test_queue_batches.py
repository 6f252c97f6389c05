"""Tagged batches from outside the pool: new texts queued, known ones requeued, labeled ones left alone."""

from __future__ import annotations

import pytest

from labeling.models import Item, ProjectCounts
from labeling.services.counts import project_recount
from labeling.services.queue import queue_next, queue_set_priorities
from labeling.services.queue_batches import QueueText, queue_batch_add
from tests.factories import ItemFactory
from webapp.errors import ValidationFailed

pytestmark = pytest.mark.django_db


def counts(project) -> tuple[int, int, int]:
    c = ProjectCounts.objects.get(project=project)
    return c.items, c.unlabeled, c.queued


def test_new_texts_become_queued_pool_items_with_their_tag_and_priority(project):
    result = queue_batch_add(
        project=project,
        texts=[QueueText("drifted one", 5.0, "de", {"prediction_id": "p1"}), QueueText("drifted two", 9.0)],
        tag="drift:7",
    )
    items = {item.text: item for item in Item.objects.filter(pk__in=result.created)}
    assert set(items) == {"drifted one", "drifted two"}
    one = items["drifted one"]
    assert (one.status, one.split, one.queue_tag, one.priority, one.language) == (
        "queued",
        "pool",
        "drift:7",
        5.0,
        "de",
    )
    assert one.metadata == {"prediction_id": "p1"}
    assert result.message == "2 texts queued for labeling."
    kept = counts(project)
    project_recount(project=project)
    assert kept == counts(project) == (2, 0, 2)


def test_known_texts_are_requeued_and_labeled_ones_left_alone(project):
    waiting = ItemFactory(project=project, text="waiting", status=Item.Status.UNLABELED)
    gold = ItemFactory(project=project, text="done", status=Item.Status.GOLD)
    project_recount(project=project)
    result = queue_batch_add(
        project=project, texts=[QueueText("waiting", 3.0), QueueText("done", 3.0), QueueText("done", 4.0)], tag="audit"
    )
    assert (result.created, result.requeued, result.already_labeled) == ([], [waiting.pk], [gold.pk])
    waiting.refresh_from_db()
    gold.refresh_from_db()
    assert (waiting.status, waiting.queue_tag, waiting.priority) == ("queued", "audit", 3.0)
    assert (gold.status, gold.queue_tag) == ("gold", "")
    assert "1 already labeled (left alone)" in result.message


def test_active_learning_reranking_keeps_tagged_items_queued(project):
    tagged = queue_batch_add(project=project, texts=[QueueText("from production", 100.0)], tag="audit").created[0]
    pool = ItemFactory(project=project, text="pool item")
    project_recount(project=project)
    queue_set_priorities(project=project, ranked=[(pool.pk, 1.0, False)], version_number=2)
    assert Item.objects.get(pk=tagged).status == "queued"
    assert Item.objects.get(pk=pool.pk).status == "queued"


def test_the_queue_serves_tagged_items_by_their_priority(project, reviewer):
    queue_batch_add(project=project, texts=[QueueText("low", 1.0), QueueText("high", 50.0)], tag="drift:1")
    project_recount(project=project)
    assert queue_next(project=project, user=reviewer).item.text == "high"


@pytest.mark.parametrize(
    ("texts", "tag", "message"),
    [
        ([], "audit", "no text"),
        ([QueueText("ok", 1.0)], "", "tag"),
        ([QueueText("   ", 1.0)], "audit", "Text 0 is empty"),
        ([QueueText("ok", float("nan"))], "audit", "finite priority"),
        ([QueueText("x" * 20_001, 1.0)], "audit", "limit is 20,000"),
    ],
)
def test_bad_batches_are_refused_and_change_nothing(project, texts, tag, message):
    with pytest.raises(ValidationFailed, match=message):
        queue_batch_add(project=project, texts=texts, tag=tag)
    assert not Item.objects.filter(project=project).exists()

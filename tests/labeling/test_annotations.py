"""Annotations: append-only rows, idempotent submits, undo, and the gold rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Annotation, Item, Lease, Project, Skip
from labeling.services.queue import Suggestion, annotation_submit, annotation_undo, queue_next, queue_skip
from tests.factories import ProjectFactory
from tests.labeling.test_queue import assert_counts_true, make_queue, reviewer_named
from webapp.errors import Conflict, ValidationFailed

pytestmark = pytest.mark.django_db


def label_named(project, name: str):
    return project.labels.get(name=name)


def lease_and_submit(project, user, label_name: str, **kwargs):
    lease = queue_next(project=project, user=user)
    assert lease is not None
    item = Item.objects.get(pk=lease.item_id)
    return annotation_submit(
        project=project, user=user, item=item, label=label_named(project, label_name), lease_id=lease.pk, **kwargs
    )


def make_overlap(project, item: Item, target: int = 2) -> None:
    Item.objects.filter(pk=item.pk).update(overlap_target=target)


def test_a_single_annotation_makes_a_non_overlap_item_gold(project, reviewer):
    (item,) = make_queue(project, [0.5])
    suggestion = Suggestion(label_id=label_named(project, "negative").pk, confidence=0.61, version_number=3)
    annotation = lease_and_submit(project, reviewer, "positive", note="clear", seconds_spent=4.5, suggestion=suggestion)
    item.refresh_from_db()
    assert (item.status, item.gold_label.name, item.gold_source) == (Item.Status.GOLD, "positive", "single")
    assert (annotation.suggested_label.name, annotation.suggested_confidence, annotation.suggested_by_version) == (
        "negative",
        0.61,
        3,
    )
    assert annotation.lease is not None and Lease.objects.get(pk=annotation.lease_id).released_at is not None
    assert Project.objects.get(pk=project.pk).labels_since_training == 1
    assert_counts_true(project)


def test_unclear_sends_the_item_to_review(project, reviewer):
    (item,) = make_queue(project, [0.5])
    lease_and_submit(project, reviewer, "neutral", unclear=True)
    item.refresh_from_db()
    assert (item.status, item.gold_label) == (Item.Status.IN_REVIEW, None)
    assert Project.objects.get(pk=project.pk).labels_since_training == 0
    assert_counts_true(project)


def test_two_overlap_reviewers_who_agree_make_gold_by_agreement(project, reviewer):
    (item,) = make_queue(project, [0.5])
    make_overlap(project, item)
    lease_and_submit(project, reviewer, "positive")
    item.refresh_from_db()
    assert item.status == Item.Status.LABELED
    assert queue_next(project=project, user=reviewer) is None  # never the same reviewer twice
    lease_and_submit(project, reviewer_named(project, "second"), "positive")
    item.refresh_from_db()
    assert (item.status, item.gold_label.name, item.gold_source) == (Item.Status.GOLD, "positive", "agreement")
    assert queue_next(project=project, user=reviewer_named(project, "third")) is None
    assert_counts_true(project)


def test_an_overlap_item_can_be_held_by_two_reviewers_at_once(project, reviewer):
    (item,) = make_queue(project, [0.5])
    make_overlap(project, item)
    first = queue_next(project=project, user=reviewer)
    second = queue_next(project=project, user=reviewer_named(project, "second"))
    assert first is not None and second is not None and first.item_id == second.item_id == item.pk
    assert queue_next(project=project, user=reviewer_named(project, "third")) is None
    assert_counts_true(project)


def test_overlap_reviewers_who_disagree_send_the_item_to_review(project, reviewer):
    (item,) = make_queue(project, [0.5])
    make_overlap(project, item)
    lease_and_submit(project, reviewer, "positive")
    lease_and_submit(project, reviewer_named(project, "second"), "negative")
    item.refresh_from_db()
    assert (item.status, item.gold_label, item.gold_source) == (Item.Status.IN_REVIEW, None, "")
    assert_counts_true(project)


def test_the_same_client_key_returns_the_same_annotation_without_a_second_write(project, reviewer):
    (item,) = make_queue(project, [0.5])
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None
    label = label_named(project, "positive")
    first = annotation_submit(
        project=project, user=reviewer, item=item, label=label, lease_id=lease.pk, client_key="k1"
    )
    again = annotation_submit(
        project=project, user=reviewer, item=item, label=label, lease_id=lease.pk, client_key="k1"
    )
    assert again.pk == first.pk and Annotation.objects.count() == 1
    assert Project.objects.get(pk=project.pk).labels_since_training == 1
    with pytest.raises(Conflict, match="already ended"):
        annotation_submit(project=project, user=reviewer, item=item, label=label, lease_id=lease.pk, client_key="k2")
    assert_counts_true(project)


def test_a_label_of_another_project_is_refused_without_a_write(project, reviewer):
    (item,) = make_queue(project, [0.5])
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None
    foreign = ProjectFactory(slug="elsewhere").labels.first()
    with pytest.raises(ValidationFailed, match="not a label of this project; use one of: negative, neutral, positive"):
        annotation_submit(project=project, user=reviewer, item=item, label=foreign, lease_id=lease.pk)
    item.refresh_from_db()
    assert item.status == Item.Status.LEASED and Annotation.objects.count() == 0


def test_a_bad_time_spent_is_refused(project, reviewer):
    (item,) = make_queue(project, [0.5])
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None
    label = label_named(project, "positive")
    with pytest.raises(ValidationFailed, match="seconds_spent"):
        annotation_submit(project=project, user=reviewer, item=item, label=label, lease_id=lease.pk, seconds_spent=-1)


def test_submitting_on_a_lease_that_expired_and_went_to_someone_else_is_a_conflict(project, reviewer):
    (item,) = make_queue(project, [0.5])
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None
    Lease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert queue_next(project=project, user=reviewer_named(project, "second")) is not None
    with pytest.raises(Conflict, match="went to another reviewer"):
        annotation_submit(
            project=project, user=reviewer, item=item, label=label_named(project, "positive"), lease_id=lease.pk
        )
    assert Annotation.objects.count() == 0
    assert_counts_true(project)


def test_submitting_on_a_lapsed_lease_nobody_took_is_accepted(project, reviewer):
    (item,) = make_queue(project, [0.5])
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None
    Lease.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    annotation_submit(
        project=project, user=reviewer, item=item, label=label_named(project, "neutral"), lease_id=lease.pk
    )
    item.refresh_from_db()
    assert item.status == Item.Status.GOLD
    assert_counts_true(project)


def test_undo_appends_a_retract_row_and_returns_the_item_to_the_reviewer(project, reviewer):
    first, second = make_queue(project, [0.9, 0.8])
    annotation = lease_and_submit(project, reviewer, "positive")
    next_lease = queue_next(project=project, user=reviewer)
    assert next_lease is not None and next_lease.item_id == second.pk
    lease = annotation_undo(project=project, user=reviewer, annotation=annotation)
    assert lease.item_id == first.pk and lease.is_active()
    retract = Annotation.objects.get(kind=Annotation.Kind.RETRACT)
    assert retract.retracts_id == annotation.pk and Annotation.objects.filter(pk=annotation.pk).exists()
    first.refresh_from_db()
    assert (first.status, first.gold_label, first.gold_source) == (Item.Status.LEASED, None, "")
    second.refresh_from_db()
    assert second.status == Item.Status.QUEUED  # the prefetched next item went back to the queue
    assert queue_next(project=project, user=reviewer).pk == lease.pk
    assert Project.objects.get(pk=project.pk).labels_since_training == 0
    assert_counts_true(project)
    relabel = annotation_submit(
        project=project, user=reviewer, item=first, label=label_named(project, "negative"), lease_id=lease.pk
    )
    first.refresh_from_db()
    assert (first.gold_label_id, relabel.kind) == (label_named(project, "negative").pk, "label")
    assert Annotation.objects.count() == 3
    assert_counts_true(project)


def test_only_the_latest_annotation_can_be_undone_and_only_once(project, reviewer):
    make_queue(project, [0.9, 0.8])
    older = lease_and_submit(project, reviewer, "positive")
    latest = lease_and_submit(project, reviewer, "negative")
    with pytest.raises(Conflict, match="latest"):
        annotation_undo(project=project, user=reviewer, annotation=older)
    annotation_undo(project=project, user=reviewer, annotation=latest)
    with pytest.raises(Conflict, match="once"):
        annotation_undo(project=project, user=reviewer, annotation=latest)
    assert Annotation.objects.filter(kind=Annotation.Kind.RETRACT).count() == 1


def test_undo_of_an_agreeing_overlap_annotation_reopens_the_item(project, reviewer):
    (item,) = make_queue(project, [0.5])
    make_overlap(project, item)
    lease_and_submit(project, reviewer, "positive")
    second = reviewer_named(project, "second")
    agreeing = lease_and_submit(project, second, "positive")
    annotation_undo(project=project, user=second, annotation=agreeing)
    item.refresh_from_db()
    assert (item.status, item.gold_label) == (Item.Status.LEASED, None)
    assert_counts_true(project)


def test_a_retried_skip_returns_the_first_and_a_skip_after_a_submit_is_a_conflict(project, reviewer):
    # Skipping the same lease again used to be a conflict; it is now a retry (the page resends a skip whose
    # answer was lost), so it returns the first skip and writes nothing. Other ended leases stay a conflict.
    make_queue(project, [0.5, 0.4])
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None
    first = queue_skip(project=project, user=reviewer, lease_id=lease.pk, reason="spam")
    again = queue_skip(project=project, user=reviewer, lease_id=lease.pk, reason="other words")
    assert again.pk == first.pk and again.reason == "spam" and Skip.objects.count() == 1
    submitted = queue_next(project=project, user=reviewer)
    assert submitted is not None
    item = Item.objects.get(pk=submitted.item_id)
    annotation_submit(
        project=project, user=reviewer, item=item, label=label_named(project, "neutral"), lease_id=submitted.pk
    )
    with pytest.raises(Conflict, match="already ended"):
        queue_skip(project=project, user=reviewer, lease_id=submitted.pk)
    assert queue_next(project=project, user=reviewer) is None
    assert_counts_true(project)


def test_the_export_carries_each_items_annotation_log_including_undos(project, reviewer):
    from labeling.services.exports import export_rows

    (item,) = make_queue(project, [0.5])
    first = lease_and_submit(project, reviewer, "positive")
    annotation_undo(project=project, user=reviewer, annotation=first)
    item.refresh_from_db()
    lease = Lease.objects.filter(item=item, user=reviewer, released_at__isnull=True).get()
    second = annotation_submit(
        project=project, user=reviewer, item=item, label=label_named(project, "negative"), lease_id=lease.pk
    )
    row = next(row for row in export_rows(project=project) if row["id"] == item.pk)
    log = row["annotations"]
    assert [(entry["kind"], entry["label"], entry["user"]) for entry in log] == [
        ("label", "positive", "reviewer"),
        ("retract", "positive", "reviewer"),
        ("label", "negative", "reviewer"),
    ]
    assert log[1]["retracts"] == first.pk and log[2]["id"] == second.pk
    assert row["label"] == "negative"

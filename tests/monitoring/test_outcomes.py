"""Ground truth into outcome cells: audit items once labeled, and feedback, each counted once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from labeling.models import Item, Label
from labeling.services.queue import annotation_submit, queue_next
from modeling.models import PredictionFeedback
from monitoring.models import OutcomeRollup
from monitoring.services.audit import audit_sample
from monitoring.services.outcomes import outcomes_fold
from tests.monitoring.traffic import log_row, save_logs

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def _cells(source: str) -> dict:
    return {
        (r.bucket_start, r.version_number, r.language, r.true_label, r.predicted_label): (r.count, r.confidence_sum)
        for r in OutcomeRollup.objects.filter(source=source)
    }


def _label_next(project, user, name: str) -> Item:
    lease = queue_next(project=project, user=user)
    assert lease is not None
    annotation_submit(
        project=project,
        user=user,
        item=lease.item,
        label=Label.objects.get(project=project, name=name),
        lease_id=lease.pk,
    )
    lease.item.refresh_from_db()
    return lease.item


def test_an_audit_item_counts_against_the_served_label_once_gold(project, reviewer, settings):
    settings.LOOPLINE_AUDIT_DAILY_CAP = 240
    row = save_logs(
        [
            log_row(
                project,
                T0 + timedelta(hours=1, minutes=7),
                version=3,
                label="negative",
                confidence=0.7,
                language="en",
                text="an audited text",
                audit=True,
            )
        ]
    )[0]
    audit_sample(now=T0 + timedelta(hours=3))
    outcomes_fold(now=T0 + timedelta(hours=3))
    assert not OutcomeRollup.objects.exists()  # queued, not labeled yet: no truth
    item = _label_next(project, reviewer, "positive")
    assert item.metadata["prediction_id"] == str(row.id)
    assert item.status == Item.Status.GOLD
    outcomes_fold(now=T0 + timedelta(hours=4))
    outcomes_fold(now=T0 + timedelta(hours=5))
    assert _cells("audit") == {(T0 + timedelta(hours=1), 3, "en", "positive", "negative"): (1, pytest.approx(0.7))}


def test_an_already_gold_text_gives_its_truth_at_once(project, settings):
    settings.LOOPLINE_AUDIT_DAILY_CAP = 240
    from tests.factories import ItemFactory

    ItemFactory(
        project=project,
        text="known text",
        status=Item.Status.GOLD,
        gold_label=Label.objects.get(project=project, name="neutral"),
    )
    save_logs([log_row(project, T0 + timedelta(minutes=5), label="neutral", text="known text", audit=True)])
    audit_sample(now=T0 + timedelta(hours=2))
    outcomes_fold(now=T0 + timedelta(hours=2))
    assert _cells("audit") == {(T0, 1, "en", "neutral", "neutral"): (1, pytest.approx(0.9))}


def test_feedback_is_counted_once_and_late_feedback_next_run(project, reviewer):
    rows = save_logs(
        [
            log_row(project, T0 + timedelta(minutes=1), label="positive", confidence=0.8),
            log_row(project, T0 + timedelta(minutes=2), label="positive", confidence=0.6),
            log_row(project, T0 + timedelta(hours=1, minutes=2), version=2, label="neutral", language="ar"),
            log_row(project, T0 + timedelta(minutes=3), label="positive", confidence=0.5),
        ]
    )
    labels = {label.name: label for label in Label.objects.filter(project=project)}
    at = T0 + timedelta(hours=2)
    PredictionFeedback.objects.create(
        prediction_id=rows[0].id, project=project, label=labels["positive"], created_at=at
    )
    PredictionFeedback.objects.create(
        prediction_id=rows[1].id, project=project, label=labels["negative"], created_at=at
    )
    first = outcomes_fold(now=at + timedelta(minutes=5))
    assert first.feedback == 2
    outcomes_fold(now=at + timedelta(minutes=10))  # nothing new: nothing added
    PredictionFeedback.objects.create(
        prediction_id=rows[2].id, project=project, label=labels["neutral"], created_at=at + timedelta(minutes=20)
    )
    PredictionFeedback.objects.create(
        prediction_id=rows[3].id, project=project, label=labels["positive"], created_at=at + timedelta(minutes=21)
    )
    outcomes_fold(now=at + timedelta(minutes=30))
    assert _cells("feedback") == {
        (T0, 1, "en", "positive", "positive"): (2, pytest.approx(1.3)),  # added into the existing cell
        (T0, 1, "en", "negative", "positive"): (1, pytest.approx(0.6)),
        (T0 + timedelta(hours=1), 2, "ar", "neutral", "neutral"): (1, pytest.approx(0.9)),
    }


def test_feedback_for_a_prediction_gone_from_the_log_is_skipped(project):
    import uuid

    label = Label.objects.get(project=project, name="neutral")
    PredictionFeedback.objects.create(prediction_id=uuid.uuid4(), project=project, label=label, created_at=T0)
    result = outcomes_fold(now=T0 + timedelta(minutes=5))
    assert (result.feedback, result.unmatched) == (0, 1)
    assert not OutcomeRollup.objects.exists()

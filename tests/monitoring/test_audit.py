"""The audit sample: audited predictions become queue items once, capped and spread over the day."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from labeling.models import Item
from monitoring.services.audit import audit_priority, audit_sample, hour_budget
from tests.factories import ItemFactory
from tests.monitoring.traffic import log_row, save_logs

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def _audit_rows(project, hour: int, n: int, **extra):
    start = T0 + timedelta(hours=hour)
    return save_logs(
        [
            log_row(project, start + timedelta(seconds=i), text=f"audited text {hour}-{i}", audit=True, **extra)
            for i in range(n)
        ]
    )


def test_hour_budgets_sum_to_the_daily_cap():
    for cap in (0, 1, 23, 24, 200, 1000):
        assert sum(hour_budget(cap, h) for h in range(24)) == cap
    assert max(hour_budget(200, h) for h in range(24)) - min(hour_budget(200, h) for h in range(24)) <= 1


def test_audit_priority_spans_the_active_learning_range():
    priorities = [audit_priority(uuid.uuid4(), 50) for _ in range(500)]
    assert all(0 < p <= 50 for p in priorities)
    assert min(priorities) < 5 and max(priorities) > 45  # spread over the batch, not bunched
    fixed = uuid.UUID(int=2**127)
    assert audit_priority(fixed, 50) == pytest.approx(25.0)


def test_audited_predictions_become_tagged_items_with_their_prediction(project, settings):
    settings.LOOPLINE_AUDIT_DAILY_CAP = 240  # 10 an hour
    rows = _audit_rows(project, 3, 4, version=2, label="negative", confidence=0.6, language="en")
    save_logs([log_row(project, T0 + timedelta(hours=3, minutes=5), text="not audited")])
    result = audit_sample(now=T0 + timedelta(hours=5))
    assert result.created == 4
    items = {item.metadata["prediction_id"]: item for item in Item.objects.filter(queue_tag="audit")}
    assert set(items) == {str(row.id) for row in rows}
    item = items[str(rows[0].id)]
    assert item.status == Item.Status.QUEUED and item.text == rows[0].text
    assert item.metadata["version"] == 2 and item.metadata["predicted_label"] == "negative"
    assert 0 < item.priority <= project.al_batch_size
    assert not Item.objects.filter(text="not audited").exists()


def test_a_prediction_becomes_at_most_one_item(project, settings):
    settings.LOOPLINE_AUDIT_DAILY_CAP = 240
    _audit_rows(project, 3, 3)
    audit_sample(now=T0 + timedelta(hours=5))
    assert audit_sample(now=T0 + timedelta(hours=5)).created == 0
    # Even a run that re-reads the same hours (a reset watermark) adds nothing.
    from monitoring.models import RollupWatermark

    RollupWatermark.objects.filter(name="audit").update(done_until=T0)
    assert audit_sample(now=T0 + timedelta(hours=5)).created == 0
    assert Item.objects.filter(queue_tag="audit").count() == 3


def test_the_daily_cap_is_spread_over_the_hours(project, settings):
    settings.LOOPLINE_AUDIT_DAILY_CAP = 48  # 2 an hour
    for hour in range(24):
        _audit_rows(project, hour, 5)
    audit_sample(now=T0 + timedelta(days=1, hours=1))
    items = Item.objects.filter(queue_tag="audit")
    assert items.count() == 48
    hours = sorted(datetime.fromisoformat(i.metadata["predicted_at"]).hour for i in items)
    assert hours == sorted(list(range(24)) * 2)


def test_shadow_and_textless_rows_are_not_audited(project, settings):
    settings.LOOPLINE_AUDIT_DAILY_CAP = 240
    _audit_rows(project, 1, 2, route="shadow")
    save_logs([log_row(project, T0 + timedelta(hours=1), audit=True, text=None)])
    assert audit_sample(now=T0 + timedelta(hours=3)).created == 0


def test_a_text_already_in_the_project_keeps_its_item_and_gets_the_prediction(project, settings):
    settings.LOOPLINE_AUDIT_DAILY_CAP = 240
    item = ItemFactory(project=project, text="audited text 2-0")
    (row,) = _audit_rows(project, 2, 1)
    result = audit_sample(now=T0 + timedelta(hours=4))
    assert result.created == 0 and result.queued == 1
    item.refresh_from_db()
    assert item.metadata["prediction_id"] == str(row.id)
    assert item.queue_tag == "audit"

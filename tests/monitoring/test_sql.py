"""The shared SQL expressions against Python's own answers (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modeling.models import PredictionLog
from monitoring.models import MinuteRollup
from monitoring.sql import Epoch, StepIndex
from tests.monitoring.traffic import log_row, save_logs


def test_epoch_is_exact_to_the_microsecond(project):
    times = [
        datetime(2026, 11, 21, 11, 23, 0, 40000, tzinfo=UTC),
        datetime(2026, 11, 21, 11, 23, 1, tzinfo=UTC),  # no fraction stored
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    save_logs([log_row(project, at) for at in times])
    got = sorted(PredictionLog.objects.annotate(t=Epoch("created_at")).values_list("t", flat=True))
    assert got == sorted(at.timestamp() for at in times)
    assert [datetime.fromtimestamp(t, UTC) for t in got] == sorted(times)


def test_step_index_floors_from_the_origin(project):
    origin = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    for minutes in (-1, 0, 9, 10, 25):
        MinuteRollup.objects.create(
            project=project, bucket_start=origin + timedelta(minutes=minutes), version_number=1, route="production"
        )
    rows = MinuteRollup.objects.annotate(i=StepIndex("bucket_start", origin, timedelta(minutes=10)))
    got = sorted(rows.values_list("i", flat=True))
    # -1 minute is step -1 on PostgreSQL (floor) and 0 on SQLite (truncation): callers clamp at 0 either way.
    assert [max(0, i) for i in got] == [0, 0, 0, 1, 2]

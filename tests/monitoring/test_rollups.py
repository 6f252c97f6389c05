"""The rollup job: minute rows equal to a hand-built log, idempotence, late rows, the hour fold, retention."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from modeling.models import PredictionError, PredictionLog
from monitoring.buckets import CONFIDENCE_BINS, LATENCY_EDGES_MS, confidence_bin, latency_bucket
from monitoring.models import HourRollup, MinuteRollup, OutcomeRollup, RollupWatermark
from monitoring.services.rollups import rollup_hours, rollup_minutes, rollups_purge
from tests.monitoring.traffic import error_row, log_row, save_logs

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
LATENCIES = [1.0, 10.0, 10.5, 25.0, 49.9, 100.0, 150.0, 300.0, 300.1, 999.0, 4000.0, 5000.0, 7000.0]
CONFIDENCES = [0.0, 0.05, 0.1, 0.35, 0.5, 0.61, 0.75, 0.899, 0.95, 1.0]

pytestmark = pytest.mark.django_db


def _random_log(project, minutes: int, n: int, seed: int = 0) -> list[PredictionLog]:
    rng = random.Random(seed)
    return save_logs(
        [
            log_row(
                project,
                T0 + timedelta(seconds=rng.uniform(0, 60 * minutes)),
                version=rng.choice([1, 2]),
                route=rng.choice(["production", "canary"]),
                language=rng.choice(["en", "ar"]),
                label=rng.choice(["negative", "neutral", "positive"]),
                confidence=rng.choice(CONFIDENCES),
                latency_ms=rng.choice(LATENCIES),
                chars=rng.randint(1, 280),
            )
            for _ in range(n)
        ]
    )


def _expected(rows: list[PredictionLog]) -> dict:
    out: dict = defaultdict(
        lambda: {
            "predictions": 0,
            "latency_hist": [0] * (len(LATENCY_EDGES_MS) + 1),
            "confidence_hist": [0] * CONFIDENCE_BINS,
            "label_counts": Counter(),
            "latency_sum_ms": 0.0,
            "confidence_sum": 0.0,
            "chars_sum": 0,
        }
    )
    for row in rows:
        key = (row.created_at.replace(second=0, microsecond=0), row.version_number, row.route, row.language)
        bucket = out[key]
        bucket["predictions"] += 1
        bucket["latency_hist"][latency_bucket(row.latency_ms)] += 1
        bucket["confidence_hist"][confidence_bin(row.confidence)] += 1
        bucket["label_counts"][row.label] += 1
        bucket["latency_sum_ms"] += row.latency_ms
        bucket["confidence_sum"] += row.confidence
        bucket["chars_sum"] += row.input_chars
    return out


def _actual(model=MinuteRollup) -> dict:
    return {
        (r.bucket_start, r.version_number, r.route, r.language): {
            "predictions": r.predictions,
            "latency_hist": r.latency_hist,
            "confidence_hist": r.confidence_hist,
            "label_counts": Counter(r.label_counts),
            "latency_sum_ms": r.latency_sum_ms,
            "confidence_sum": r.confidence_sum,
            "chars_sum": r.chars_sum,
        }
        for r in model.objects.all()
    }


def _assert_same(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected)
    for key, want in expected.items():
        got = actual[key]
        for name in ("predictions", "latency_hist", "confidence_hist", "label_counts", "chars_sum"):
            assert got[name] == want[name], (key, name)
        assert got["latency_sum_ms"] == pytest.approx(want["latency_sum_ms"])
        assert got["confidence_sum"] == pytest.approx(want["confidence_sum"])


def test_minute_rows_equal_the_hand_built_log(project):
    rows = _random_log(project, minutes=5, n=400)
    result = rollup_minutes(now=T0 + timedelta(minutes=7))
    assert result.start == T0 and result.end == T0 + timedelta(minutes=7)
    _assert_same(_actual(), _expected(rows))
    assert sum(r.predictions for r in MinuteRollup.objects.all()) == 400
    assert RollupWatermark.objects.get(name="minute").done_until == T0 + timedelta(minutes=7)


def test_rerun_is_idempotent(project):
    rows = _random_log(project, minutes=3, n=120)
    rollup_minutes(now=T0 + timedelta(minutes=4))
    first = _actual()
    rollup_minutes(now=T0 + timedelta(minutes=4))
    rollup_minutes(now=T0 + timedelta(minutes=4), since=T0)
    assert _actual() == first
    _assert_same(first, _expected(rows))


def test_late_rows_inside_the_refold_window_are_picked_up(project):
    rows = _random_log(project, minutes=3, n=60)
    rollup_minutes(now=T0 + timedelta(minutes=3))
    late = save_logs([log_row(project, T0 + timedelta(minutes=2, seconds=30), latency_ms=2500.0)])
    rollup_minutes(now=T0 + timedelta(minutes=4))
    _assert_same(_actual(), _expected(rows + late))


def test_the_open_minute_holds_its_traffic_so_far_and_is_completed_by_the_next_run(project):
    save_logs([log_row(project, T0 + timedelta(minutes=1, seconds=5))])
    rollup_minutes(now=T0 + timedelta(minutes=1, seconds=30))
    assert MinuteRollup.objects.get().predictions == 1
    save_logs([log_row(project, T0 + timedelta(minutes=1, seconds=45))])  # after that run, same minute
    rollup_minutes(now=T0 + timedelta(minutes=2))
    assert MinuteRollup.objects.get().predictions == 2


def test_errors_are_counted_by_kind_in_texts(project):
    save_logs([log_row(project, T0 + timedelta(seconds=5))])
    error_row(
        project,
        T0 + timedelta(seconds=10),
        kind="overloaded",
        texts=8,
        version_number=1,
        route="production",
        language="en",
    )
    error_row(
        project,
        T0 + timedelta(seconds=20),
        kind="overloaded",
        texts=2,
        version_number=1,
        route="production",
        language="en",
    )
    error_row(project, T0 + timedelta(seconds=30), kind="rate_limited", status=429, texts=3)
    rollup_minutes(now=T0 + timedelta(minutes=1))
    served = MinuteRollup.objects.get(route="production")
    assert (served.predictions, served.errors, served.error_count) == (1, {"overloaded": 10}, 10)
    refused = MinuteRollup.objects.get(route="")
    assert (refused.version_number, refused.predictions, refused.errors) == (0, 0, {"rate_limited": 3})


def test_projects_are_kept_apart(project, other_project):
    save_logs([log_row(project, T0), log_row(other_project, T0), log_row(other_project, T0)])
    rollup_minutes(now=T0 + timedelta(minutes=1))
    assert MinuteRollup.objects.get(project=project).predictions == 1
    assert MinuteRollup.objects.get(project=other_project).predictions == 2


def test_hour_fold_sums_the_minutes_of_closed_hours(project):
    rows = _random_log(project, minutes=90, n=300, seed=3)
    rollup_minutes(now=T0 + timedelta(minutes=91))
    assert rollup_hours(now=T0 + timedelta(minutes=91)).rows > 0
    hours = {r.bucket_start for r in HourRollup.objects.all()}
    assert hours == {T0}  # 11:00-12:00 is not closed yet
    first_hour = [r for r in rows if r.created_at < T0 + timedelta(hours=1)]
    expected = {}
    for key, value in _expected(first_hour).items():
        hour_key = (T0, *key[1:])
        if hour_key not in expected:
            expected[hour_key] = value
        else:
            for name in ("predictions", "latency_sum_ms", "confidence_sum", "chars_sum"):
                expected[hour_key][name] += value[name]
            expected[hour_key]["label_counts"] += value["label_counts"]
            for name in ("latency_hist", "confidence_hist"):
                expected[hour_key][name] = [a + b for a, b in zip(expected[hour_key][name], value[name], strict=True)]
    _assert_same(_actual(HourRollup), expected)
    rollup_minutes(now=T0 + timedelta(hours=2, minutes=5))
    rollup_hours(now=T0 + timedelta(hours=2, minutes=5))
    assert sum(r.predictions for r in HourRollup.objects.all()) == 300


def test_retention_deletes_old_rows_and_keeps_recent_ones(project, settings):
    settings.LOOPLINE_PREDICTION_LOG_RETENTION_DAYS = 30
    now = T0 + timedelta(days=400)
    old, recent = now - timedelta(days=31), now - timedelta(days=29)
    save_logs([log_row(project, old), log_row(project, old), log_row(project, recent)])
    error_row(project, old)
    error_row(project, recent)
    common = {"project": project, "version_number": 1, "route": "production", "language": "en"}
    MinuteRollup.objects.create(bucket_start=now - timedelta(days=15), **common)
    MinuteRollup.objects.create(bucket_start=now - timedelta(days=13), **common)
    HourRollup.objects.create(bucket_start=now - timedelta(days=397), **common)
    HourRollup.objects.create(bucket_start=now - timedelta(days=300), **common)
    OutcomeRollup.objects.create(
        project=project,
        bucket_start=now - timedelta(days=397),
        version_number=1,
        source="audit",
        true_label="a",
        predicted_label="a",
    )
    result = rollups_purge(now=now)
    assert (result.minute_rows, result.hour_rows, result.outcome_rows, result.log_rows, result.error_rows) == (
        1,
        1,
        1,
        2,
        1,
    )
    assert list(PredictionLog.objects.values_list("created_at", flat=True)) == [recent]
    assert PredictionError.objects.get().created_at == recent
    assert MinuteRollup.objects.count() == HourRollup.objects.count() == 1
    assert not OutcomeRollup.objects.exists()


def test_log_retention_deletes_in_batches(project, settings, monkeypatch):
    monkeypatch.setattr("monitoring.services.rollups.DELETE_BATCH", 3)
    settings.LOOPLINE_PREDICTION_LOG_RETENTION_DAYS = 1
    now = T0 + timedelta(days=5)
    save_logs([log_row(project, T0 + timedelta(seconds=i)) for i in range(10)])
    assert rollups_purge(now=now).log_rows == 10
    assert not PredictionLog.objects.exists()

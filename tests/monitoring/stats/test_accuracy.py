"""Accuracy statistics against published and hand-computed values (no database)."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.stats.accuracy import (
    accuracy,
    class_metrics,
    confusion_matrix,
    estimated_accuracy,
    macro_f1_interval,
    wilson_interval,
)
from monitoring.stats.histogram import add_into, histogram_quantile

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3 (Wilson score).
NEWCOMBE = [
    ((81, 263), (0.2553, 0.3662)),
    ((15, 148), (0.0624, 0.1605)),
    ((0, 20), (0.0, 0.1611)),
    ((1, 29), (0.0061, 0.1718)),
]


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE)
def test_wilson_interval_matches_newcombes_table(counts, expected):
    result = wilson_interval(*counts)
    assert result.value == pytest.approx(counts[0] / counts[1])
    assert result.interval.low == pytest.approx(expected[0], abs=5e-5)
    assert result.interval.high == pytest.approx(expected[1], abs=5e-5)


def test_wilson_interval_of_nothing_is_none_and_bad_counts_are_refused():
    assert wilson_interval(0, 0).value is None
    assert wilson_interval(0, 0).interval is None
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


CONFUSION = {("a", "a"): 40, ("a", "b"): 10, ("b", "b"): 30, ("b", "a"): 20}


def test_accuracy_is_the_diagonal_share():
    result = accuracy(CONFUSION)
    assert (result.successes, result.n, result.value) == (70, 100, 0.7)
    assert result.interval.low < 0.7 < result.interval.high


def test_class_metrics_by_hand():
    a, b = class_metrics(CONFUSION, ["a", "b"])
    assert (a.label, a.support, a.predicted) == ("a", 50, 60)
    assert a.precision.value == pytest.approx(40 / 60)
    assert a.recall.value == pytest.approx(40 / 50)
    assert b.precision.value == pytest.approx(30 / 40)
    assert b.recall.value == pytest.approx(30 / 50)


def test_class_never_predicted_has_no_precision():
    (_only, never) = class_metrics({("a", "a"): 3, ("b", "a"): 2}, ["a", "b"])
    assert never.predicted == 0 and never.precision.value is None
    assert never.recall.value == 0.0


def test_macro_f1_by_hand_and_interval_covers_it():
    # F1(a) = 80 / (80 + 10 + 20) = 0.7273; F1(b) = 60 / (60 + 20 + 10) = 0.6667; mean 0.6970.
    result = macro_f1_interval(CONFUSION)
    assert result.value == pytest.approx((80 / 110 + 60 / 90) / 2)
    assert result.n == 100 and result.classes == 2
    assert result.interval.low < result.value < result.interval.high
    assert result.interval.high - result.interval.low < 0.25


def test_macro_f1_bootstrap_matches_resampling_items():
    """The multinomial draw over cells is the item bootstrap: both give the same interval."""
    items = [pair for pair, count in CONFUSION.items() for _ in range(count)]
    rng = np.random.default_rng(1)
    values = []
    for _ in range(2000):
        sample = [items[i] for i in rng.integers(0, len(items), len(items))]
        counts: dict = {}
        for pair in sample:
            counts[pair] = counts.get(pair, 0) + 1
        values.append(macro_f1_interval(counts, samples=1).value)
    low, high = np.percentile(values, [2.5, 97.5])
    result = macro_f1_interval(CONFUSION, samples=4000)
    assert result.interval.low == pytest.approx(low, abs=0.02)
    assert result.interval.high == pytest.approx(high, abs=0.02)


def test_macro_f1_of_a_perfect_model_is_one_and_of_nothing_none():
    perfect = macro_f1_interval({("a", "a"): 5, ("b", "b"): 5})
    assert perfect.value == 1.0 and perfect.interval.high == 1.0
    assert macro_f1_interval({}).value is None


def test_confusion_matrix_rows_are_truth():
    labels, rows = confusion_matrix(CONFUSION, ["b", "a"])
    assert labels == ["b", "a"]
    assert rows == [[30, 20], [10, 40]]


def test_estimated_accuracy_is_mean_confidence():
    assert estimated_accuracy(45.0, 50).value == pytest.approx(0.9)
    assert estimated_accuracy(0.0, 0).value is None
    with pytest.raises(ValueError):
        estimated_accuracy(51.0, 50)


def test_histogram_quantile_interpolates_inside_the_bucket():
    edges = [10, 20, 40]
    # 10 requests in (0, 10], 10 in (10, 20], none in (20, 40], none slower.
    assert histogram_quantile(0.5, [10, 10, 0, 0], edges).value == pytest.approx(10.0)
    assert histogram_quantile(0.75, [10, 10, 0, 0], edges).value == pytest.approx(15.0)
    assert histogram_quantile(0.25, [10, 10, 0, 0], edges).value == pytest.approx(5.0)
    slow = histogram_quantile(0.99, [1, 0, 0, 99], edges)
    assert slow.value == 40.0 and slow.capped
    assert histogram_quantile(0.5, [0, 0, 0, 0], edges).value is None


def test_add_into_grows_and_sums():
    assert add_into([1, 2], [1, 1, 1]) == [2, 3, 1]

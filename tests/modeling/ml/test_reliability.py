"""Reliability diagram bins: the same binning as ECE, empty bins marked, counts summing to n."""

from __future__ import annotations

import numpy as np
import pytest

from modeling.ml.metrics import expected_calibration_error, reliability_bins


def test_bins_hold_mean_confidence_accuracy_and_count():
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.4, 0.6], [0.55, 0.45]])
    labels = np.array([0, 1, 1, 1])
    bins = reliability_bins(probs, labels, n_bins=10)
    assert len(bins) == 10 and bins[0].lower == 0.0 and bins[-1].upper == 1.0
    top = bins[8]  # (0.8, 0.9] holds 0.9 only: right-closed like ECE
    assert (top.count, top.confidence, top.accuracy) == (1, pytest.approx(0.9), 0.0)
    last = bins[9]
    assert (last.count, last.confidence, last.accuracy) == (1, pytest.approx(0.95), 1.0)
    assert bins[5].count == 2 and bins[5].confidence == pytest.approx(0.575) and bins[5].accuracy == 0.5
    assert bins[0].count == 0 and bins[0].confidence is None and bins[0].accuracy is None
    assert sum(b.count for b in bins) == 4


def test_count_weighted_gap_equals_ece():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 3)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 3, size=200)
    bins = reliability_bins(probs, labels)
    gap = sum(b.count * abs(b.accuracy - b.confidence) for b in bins if b.count) / 200
    assert len(bins) == 15
    assert gap == pytest.approx(expected_calibration_error(probs, labels))


def test_empty_input_gives_empty_bins_and_bad_shapes_are_refused():
    assert all(b.count == 0 for b in reliability_bins(np.zeros((0, 2)), np.zeros(0)))
    with pytest.raises(ValueError, match="shape"):
        reliability_bins(np.zeros((3, 2)), np.zeros(2))

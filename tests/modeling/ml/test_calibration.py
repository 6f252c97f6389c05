"""Temperature scaling recovers a known temperature and handles degenerate input."""

from __future__ import annotations

import numpy as np
import pytest

from modeling.ml.calibration import MIN_TEMPERATURE, apply_temperature, fit_temperature, negative_log_likelihood


def test_fit_recovers_the_temperature_that_distorted_the_logits() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(scale=2.0, size=(5000, 4))
    probs = np.exp(true_logits) / np.exp(true_logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(4, p=row) for row in probs])
    fitted = fit_temperature(true_logits * 2.5, labels)
    assert fitted == pytest.approx(2.5, rel=0.08)


def test_fit_lowers_nll_on_overconfident_logits() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=500)
    logits = (rng.normal(size=(500, 3)) + np.eye(3)[labels]) * 6.0
    fitted = fit_temperature(logits, labels)
    assert fitted > 1.0
    assert negative_log_likelihood(logits, labels, fitted) < negative_log_likelihood(logits, labels, 1.0)


def test_empty_or_single_class_input_keeps_temperature_one() -> None:
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=np.int64)) == 1.0
    assert fit_temperature(np.ones((4, 1)), np.zeros(4, dtype=np.int64)) == 1.0


def test_perfectly_separated_logits_sharpen_but_stay_within_the_bounds() -> None:
    # NLL keeps falling as T -> 0 here; the bounded search must stop at a finite, sharpening T.
    logits = np.array([[1.0, -1.0], [-1.0, 1.0]] * 10)
    labels = np.array([0, 1] * 10)
    fitted = fit_temperature(logits, labels)
    assert MIN_TEMPERATURE <= fitted < 0.2


def test_fit_refuses_non_finite_logits_and_out_of_range_labels() -> None:
    with pytest.raises(ValueError, match="NaN"):
        fit_temperature(np.array([[np.nan, 0.0]]), np.array([0]))
    with pytest.raises(ValueError, match="labels must lie"):
        fit_temperature(np.zeros((2, 2)), np.array([0, 2]))


def test_apply_temperature_flattens_probabilities_and_preserves_ranking() -> None:
    logits = np.array([[2.0, 0.0, -1.0]])
    flat = apply_temperature(logits, 3.0)
    sharp = apply_temperature(logits, 1.0)
    assert flat[0].argmax() == sharp[0].argmax() == 0
    assert flat[0, 0] < sharp[0, 0]
    assert flat.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="positive"):
        apply_temperature(logits, 0.0)

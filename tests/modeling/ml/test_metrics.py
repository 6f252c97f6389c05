"""Metrics against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from modeling.ml.metrics import (
    bootstrap_ci,
    brier_score,
    confusion_matrix,
    evaluate,
    expected_calibration_error,
    macro_f1,
    per_class_metrics,
    per_group_metrics,
    softmax,
)

# Rows are true classes. By hand: true 0 -> predicted 0,1,0; true 1 -> 1,2; true 2 -> 2,2,0,0.
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2]
Y_PRED = [0, 1, 0, 1, 2, 2, 2, 0, 0]


def test_confusion_matrix_counts_true_rows_against_predicted_columns() -> None:
    assert confusion_matrix(Y_TRUE, Y_PRED, 3).tolist() == [[2, 1, 0], [0, 1, 1], [2, 0, 2]]


def test_per_class_precision_recall_f1_match_hand_computation() -> None:
    metrics = per_class_metrics(Y_TRUE, Y_PRED, ["a", "b", "c"])
    # precision = diagonal / column sum (4, 2, 3); recall = diagonal / row sum (3, 2, 4).
    assert [m.precision for m in metrics] == pytest.approx([2 / 4, 1 / 2, 2 / 3])
    assert [m.recall for m in metrics] == pytest.approx([2 / 3, 1 / 2, 2 / 4])
    assert [m.f1 for m in metrics] == pytest.approx([4 / 7, 1 / 2, 4 / 7])
    assert [m.support for m in metrics] == [3, 2, 4]
    assert [m.label for m in metrics] == ["a", "b", "c"]


def test_macro_f1_is_the_unweighted_mean_of_class_f1() -> None:
    assert macro_f1(Y_TRUE, Y_PRED, 3) == pytest.approx((4 / 7 + 1 / 2 + 4 / 7) / 3)


def test_macro_f1_ignores_classes_absent_from_truth_and_predictions() -> None:
    assert macro_f1([0, 1, 0, 1], [0, 1, 0, 1], 5) == pytest.approx(1.0)


def test_ece_weights_each_bins_gap_by_its_share_of_examples() -> None:
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.65, 0.35]])
    labels = [0, 1, 1, 0]
    # Bins: {0.9, 0.9} acc 0.5 -> 2/4 * 0.4; {0.7} acc 1 -> 1/4 * 0.3; {0.65} acc 1 -> 1/4 * 0.35.
    assert expected_calibration_error(probs, labels) == pytest.approx(0.2 + 0.075 + 0.0875)


def test_ece_keeps_distinct_bins_apart() -> None:
    # One overconfident and one underconfident example: pooled into one bin they would cancel out.
    probs = np.array([[0.95, 0.05], [0.55, 0.45]])
    assert expected_calibration_error(probs, [1, 0]) == pytest.approx(0.5 * 0.95 + 0.5 * 0.45)


def test_brier_score_sums_squared_errors_over_classes() -> None:
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.65, 0.35]])
    assert brier_score(probs, [0, 1, 1, 0]) == pytest.approx((0.02 + 1.62 + 0.18 + 0.245) / 4)


def test_bootstrap_ci_width_matches_the_binomial_standard_error() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, size=2000)
    pred = np.where(rng.random(2000) < 0.8, truth, 1 - truth)
    acc_ci, f1_ci = bootstrap_ci(truth, pred, 2, n_resamples=1000, seed=0)
    acc = float((truth == pred).mean())
    expected_width = 2 * 1.96 * np.sqrt(acc * (1 - acc) / truth.size)
    assert acc_ci.low < acc < acc_ci.high
    assert acc_ci.high - acc_ci.low == pytest.approx(expected_width, rel=0.15)
    assert f1_ci.low < macro_f1(truth, pred, 2) < f1_ci.high


def test_bootstrap_is_reproducible_for_a_seed_and_varies_across_seeds() -> None:
    first = bootstrap_ci(Y_TRUE, Y_PRED, 3, n_resamples=300, seed=7)
    assert bootstrap_ci(Y_TRUE, Y_PRED, 3, n_resamples=300, seed=7) == first
    assert bootstrap_ci(Y_TRUE, Y_PRED, 3, n_resamples=300, seed=8) != first


def test_per_language_metrics_score_each_language_separately() -> None:
    groups = per_group_metrics([0, 1, 0, 1], [0, 1, 1, 1], ["en", "en", "ar", "ar"], 2)
    assert groups["en"].accuracy == 1.0
    assert groups["ar"].accuracy == 0.5
    assert groups["ar"].n == 2


def test_evaluate_reports_calibration_before_and_after_temperature() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(scale=2.0, size=(2000, 3))
    labels = np.array([rng.choice(3, p=row) for row in softmax(true_logits)])
    sharp = true_logits * 4.0  # overconfident by a known factor
    languages = ["en"] * 1000 + ["he"] * 1000
    report = evaluate(sharp, labels, ["a", "b", "c"], languages=languages, temperature=4.0, n_resamples=200)
    assert report.calibration_after.ece < report.calibration_before.ece / 2
    assert report.calibration_after.brier < report.calibration_before.brier
    assert report.per_language["he"].n == 1000
    assert report.accuracy_ci.low <= report.accuracy <= report.accuracy_ci.high
    assert report.to_dict()["confusion"] == confusion_matrix(labels, sharp.argmax(axis=1), 3).tolist()

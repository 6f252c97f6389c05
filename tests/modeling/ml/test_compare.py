"""Paired comparison statistics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from modeling.ml.compare import disagreements, mcnemar, paired_bootstrap, per_class_f1, per_group_macro_f1


def test_mcnemar_counts_discordant_pairs_and_gives_the_exact_binomial_p():
    truth = [0] * 10
    # Candidate right on items 0-7, production right on items 0-3 and 8: b = 4 (items 4-7), d = 1 (item 8).
    candidate = [0] * 8 + [1, 1]
    production = [0] * 4 + [1] * 4 + [0, 1]
    result = mcnemar(truth, candidate, production)
    assert (result.candidate_only, result.production_only, result.both_right, result.both_wrong) == (4, 1, 4, 1)
    # Two-sided exact: P(X <= 1) + P(X >= 4) for X ~ Bin(5, 1/2) = (1 + 5 + 5 + 1) / 32.
    assert result.p_value == pytest.approx(12 / 32)
    assert result.statistic == pytest.approx((abs(4 - 1) - 1) ** 2 / 5)


def test_mcnemar_without_discordant_pairs_finds_no_difference():
    result = mcnemar([0, 1, 2], [0, 1, 0], [0, 1, 0])
    assert (result.candidate_only, result.production_only, result.p_value, result.statistic) == (0, 0, 1.0, 0.0)


def test_mcnemar_is_significant_for_a_lopsided_split():
    truth = np.zeros(40, dtype=int)
    candidate = np.zeros(40, dtype=int)
    production = np.r_[np.ones(20, dtype=int), np.zeros(20, dtype=int)]
    # b = 20, d = 0: p = 2 / 2**20.
    assert mcnemar(truth, candidate, production).p_value == pytest.approx(2 / 2**20)


def test_paired_bootstrap_of_identical_models_is_exactly_zero():
    rng = np.random.default_rng(1)
    truth, pred = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    result = paired_bootstrap(truth, pred, pred, 3, n_resamples=300)
    for delta in result.values():
        assert delta.delta == 0.0
        assert (delta.delta_ci.low, delta.delta_ci.high) == (0.0, 0.0)


def test_paired_bootstrap_of_an_always_right_candidate_against_an_always_wrong_one():
    truth = np.array([0, 1] * 50)
    result = paired_bootstrap(truth, truth, 1 - truth, 2, n_resamples=200)
    assert result["accuracy"].delta == 1.0
    assert (result["accuracy"].delta_ci.low, result["accuracy"].delta_ci.high) == (1.0, 1.0)
    assert result["macro_f1"].candidate == 1.0 and result["macro_f1"].production == 0.0


def test_paired_interval_covers_the_observed_difference_and_is_reproducible():
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 2, 500)
    candidate = np.where(rng.random(500) < 0.85, truth, 1 - truth)
    production = np.where(rng.random(500) < 0.75, truth, 1 - truth)
    first = paired_bootstrap(truth, candidate, production, 2, seed=3)
    again = paired_bootstrap(truth, candidate, production, 2, seed=3)
    assert first == again
    acc = first["accuracy"]
    assert acc.delta == pytest.approx(np.mean(candidate == truth) - np.mean(production == truth))
    assert acc.delta_ci.low < acc.delta < acc.delta_ci.high
    assert acc.delta_ci.low > 0  # a ten-point gap on 500 paired items is clearly positive


def test_per_class_f1_by_hand():
    result = per_class_f1([0, 0, 1, 1], [0, 1, 1, 1], [0, 0, 0, 1], ["neg", "pos"])
    assert result["neg"].n == 2 and result["neg"].candidate == pytest.approx(2 / 3)
    assert result["neg"].production == pytest.approx(4 / 5)
    assert result["pos"].candidate == pytest.approx(4 / 5) and result["pos"].production == pytest.approx(2 / 3)
    assert result["pos"].delta == pytest.approx(4 / 5 - 2 / 3)


def test_per_group_macro_f1_splits_by_language():
    truth = [0, 1, 0, 1]
    result = per_group_macro_f1(truth, [0, 1, 1, 0], [0, 1, 0, 1], ["en", "en", "de", "de"], 2)
    assert result["en"].n == 2 and result["en"].candidate == 1.0 and result["en"].production == 1.0
    assert result["de"].candidate == 0.0 and result["de"].production == 1.0 and result["de"].delta == -1.0


def test_disagreements_and_shape_checks():
    assert disagreements([0, 1, 2, 2], [0, 2, 2, 1]).tolist() == [1, 3]
    with pytest.raises(ValueError):
        mcnemar([0, 1], [0], [0, 1])
    with pytest.raises(ValueError):
        per_group_macro_f1([0], [0], [0], ["en", "de"], 2)

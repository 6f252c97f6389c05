"""Drift statistics against hand-computed values, scipy's reference implementations and seeded synthetic data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon, pdist

from monitoring.stats import drift

# ---------------------------------------------------------------------------------------------------------
# PSI and Jensen-Shannon distance


def test_psi_matches_the_hand_computed_value():
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5) = 0.25 ln 2 + 0.25 ln 1.5 = 0.25 ln 3
    assert drift.psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.25 * math.log(3), rel=1e-12)


def test_psi_accepts_counts_and_shares_alike_and_is_zero_without_shift():
    assert drift.psi([50, 50], [25, 75]) == pytest.approx(drift.psi([0.5, 0.5], [0.25, 0.75]))
    assert drift.psi([3, 1, 6], [30, 10, 60]) == pytest.approx(0.0, abs=1e-15)


def test_psi_floors_an_empty_category_at_eps_instead_of_infinity():
    expected = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert drift.psi([10, 0], [5, 5]) == pytest.approx(expected, rel=1e-12)
    assert drift.psi([10, 0], [5, 5], eps=1e-2) < drift.psi([10, 0], [5, 5])


def test_js_distance_hand_computed_and_bounded():
    # m = (0.75, 0.25); KL(p||m) = 0.5 log2(2/3) + 0.5 log2 2; KL(q||m) = log2(4/3)
    divergence = (0.5 * math.log2(2 / 3) + 0.5 + math.log2(4 / 3)) / 2
    assert drift.js_distance([0.5, 0.5], [1.0, 0.0]) == pytest.approx(math.sqrt(divergence), rel=1e-12)
    assert drift.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert drift.js_distance([2, 3, 5], [20, 30, 50]) == pytest.approx(0.0, abs=1e-7)


def test_js_distance_equals_scipy():
    rng = np.random.default_rng(3)
    for _ in range(20):
        p, q = rng.random(6), rng.random(6)
        assert drift.js_distance(p.tolist(), q.tolist()) == pytest.approx(jensenshannon(p, q, base=2), rel=1e-9)


@pytest.mark.parametrize(
    ("reference", "current"),
    [([1, 2], [1, 2, 3]), ([], []), ([0, 0], [1, 1]), ([1, -1], [1, 1]), ([1, float("nan")], [1, 1])],
)
def test_distances_refuse_malformed_input(reference, current):
    with pytest.raises(ValueError):
        drift.psi(reference, current)


# ---------------------------------------------------------------------------------------------------------
# Predicted-label distribution


def test_prediction_chi_square_equals_scipy_contingency_test():
    reference = {"negative": 120, "neutral": 200, "positive": 180}
    current = {"negative": 420, "neutral": 500, "positive": 280}
    result = drift.prediction_shift(reference, current)
    table = np.array([list(reference.values()), list(current.values())])
    chi2, p_value, dof, _ = sps.chi2_contingency(table, correction=False)
    assert result.details["chi2"] == pytest.approx(chi2, rel=1e-12)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)
    assert result.details["dof"] == dof == 2
    assert result.statistic == pytest.approx(drift.psi([120, 200, 180], [420, 500, 280]))
    assert result.details["js_distance"] == pytest.approx(drift.js_distance([120, 200, 180], [420, 500, 280]))


def test_prediction_shift_alerts_on_a_real_shift_in_a_large_window():
    rng = np.random.default_rng(1)
    reference = rng.multinomial(1000, [0.5, 0.3, 0.2]).tolist()
    current = rng.multinomial(2000, [0.3, 0.3, 0.4]).tolist()
    result = drift.prediction_shift(reference, current)
    assert result.rejected and result.alert
    assert result.details["guard"] is None
    assert result.details["psi"] >= 0.1


def test_prediction_shift_small_window_never_alerts():
    # A blatant shift, but only 200 predictions: below max(300, 50 * 3).
    result = drift.prediction_shift([500, 300, 200], [20, 30, 150])
    assert result.rejected
    assert not result.alert
    assert result.details["guard"] == "min_n"
    assert result.details["min_n"] == 300


def test_prediction_min_window_grows_with_the_label_count():
    labels = [f"l{i}" for i in range(8)]
    reference = dict.fromkeys(labels, 100)
    current = {**dict.fromkeys(labels, 30), "l7": 140}  # 350 predictions: >= 300 but < 50 * 8 = 400
    result = drift.prediction_shift(reference, current)
    assert result.details["min_n"] == 400
    assert result.rejected and not result.alert and result.details["guard"] == "min_n"


def test_prediction_shift_too_small_to_matter_is_held_back_by_psi():
    # Huge windows make a 2-point share change significant; PSI ~ 0.002 says it does not matter.
    result = drift.prediction_shift([50_000, 50_000], [48_000, 52_000])
    assert result.rejected
    assert result.details["psi"] < 0.1
    assert not result.alert and result.details["guard"] == "psi"


def test_prediction_shift_keeps_its_false_positive_rate_with_a_small_reference():
    # The reference is a 150-text eval split, the window 5,000 predictions, same population. A goodness-of-fit
    # test against the reference shares would count the reference's sampling error as drift; the homogeneity
    # test must keep its rejection rate near alpha.
    rng = np.random.default_rng(7)
    shares = [0.45, 0.35, 0.2]
    trials = 300
    homogeneity = goodness_of_fit = 0
    for _ in range(trials):
        reference = rng.multinomial(150, shares)
        current = rng.multinomial(5000, shares)
        homogeneity += drift.prediction_shift(reference.tolist(), current.tolist()).rejected
        goodness_of_fit += sps.chisquare(current, reference / reference.sum() * current.sum()).pvalue < 0.05
    assert 0.02 <= homogeneity / trials <= 0.09
    assert goodness_of_fit / trials > 0.5  # why the goodness-of-fit test was not chosen


def test_prediction_shift_no_alert_under_no_shift():
    rng = np.random.default_rng(11)
    shares = [0.2, 0.5, 0.3]
    results = [
        drift.prediction_shift(rng.multinomial(1000, shares).tolist(), rng.multinomial(1500, shares).tolist())
        for _ in range(200)
    ]
    assert 0.02 <= np.mean([r.rejected for r in results]) <= 0.09
    assert not any(r.alert for r in results)


def test_prediction_shift_with_an_empty_window_is_not_tested():
    result = drift.prediction_shift({"a": 10, "b": 5}, {"a": 0, "b": 0})
    assert result.p_value is None and not result.rejected and not result.alert
    assert result.details["guard"] == "empty_current"


def test_prediction_shift_refuses_shares_and_mismatched_sequences():
    with pytest.raises(ValueError, match="whole numbers"):
        drift.prediction_shift([0.5, 0.5], [0.4, 0.6])
    with pytest.raises(ValueError, match="categories"):
        drift.prediction_shift([5, 5], [5, 5, 5])
    with pytest.raises(ValueError, match="both be"):
        drift.prediction_shift({"a": 5}, [5])


# ---------------------------------------------------------------------------------------------------------
# Script and language mix


def test_categorical_shift_equals_scipy_when_no_cell_is_sparse():
    reference = {"en": 300, "de": 150, "ar": 50}
    current = {"en": 250, "de": 200, "ar": 90}
    result = drift.categorical_shift(reference, current, test="language_chi2")
    chi2, p_value, dof, _ = sps.chi2_contingency(np.array([[300, 150, 50], [250, 200, 90]]), correction=False)
    assert result.statistic == pytest.approx(chi2, rel=1e-12)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)
    assert result.details["dof"] == dof
    assert result.details["cramers_v"] == pytest.approx(math.sqrt(chi2 / 1040))
    assert result.test == "language_chi2"


def test_a_frequent_language_unseen_in_the_reference_drives_the_alert():
    result = drift.categorical_shift({"en": 500, "de": 500}, {"en": 300, "de": 300, "ar": 400}, test="language_chi2")
    assert result.alert
    assert result.details["new_categories"] == ["ar"]
    assert "ar" in result.details["cells"]
    assert result.details["merged"] == []


def test_rare_categories_are_pooled_and_a_tiny_new_one_does_not_alert():
    # fr (8 texts) and ar (3) each expect fewer than 5 per row; pooled, "(other)" expects 5.5 and is kept.
    result = drift.categorical_shift(
        {"en": 500, "de": 495, "fr": 5}, {"en": 500, "de": 494, "fr": 3, "ar": 3}, test="language_chi2"
    )
    assert sorted(result.details["merged"]) == ["ar", "fr"]
    assert result.details["new_categories"] == ["ar"]
    assert result.details["cells"] == ["en", "de", "(other)"]
    chi2, p_value, _, _ = sps.chi2_contingency(np.array([[500, 495, 5], [500, 494, 6]]), correction=False)
    assert result.statistic == pytest.approx(chi2) and result.p_value == pytest.approx(p_value)
    assert not result.rejected


def test_pooled_cell_is_dropped_when_it_is_itself_too_sparse():
    result = drift.categorical_shift({"en": 500, "de": 500}, {"en": 500, "de": 499, "ar": 1}, test="script_chi2")
    assert result.details["merged"] == ["ar"]
    assert "(other)" not in result.details["cells"]
    assert result.details["cells"] == ["en", "de"]


def test_one_category_cannot_be_tested():
    result = drift.categorical_shift({"Latn": 400}, {"Latn": 700}, test="script_chi2")
    assert result.p_value is None and not result.rejected and not result.alert
    assert result.details["guard"] == "one_category"


def test_categorical_shift_small_sample_never_alerts():
    result = drift.categorical_shift({"en": 40, "ar": 0}, {"en": 0, "ar": 40}, test="language_chi2")
    assert result.rejected and not result.alert
    assert result.details["guard"] == "min_n"


def test_categorical_no_shift_false_positive_rate_is_near_alpha():
    rng = np.random.default_rng(5)
    shares = [0.6, 0.25, 0.1, 0.05]
    names = ["en", "de", "ar", "zh"]
    rejected = []
    for _ in range(300):
        reference = dict(zip(names, rng.multinomial(400, shares).tolist(), strict=True))
        current = dict(zip(names, rng.multinomial(800, shares).tolist(), strict=True))
        rejected.append(drift.categorical_shift(reference, current, test="language_chi2").rejected)
    assert 0.02 <= np.mean(rejected) <= 0.09


# ---------------------------------------------------------------------------------------------------------
# Kolmogorov-Smirnov: text descriptors and softmax outputs


def test_ks_test_equals_scipy_and_detects_a_length_shift():
    rng = np.random.default_rng(2)
    reference = rng.poisson(40, 500).astype(float)
    current = rng.poisson(55, 400).astype(float)
    result = drift.ks_test(reference.tolist(), current.tolist(), test="length_ks")
    expected = sps.ks_2samp(reference, current)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.alert and result.test == "length_ks"
    assert result.details["current_median"] > result.details["reference_median"]


def test_ks_test_no_shift_rejection_rate_is_at_most_about_alpha():
    rng = np.random.default_rng(8)
    rejected = [
        drift.ks_test(
            rng.lognormal(3, 0.5, 300).tolist(), rng.lognormal(3, 0.5, 200).tolist(), test="length_ks"
        ).rejected
        for _ in range(300)
    ]
    assert 0.02 <= np.mean(rejected) <= 0.08


def test_ks_test_small_sample_never_alerts():
    result = drift.ks_test(list(range(30)), [x + 100 for x in range(30)], test="unk_rate_ks")
    assert result.rejected and not result.alert
    assert result.details["guard"] == "min_n"


def test_ks_test_refuses_nan():
    with pytest.raises(ValueError, match="NaN"):
        drift.ks_test([1.0, float("nan")], [1.0], test="length_ks")


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def test_softmax_ks_applies_bonferroni_and_matches_scipy_per_class():
    rng = np.random.default_rng(4)
    reference = _softmax(rng.normal(size=(600, 4)))
    current = _softmax(rng.normal(size=(500, 4)) + np.array([0.6, 0, 0, 0]))
    result = drift.softmax_ks(reference, current, labels=["a", "b", "c", "d"])
    assert result.threshold == pytest.approx(0.05 / 4)
    for j, name in enumerate("abcd"):
        expected = sps.ks_2samp(reference[:, j], current[:, j])
        assert result.details["per_class"][name]["p_value"] == pytest.approx(expected.pvalue)
    assert result.details["worst_class"] == "a"
    assert result.p_value == min(v["p_value"] for v in result.details["per_class"].values())
    assert result.alert


def test_softmax_ks_tests_one_column_for_two_classes():
    rng = np.random.default_rng(6)
    p_ref, p_cur = rng.beta(2, 2, 300), rng.beta(2, 2, 300)
    result = drift.softmax_ks(np.column_stack([p_ref, 1 - p_ref]), np.column_stack([p_cur, 1 - p_cur]))
    assert result.details["columns_tested"] == 1
    assert result.threshold == 0.05


def test_softmax_ks_no_shift_false_positive_rate_is_at_most_about_alpha():
    rng = np.random.default_rng(9)
    rejected = [
        drift.softmax_ks(_softmax(rng.normal(size=(300, 3))), _softmax(rng.normal(size=(300, 3)))).rejected
        for _ in range(300)
    ]
    # Bonferroni over correlated columns is conservative: at most alpha, possibly well below.
    assert np.mean(rejected) <= 0.07


def test_softmax_ks_small_sample_never_alerts():
    rng = np.random.default_rng(10)
    reference = _softmax(rng.normal(size=(40, 3)))
    current = _softmax(rng.normal(size=(40, 3)) + np.array([4.0, 0, 0]))
    result = drift.softmax_ks(reference, current)
    assert result.rejected and not result.alert and result.details["guard"] == "min_n"


def test_softmax_ks_refuses_mismatched_classes():
    with pytest.raises(ValueError, match="classes"):
        drift.softmax_ks(np.full((5, 3), 1 / 3), np.full((5, 2), 0.5))


# ---------------------------------------------------------------------------------------------------------
# MMD


def _naive_mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    def k(a: np.ndarray, b: np.ndarray) -> float:
        return math.exp(-float(np.sum((a - b) ** 2)) / (2 * bandwidth**2))

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd2_of_a_hand_computable_pair_of_samples():
    # x = y = {0, 1}, bandwidth 1: xx = yy = e^-1/2, xy = (1 + e^-1/2) / 2, so MMD^2 = e^-1/2 - 1 (unbiased: < 0).
    points = np.array([[0.0], [1.0], [0.0], [1.0]])
    kernel = drift.rbf_kernel(points, points, bandwidth=1.0)
    assert drift.mmd2_unbiased(kernel, 2) == pytest.approx(math.exp(-0.5) - 1, rel=1e-12)


def test_mmd2_equals_a_naive_double_loop():
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.5
    pooled = np.vstack([x, y])
    kernel = drift.rbf_kernel(pooled, pooled, bandwidth=1.3)
    assert drift.mmd2_unbiased(kernel, 7) == pytest.approx(_naive_mmd2(x, y, 1.3), rel=1e-10)


def test_vectorised_permutations_equal_the_naive_statistic_of_each_relabelling():
    rng = np.random.default_rng(13)
    pooled = rng.normal(size=(11, 2))
    kernel = drift.rbf_kernel(pooled, pooled, bandwidth=0.9)
    membership = drift.permutation_memberships(rng, 25, 11, 6)
    assert np.all(membership.sum(axis=1) == 6)
    vectorised = drift.mmd2_for_memberships(kernel, membership)
    for row, value in zip(membership, vectorised, strict=True):
        x, y = pooled[row == 1], pooled[row == 0]
        assert value == pytest.approx(_naive_mmd2(x, y, 0.9), rel=1e-9, abs=1e-12)


def test_bandwidth_is_the_median_pairwise_distance():
    rng = np.random.default_rng(14)
    points = rng.normal(size=(40, 5))
    assert drift.median_bandwidth(points) == pytest.approx(float(np.median(pdist(points))), rel=1e-9)
    assert drift.median_bandwidth(np.zeros((10, 3))) == 1.0  # all duplicates: still a usable kernel


def test_mmd_p_value_is_a_permutation_fraction_within_its_bounds():
    rng = np.random.default_rng(15)
    result = drift.mmd_test(rng.normal(size=(60, 4)), rng.normal(size=(50, 4)), permutations=99, seed=1)
    assert 1 / 100 <= result.p_value <= 1
    assert result.p_value * 100 == pytest.approx(round(result.p_value * 100))
    separated = drift.mmd_test(rng.normal(size=(60, 4)), rng.normal(size=(50, 4)) + 5, permutations=99)
    assert separated.p_value == pytest.approx(1 / 100)  # the smallest p-value 99 permutations can give
    assert separated.alert
    assert separated.statistic == pytest.approx(separated.statistic)  # finite


def test_mmd_is_seeded_and_reports_its_bandwidth():
    rng = np.random.default_rng(16)
    x, y = rng.normal(size=(80, 3)), rng.normal(size=(70, 3)) + 0.3
    first, second = drift.mmd_test(x, y, seed=4), drift.mmd_test(x, y, seed=4)
    assert first == second
    assert first.details["bandwidth"] == pytest.approx(float(np.median(pdist(np.vstack([x, y])))))


def test_mmd_no_shift_false_positive_rate_is_near_alpha():
    rng = np.random.default_rng(17)
    rejected = [
        drift.mmd_test(rng.normal(size=(80, 6)), rng.normal(size=(60, 6)), permutations=199, seed=i).rejected
        for i in range(200)
    ]
    assert 0.015 <= np.mean(rejected) <= 0.095


def test_mmd_detects_a_shift_in_the_embedding_distribution():
    rng = np.random.default_rng(18)
    reference = rng.normal(size=(300, 16))
    current = rng.normal(size=(200, 16))
    current[:, :4] *= 2.0  # a variance change: same mean, so a test of means would miss it
    result = drift.mmd_test(reference, current, permutations=300)
    assert result.alert and result.statistic > result.details["permutation_q95"]


def test_mmd_small_sample_never_alerts():
    rng = np.random.default_rng(19)
    result = drift.mmd_test(rng.normal(size=(20, 4)), rng.normal(size=(20, 4)) + 4, permutations=200)
    assert result.rejected and not result.alert and result.details["guard"] == "min_n"


def test_mmd_subsamples_large_inputs():
    rng = np.random.default_rng(20)
    result = drift.mmd_test(rng.normal(size=(500, 3)), rng.normal(size=(300, 3)), permutations=50, max_n=200)
    assert result.details["rows_used"] == [200, 200] and result.details["subsampled"]
    assert (result.n_reference, result.n_current) == (500, 300)


# ---------------------------------------------------------------------------------------------------------
# Benjamini-Hochberg


def test_benjamini_hochberg_reproduces_the_worked_example_of_the_1995_paper():
    # Benjamini & Hochberg (1995), section 4: 15 p-values at q = 0.05 reject the four smallest.
    p_values = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262,
                0.5719, 0.6528, 0.7590, 1.0000]  # fmt: skip
    order = np.random.default_rng(0).permutation(15)
    shuffled = [p_values[i] for i in order]
    rejected = drift.benjamini_hochberg(shuffled, alpha=0.05)
    assert [shuffled[i] for i, r in enumerate(rejected) if r] == pytest.approx(
        sorted([0.0001, 0.0004, 0.0019, 0.0095], key=shuffled.index)
    )
    assert sum(rejected) == 4


def test_benjamini_hochberg_step_up_rejects_below_a_failing_rank_and_equals_scipy():
    # p_(2) = 0.04 > 2 * 0.05 / 3 fails, but p_(3) = 0.045 <= 0.05 passes, so all three are rejected.
    assert drift.benjamini_hochberg([0.045, 0.04, 0.03]) == [True, True, True]
    rng = np.random.default_rng(21)
    for _ in range(50):
        p = np.concatenate([rng.uniform(size=10), rng.uniform(0, 0.01, size=3)])
        expected = sps.false_discovery_control(p) <= 0.05
        assert drift.benjamini_hochberg(p.tolist()) == expected.tolist()
    assert drift.benjamini_hochberg([]) == []
    with pytest.raises(ValueError):
        drift.benjamini_hochberg([0.5, 1.5])


# ---------------------------------------------------------------------------------------------------------
# PCA


def test_pca_matches_the_principal_subspace_and_round_trips():
    rng = np.random.default_rng(22)
    embeddings = rng.normal(size=(200, 48)) @ rng.normal(size=(48, 48))
    mean, components = drift.pca_fit(embeddings, dims=32)
    assert mean.shape == (48,) and components.shape == (48, 32)
    assert np.allclose(components.T @ components, np.eye(32), atol=1e-10)
    projected = drift.pca_project(embeddings, mean, components)
    variances = projected.var(axis=0)
    assert np.all(np.diff(variances) <= 1e-9)  # ordered by explained variance
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(embeddings.T, bias=True)))[::-1]
    assert variances == pytest.approx(eigenvalues[:32], rel=1e-8)
    assert drift.pca_fit(embeddings, dims=32)[1] == pytest.approx(components)  # deterministic signs


def test_pca_with_fewer_rows_or_dimensions_than_requested():
    rng = np.random.default_rng(23)
    few_rows = rng.normal(size=(5, 384))
    mean, components = drift.pca_fit(few_rows, dims=32)
    assert components.shape == (384, 5)
    assert drift.pca_project(rng.normal(size=(3, 384)), mean, components).shape == (3, 5)
    _, narrow = drift.pca_fit(rng.normal(size=(100, 8)), dims=32)
    assert narrow.shape == (8, 8)
    with pytest.raises(ValueError, match="dimensions"):
        drift.pca_project(rng.normal(size=(3, 10)), mean, components)


# ---------------------------------------------------------------------------------------------------------
# Serialisation


def test_every_result_serialises_to_strict_json():
    rng = np.random.default_rng(24)
    results = [
        drift.prediction_shift({"a": 10, "b": 0}, {"a": 0, "b": 0}),
        drift.prediction_shift([400, 600], [700, 300]),
        drift.categorical_shift({"en": 10}, {"en": 20}, test="language_chi2"),
        drift.ks_test([], [1.0], test="length_ks"),
        drift.softmax_ks(_softmax(rng.normal(size=(60, 3))), _softmax(rng.normal(size=(60, 3)))),
        drift.mmd_test(rng.normal(size=(30, 2)), rng.normal(size=(30, 2)), permutations=20),
    ]
    for result in results:
        payload = json.loads(json.dumps(result.as_dict(), allow_nan=False))
        assert payload["test"] == result.test
        assert set(payload) == {"test", "statistic", "p_value", "threshold", "rejected", "alert", "n_reference",
                                "n_current", "details"}  # fmt: skip

"""Drift statistics: two-sample tests of a current window against a model version's stored reference.

Pure numpy/scipy: plain data in, a `TestResult` out. Every test separates "the no-shift null is rejected"
(`rejected`, a pure significance statement) from "raise an alert" (`alert`), which also needs the test's
guards to hold: enough data on both sides and, where an effect size is defined, an effect worth acting on.
With a large window a significance test rejects for shifts too small to matter; with a small one it is
noise. The guards keep both out of the alert list while the numbers stay visible.

The reference is usually a model version's eval split, so it is a *sample*, often a small one. The tests
here are two-sample tests that account for the reference's own sampling noise; none of them treats the
reference as the population truth (see `_contingency_chi2`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats as sps

FloatArray = NDArray[np.float64]

# Cochran's rule: the chi-square approximation is trusted when every expected cell count is at least 5.
MIN_EXPECTED = 5.0
# The median-distance bandwidth is estimated on at most this many pooled points (an O(n^2) step otherwise).
MEDIAN_SUBSAMPLE = 1000
OTHER = "(other)"


@dataclass(frozen=True)
class TestResult:
    """One drift test on one window: the statistic, its p-value, and whether it rejected and alerted."""

    __test__ = False  # a dataclass named Test* is not a pytest test class

    test: str
    statistic: float
    p_value: float | None
    threshold: float
    rejected: bool
    alert: bool
    n_reference: int
    n_current: int
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (non-finite floats become None: JSON has no NaN)."""
        return _jsonable(asdict(self))  # type: ignore[no-any-return]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _not_tested(test: str, *, reason: str, threshold: float, n_reference: int, n_current: int) -> TestResult:
    """Return the result of a test that could not run (no data, one category): never rejected."""
    details: dict[str, Any] = {"guard": reason, "reason": reason}
    return TestResult(test, 0.0, None, threshold, False, False, n_reference, n_current, details)


# ---------------------------------------------------------------------------------------------------------
# Distribution distances


def _shares(values: Sequence[float] | FloatArray, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of counts or shares")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name} must hold finite, non-negative counts or shares")
    total = float(array.sum())
    if total <= 0:
        raise ValueError(f"{name} sums to zero: no observations")
    return array / total


def _pair(reference: Sequence[float], current: Sequence[float]) -> tuple[FloatArray, FloatArray]:
    ref, cur = _shares(reference, "reference"), _shares(current, "current")
    if ref.shape != cur.shape:
        raise ValueError(f"reference has {ref.size} categories but current has {cur.size}")
    return ref, cur


def psi(reference: Sequence[float], current: Sequence[float], *, eps: float = 1e-4) -> float:
    """Return the population stability index sum((c - r) * ln(c / r)) over category shares.

    Counts or shares are accepted (each side is normalised). A share of zero is floored at `eps` so an
    empty category contributes a large but finite term instead of infinity; shares are not renormalised
    after flooring, so the value for categories present on both sides is exactly the textbook one.
    """
    ref, cur = _pair(reference, current)
    ref, cur = np.maximum(ref, eps), np.maximum(cur, eps)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def js_distance(reference: Sequence[float], current: Sequence[float]) -> float:
    """Return the Jensen-Shannon distance (square root of the divergence, base 2): 0 same, 1 disjoint."""
    ref, cur = _pair(reference, current)
    mid = (ref + cur) / 2

    def kl(p: FloatArray) -> float:
        nonzero = p > 0  # 0 * log(0 / m) is 0 by continuity
        return float(np.sum(p[nonzero] * np.log2(p[nonzero] / mid[nonzero])))

    divergence = (kl(ref) + kl(cur)) / 2
    return float(math.sqrt(min(max(divergence, 0.0), 1.0)))


# ---------------------------------------------------------------------------------------------------------
# Categorical tests (predicted labels, script mix, language mix)


def _aligned_counts(
    reference_counts: Mapping[str, int] | Sequence[int], current_counts: Mapping[str, int] | Sequence[int]
) -> tuple[list[str], FloatArray, FloatArray]:
    if isinstance(reference_counts, Mapping) != isinstance(current_counts, Mapping):
        raise ValueError("reference and current counts must both be mappings or both be sequences")
    if isinstance(reference_counts, Mapping) and isinstance(current_counts, Mapping):
        names = list(dict.fromkeys([*reference_counts, *current_counts]))
        ref = [reference_counts.get(name, 0) for name in names]
        cur = [current_counts.get(name, 0) for name in names]
    else:
        ref, cur = list(reference_counts), list(current_counts)  # type: ignore[arg-type]
        if len(ref) != len(cur):
            raise ValueError(f"reference has {len(ref)} categories but current has {len(cur)}")
        names = [str(i) for i in range(len(ref))]
    ref_array, cur_array = np.asarray(ref, dtype=np.float64), np.asarray(cur, dtype=np.float64)
    for name, array in (("reference", ref_array), ("current", cur_array)):
        if array.ndim != 1 or not np.all(np.isfinite(array)) or np.any(array < 0):
            raise ValueError(f"{name} counts must be finite and non-negative")
        if np.any(array != np.round(array)):
            raise ValueError(f"{name} counts must be whole numbers (pass counts, not shares)")
    return names, ref_array, cur_array


@dataclass(frozen=True)
class _Chi2:
    statistic: float
    p_value: float | None
    dof: int
    cells: list[str]
    merged: list[str]
    cramers_v: float


def _contingency_chi2(names: list[str], ref: FloatArray, cur: FloatArray) -> _Chi2:
    """Pearson's chi-square test of homogeneity on the 2 x k table (reference row, current row).

    Why a two-sample contingency test and not a goodness-of-fit test against the reference shares: the
    reference is the eval split, a sample (often a few hundred texts). Goodness-of-fit treats its shares as
    exact population probabilities, so the reference's own sampling error is counted as drift, and since
    that error stays fixed while the current window grows, its false-positive rate tends to 1 as n_current
    grows. The homogeneity test puts both rows' noise in the expected counts; when the reference is large
    it converges to the goodness-of-fit test anyway.

    Sparse cells: categories whose expected count is under 5 in either row (Cochran's rule) are pooled
    into one "(other)" cell, which is kept only if it too reaches 5, else dropped. A category unseen in the
    reference is no problem in itself (its expected reference count is positive: it comes from the column
    total); it is pooled only when it is rare, and a frequent new category stays a cell and drives the
    statistic, which is what should happen. Pooling beats adding a smoothed pseudo-count to the reference:
    a pseudo-count invents observations and its size would set the p-value.
    """
    n_ref, n_cur = float(ref.sum()), float(cur.sum())
    total = n_ref + n_cur
    columns = ref + cur
    keep = columns > 0
    expected_min = np.minimum(n_ref, n_cur) * columns / total
    sparse = keep & (expected_min < MIN_EXPECTED)
    cells = [name for name, k, s in zip(names, keep, sparse, strict=True) if k and not s]
    merged = [name for name, s in zip(names, sparse, strict=True) if s]
    ref_cells = [float(r) for r, k, s in zip(ref, keep, sparse, strict=True) if k and not s]
    cur_cells = [float(c) for c, k, s in zip(cur, keep, sparse, strict=True) if k and not s]
    other_ref, other_cur = float(ref[sparse].sum()), float(cur[sparse].sum())
    if merged and min(n_ref, n_cur) * (other_ref + other_cur) / total >= MIN_EXPECTED:
        cells.append(OTHER)
        ref_cells.append(other_ref)
        cur_cells.append(other_cur)
    if len(cells) < 2:
        return _Chi2(0.0, None, 0, cells, merged, 0.0)
    table = np.array([ref_cells, cur_cells])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = len(cells) - 1
    p_value = float(sps.chi2.sf(statistic, dof))
    # Cramer's V for a 2 x k table: sqrt(chi2 / n), the effect size that does not grow with n.
    cramers_v = math.sqrt(statistic / float(table.sum()))
    return _Chi2(statistic, p_value, dof, cells, merged, cramers_v)


def prediction_shift(
    reference_counts: Mapping[str, int] | Sequence[int],
    current_counts: Mapping[str, int] | Sequence[int],
    *,
    alpha: float = 0.05,
    psi_threshold: float = 0.1,
) -> TestResult:
    """Test the predicted-label distribution: PSI and JS distance, alert gated by chi-square and window size.

    Alerts only when the chi-square homogeneity test rejects, PSI reaches `psi_threshold` (the effect size),
    and the current window holds at least max(300, 50 * labels) predictions; `details["guard"]` names the
    guard that held a rejection back. Counts are per label, as mappings (label -> count) or aligned sequences.
    """
    names, ref, cur = _aligned_counts(reference_counts, current_counts)
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    if n_ref == 0 or n_cur == 0:
        reason = "empty_reference" if n_ref == 0 else "empty_current"
        return _not_tested("prediction", reason=reason, threshold=alpha, n_reference=n_ref, n_current=n_cur)
    chi2 = _contingency_chi2(names, ref, cur)
    psi_value = psi(ref.tolist(), cur.tolist())
    min_n = max(300, 50 * len(names))
    rejected = chi2.p_value is not None and chi2.p_value < alpha
    guard = None
    if rejected and n_cur < min_n:
        guard = "min_n"
    elif rejected and psi_value < psi_threshold:
        guard = "psi"
    details = {
        "psi": psi_value,
        "psi_threshold": psi_threshold,
        "js_distance": js_distance(ref.tolist(), cur.tolist()),
        "chi2": chi2.statistic,
        "dof": chi2.dof,
        "cramers_v": chi2.cramers_v,
        "merged": chi2.merged,
        "min_n": min_n,
        "guard": guard,
        "reference_shares": dict(zip(names, (ref / n_ref).tolist(), strict=True)),
        "current_shares": dict(zip(names, (cur / n_cur).tolist(), strict=True)),
    }
    return TestResult(
        "prediction", psi_value, chi2.p_value, alpha, rejected, rejected and guard is None, n_ref, n_cur, details
    )


def categorical_shift(
    reference_counts: Mapping[str, int],
    current_counts: Mapping[str, int],
    *,
    test: str,
    alpha: float = 0.05,
    min_n: int = 50,
) -> TestResult:
    """Test a categorical mix (script, language) with a chi-square homogeneity test.

    Categories unseen in the reference are kept as cells when frequent and pooled into "(other)" when
    rare (see `_contingency_chi2`); `details["new_categories"]` lists them. Alerts need `min_n` on each side.
    """
    names, ref, cur = _aligned_counts(reference_counts, current_counts)
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    if n_ref == 0 or n_cur == 0:
        reason = "empty_reference" if n_ref == 0 else "empty_current"
        return _not_tested(test, reason=reason, threshold=alpha, n_reference=n_ref, n_current=n_cur)
    chi2 = _contingency_chi2(names, ref, cur)
    rejected = chi2.p_value is not None and chi2.p_value < alpha
    guard = "min_n" if rejected and min(n_ref, n_cur) < min_n else None
    if chi2.p_value is None:
        guard = "one_category"
    details = {
        "chi2": chi2.statistic,
        "dof": chi2.dof,
        "cramers_v": chi2.cramers_v,
        "cells": chi2.cells,
        "merged": chi2.merged,
        "new_categories": [name for name, r, c in zip(names, ref, cur, strict=True) if r == 0 and c > 0],
        "min_n": min_n,
        "guard": guard,
        "psi": psi(ref.tolist(), cur.tolist()),
        "js_distance": js_distance(ref.tolist(), cur.tolist()),
        "reference_shares": dict(zip(names, (ref / n_ref).tolist(), strict=True)),
        "current_shares": dict(zip(names, (cur / n_cur).tolist(), strict=True)),
    }
    alert = rejected and guard is None
    return TestResult(test, chi2.statistic, chi2.p_value, alpha, rejected, alert, n_ref, n_cur, details)


# ---------------------------------------------------------------------------------------------------------
# Continuous tests (text length, unknown-token rate, softmax outputs)


def _finite_1d(values: Sequence[float] | FloatArray, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of numbers")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds a NaN or infinite value")
    return array


def _ks(ref: FloatArray, cur: FloatArray) -> tuple[float, float]:
    # Exact p-values for small samples, the asymptotic Kolmogorov distribution beyond (scipy's own "auto").
    # With ties (text lengths are integers, many unknown-token rates are 0) the KS test is conservative:
    # its real false-positive rate is at most alpha, never above.
    result = sps.ks_2samp(ref, cur, method="auto")
    return float(result.statistic), float(result.pvalue)


def ks_test(
    reference: Sequence[float], current: Sequence[float], *, test: str, alpha: float = 0.05, min_n: int = 50
) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test of a per-text descriptor (length, unknown-token rate).

    The statistic D (the largest gap between the two empirical CDFs) is itself the effect size, in [0, 1].
    Alerts need `min_n` values on each side.
    """
    ref, cur = _finite_1d(reference, "reference"), _finite_1d(current, "current")
    if ref.size == 0 or cur.size == 0:
        reason = "empty_reference" if ref.size == 0 else "empty_current"
        return _not_tested(test, reason=reason, threshold=alpha, n_reference=ref.size, n_current=cur.size)
    statistic, p_value = _ks(ref, cur)
    rejected = p_value < alpha
    guard = "min_n" if rejected and min(ref.size, cur.size) < min_n else None
    details = {
        "min_n": min_n,
        "guard": guard,
        "reference_median": float(np.median(ref)),
        "current_median": float(np.median(cur)),
        "reference_mean": float(ref.mean()),
        "current_mean": float(cur.mean()),
    }
    return TestResult(
        test, statistic, p_value, alpha, rejected, rejected and guard is None, ref.size, cur.size, details
    )


def softmax_ks(
    reference_probs: FloatArray,
    current_probs: FloatArray,
    *,
    alpha: float = 0.05,
    min_n: int = 50,
    labels: Sequence[str] | None = None,
) -> TestResult:
    """Black-box shift detection: a KS test per softmax column, Bonferroni-corrected over the columns.

    Rabanser, Guennemann & Lipton (2019), "Failing loudly": univariate KS tests on the classifier's
    softmax outputs with a Bonferroni correction detect covariate and label shift about as well as
    multivariate tests on the representation. `p_value` is the smallest raw column p-value and `threshold`
    is alpha / columns, so `rejected` means "min p < alpha / columns". With two classes the columns are
    mirror images (p and 1 - p give the same KS statistic), so only one is tested and nothing is halved.
    """
    ref, cur = _probs_2d(reference_probs, "reference_probs"), _probs_2d(current_probs, "current_probs")
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(f"reference has {ref.shape[1]} classes but current has {cur.shape[1]}")
    names = list(labels) if labels is not None else [str(i) for i in range(ref.shape[1])]
    if len(names) != ref.shape[1]:
        raise ValueError(f"{len(names)} labels given for {ref.shape[1]} softmax columns")
    columns = 1 if ref.shape[1] == 2 else ref.shape[1]
    threshold = alpha / columns
    if ref.shape[0] == 0 or cur.shape[0] == 0:
        reason = "empty_reference" if ref.shape[0] == 0 else "empty_current"
        return _not_tested(
            "softmax_ks", reason=reason, threshold=threshold, n_reference=ref.shape[0], n_current=cur.shape[0]
        )
    per_class = {}
    for j in range(columns):
        statistic, p_value = _ks(ref[:, j], cur[:, j])
        per_class[names[j]] = {"statistic": statistic, "p_value": p_value}
    worst = min(per_class, key=lambda name: per_class[name]["p_value"])
    p_min = per_class[worst]["p_value"]
    rejected = p_min < threshold
    guard = "min_n" if rejected and min(ref.shape[0], cur.shape[0]) < min_n else None
    details = {
        "per_class": per_class,
        "worst_class": worst,
        "columns_tested": columns,
        "bonferroni_p": min(1.0, p_min * columns),
        "min_n": min_n,
        "guard": guard,
    }
    statistic = per_class[worst]["statistic"]
    n_ref, n_cur = ref.shape[0], cur.shape[0]
    return TestResult(
        "softmax_ks", statistic, p_min, threshold, rejected, rejected and guard is None, n_ref, n_cur, details
    )


def _probs_2d(values: FloatArray, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValueError(f"{name} must be a 2-D array (texts x classes) with at least two classes")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds a NaN or infinite value")
    return array


# ---------------------------------------------------------------------------------------------------------
# Embedding drift: kernel two-sample test


def _points(values: FloatArray, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (texts x dimensions)")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds a NaN or infinite value")
    return array


def _sq_distances(a: FloatArray, b: FloatArray) -> FloatArray:
    # ||a||^2 + ||b||^2 - 2 a.b: one matrix product instead of an (n, m, d) difference tensor, updated in
    # place (a 3,000 x 3,000 matrix is 72 MB: every temporary costs time); clipped at 0 because rounding can
    # make the distance of a point to itself slightly negative.
    sq = a @ b.T
    sq *= -2.0
    sq += np.einsum("ij,ij->i", a, a)[:, None]
    sq += np.einsum("ij,ij->i", b, b)[None, :]
    np.maximum(sq, 0.0, out=sq)
    return sq


def median_bandwidth(pooled: FloatArray, *, rng: np.random.Generator | None = None) -> float:
    """Return the median pairwise Euclidean distance of the points (the "median heuristic" RBF bandwidth).

    Above MEDIAN_SUBSAMPLE points the median is taken over a random subsample: the median of ~500,000
    pairwise distances is already stable to a fraction of a percent. A zero median (mostly duplicated
    points) falls back to the mean distance, then to 1, so the kernel stays defined.
    """
    points = _points(pooled, "pooled")
    if points.shape[0] > MEDIAN_SUBSAMPLE:
        generator = rng if rng is not None else np.random.default_rng(0)
        points = points[generator.choice(points.shape[0], MEDIAN_SUBSAMPLE, replace=False)]
    distances = np.sqrt(_sq_distances(points, points)[np.triu_indices(points.shape[0], k=1)])
    if distances.size == 0:
        return 1.0
    median = float(np.median(distances))
    if median > 0:
        return median
    mean = float(distances.mean())
    return mean if mean > 0 else 1.0


def rbf_kernel(a: FloatArray, b: FloatArray, *, bandwidth: float) -> FloatArray:
    """Return exp(-||a_i - b_j||^2 / (2 * bandwidth^2)) for every pair of rows."""
    kernel = _sq_distances(a, b)
    kernel *= -1.0 / (2.0 * bandwidth * bandwidth)
    np.exp(kernel, out=kernel)
    return kernel


def mmd2_unbiased(kernel: FloatArray, m: int) -> float:
    """Return the unbiased MMD^2 from the pooled kernel matrix whose first `m` rows are the reference.

    Gretton et al. (2012), eq. 3: the within-sample means exclude the diagonal (k(x, x) terms), which is
    what makes the estimate unbiased, so it can be slightly negative when there is no shift.
    """
    n = kernel.shape[0] - m
    kxx, kyy, kxy = kernel[:m, :m], kernel[m:, m:], kernel[:m, m:]
    xx = (float(kxx.sum()) - float(np.trace(kxx))) / (m * (m - 1))
    yy = (float(kyy.sum()) - float(np.trace(kyy))) / (n * (n - 1))
    return float(xx + yy - 2.0 * float(kxy.mean()))


def permutation_memberships(rng: np.random.Generator, permutations: int, size: int, m: int) -> FloatArray:
    """Return a (permutations x size) 0/1 matrix: each row marks a uniformly random m-subset as "reference"."""
    # argsort of uniform noise gives one independent uniform permutation per row, all in one call.
    order = np.argsort(rng.random((permutations, size)), axis=1)
    membership = np.zeros((permutations, size))
    np.put_along_axis(membership, order[:, :m], 1.0, axis=1)
    return membership


def mmd2_for_memberships(kernel: FloatArray, membership: FloatArray) -> FloatArray:
    """Return the unbiased MMD^2 for every row of `membership` (1 = reference), all in one matrix product.

    With the diagonal zeroed (K0), a membership row z gives S_xx = z K0 z^T; with the row sums r = K0 1,
    S_xy = z.r - S_xx and S_yy = total - 2 z.r + S_xx. So one (B x N) @ (N x N) product yields every
    permutation's statistic: no Python loop over permutations and no per-permutation submatrix copies.
    """
    size = kernel.shape[0]
    m = round(float(membership[0].sum()))
    n = size - m
    k0 = kernel.copy()
    np.fill_diagonal(k0, 0.0)
    row_sums = k0.sum(axis=1)
    total = float(row_sums.sum())
    statistics = np.empty(membership.shape[0])
    chunk = max(1, 4_000_000 // size)  # bound the (chunk x N) product's memory at ~32 MB
    for start in range(0, membership.shape[0], chunk):
        z = membership[start : start + chunk]
        s_xx = np.einsum("bi,bi->b", z @ k0, z)
        z_r = z @ row_sums
        s_xy = z_r - s_xx
        s_yy = total - 2.0 * z_r + s_xx
        statistics[start : start + chunk] = s_xx / (m * (m - 1)) + s_yy / (n * (n - 1)) - 2.0 * s_xy / (m * n)
    return statistics


def mmd_test(
    reference: FloatArray,
    current: FloatArray,
    *,
    permutations: int = 500,
    alpha: float = 0.05,
    seed: int = 0,
    min_n: int = 50,
    max_n: int = 2000,
) -> TestResult:
    """Kernel two-sample test (MMD, RBF kernel, median-distance bandwidth) with a permutation p-value.

    p = (1 + #{permuted MMD^2 >= observed}) / (1 + B): counting the observed split as one of the
    permutations keeps the test exact (false-positive rate at most alpha) and p never 0 (Phipson & Smyth
    2010). Each side is subsampled (seeded) to at most `max_n` rows: the kernel matrix is (m + n)^2.
    Alerts need `min_n` rows on each side.
    """
    ref, cur = _points(reference, "reference"), _points(current, "current")
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(f"reference has {ref.shape[1]} dimensions but current has {cur.shape[1]}")
    if permutations < 1:
        raise ValueError("permutations must be at least 1")
    n_ref, n_cur = ref.shape[0], cur.shape[0]
    if min(n_ref, n_cur) < 2:
        reason = "too_few_rows"
        return _not_tested("embedding_mmd", reason=reason, threshold=alpha, n_reference=n_ref, n_current=n_cur)
    rng = np.random.default_rng(seed)
    if n_ref > max_n:
        ref = ref[rng.choice(n_ref, max_n, replace=False)]
    if n_cur > max_n:
        cur = cur[rng.choice(n_cur, max_n, replace=False)]
    pooled = np.vstack([ref, cur])
    bandwidth = median_bandwidth(pooled, rng=rng)
    kernel = rbf_kernel(pooled, pooled, bandwidth=bandwidth)
    m = ref.shape[0]
    observed = mmd2_unbiased(kernel, m)
    permuted = mmd2_for_memberships(kernel, permutation_memberships(rng, permutations, kernel.shape[0], m))
    # A relative tolerance so a permutation equal to the observed split (up to float rounding) counts as >=.
    exceed = int(np.sum(permuted >= observed - 1e-12 * max(1.0, abs(observed))))
    p_value = (1 + exceed) / (1 + permutations)
    rejected = p_value < alpha
    guard = "min_n" if rejected and min(n_ref, n_cur) < min_n else None
    details = {
        "bandwidth": bandwidth,
        "permutations": permutations,
        "permutation_mean": float(permuted.mean()),
        "permutation_q95": float(np.quantile(permuted, 0.95)),
        "rows_used": [int(m), int(cur.shape[0])],
        "subsampled": bool(n_ref > max_n or n_cur > max_n),
        "min_n": min_n,
        "guard": guard,
        "seed": seed,
    }
    alert = rejected and guard is None
    return TestResult("embedding_mmd", observed, p_value, alpha, rejected, alert, n_ref, n_cur, details)


# ---------------------------------------------------------------------------------------------------------
# Multiple testing and projection


def benjamini_hochberg(p_values: Sequence[float], *, alpha: float = 0.05) -> list[bool]:
    """Return, in input order, which hypotheses the Benjamini-Hochberg step-up procedure rejects.

    Sort the m p-values, find the largest rank k with p_(k) <= k * alpha / m, reject the k smallest.
    Controls the false discovery rate at alpha for independent or positively dependent tests (the
    per-language tests of one window share nothing but the reference, so that holds).
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("p_values must be a 1-D sequence")
    if p.size == 0:
        return []
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("p-values must lie in [0, 1]")
    order = np.argsort(p, kind="stable")
    below = p[order] <= alpha * np.arange(1, p.size + 1) / p.size
    rejected = np.zeros(p.size, dtype=bool)
    if below.any():
        k = int(np.nonzero(below)[0].max())
        rejected[order[: k + 1]] = True
    return [bool(r) for r in rejected]


def pca_fit(embeddings: FloatArray, *, dims: int = 32) -> tuple[FloatArray, FloatArray]:
    """Return (mean, components) of a PCA fitted on the reference embeddings; components is d x k.

    k = min(dims, d, rows): with fewer rows or dimensions than `dims` the projection is simply narrower
    (reference and current always share it). Signs are fixed (largest loading of each component positive)
    so refitting the same data gives the same stored projection.
    """
    x = _points(embeddings, "embeddings")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError("cannot fit a PCA on an empty embedding matrix")
    if dims < 1:
        raise ValueError("dims must be at least 1")
    mean = x.mean(axis=0)
    centred = x - mean
    k = min(dims, x.shape[1], x.shape[0])
    if x.shape[0] > x.shape[1]:
        # Eigenvectors of the d x d scatter matrix: one (d x n) @ (n x d) product and a small symmetric
        # eigensolver. The SVD of the n x d matrix gives the same subspace but took ~1.7 s for 1,000 x 384
        # on 2 busy cores, this ~0.05 s; in float64 the squared condition number costs nothing here (only
        # the leading, well-separated components are kept).
        eigenvalues, vectors = np.linalg.eigh(centred.T @ centred)
        components = vectors[:, np.argsort(eigenvalues)[::-1][:k]].copy()
    else:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        components = vt[:k].T.copy()
    signs = np.sign(components[np.argmax(np.abs(components), axis=0), np.arange(k)])
    signs[signs == 0] = 1.0
    return mean, components * signs


def pca_project(embeddings: FloatArray, mean: FloatArray, components: FloatArray) -> FloatArray:
    """Project embeddings (rows) onto the stored PCA components: (x - mean) @ components."""
    x = _points(embeddings, "embeddings")
    mean_array, comps = np.asarray(mean, dtype=np.float64), np.asarray(components, dtype=np.float64)
    if mean_array.shape != (x.shape[1],) or comps.ndim != 2 or comps.shape[0] != x.shape[1]:
        raise ValueError(
            f"embeddings have {x.shape[1]} dimensions but the PCA was fitted on {comps.shape[0]} "
            f"(mean of shape {mean_array.shape})"
        )
    return (x - mean_array) @ comps

"""Continuous drift tests: two-sample Kolmogorov-Smirnov on per-text descriptors and on softmax outputs.

``ks_test`` takes one descriptor (text length, unknown-token rate); ``softmax_ks`` tests every softmax
column of the classifier's outputs with a Bonferroni correction (black-box shift detection). The KS
statistic D is itself the effect size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

from monitoring.stats.drift.result import FloatArray, TestResult, not_tested


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
        return not_tested(test, reason=reason, threshold=alpha, n_reference=ref.size, n_current=cur.size)
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
        return not_tested(
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

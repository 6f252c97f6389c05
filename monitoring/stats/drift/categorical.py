"""Categorical drift tests (predicted labels, script mix, language mix): chi-square tests of homogeneity.

The reference is usually a model version's eval split, a *sample*, often a small one: the tests here
are two-sample contingency tests that count its sampling noise, never goodness-of-fit tests that take
its shares as the truth (see ``_contingency_chi2``). Sparse categories are pooled by Cochran's rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from monitoring.stats.drift.distances import js_distance, psi
from monitoring.stats.drift.result import FloatArray, TestResult, not_tested

# Cochran's rule: the chi-square approximation is trusted when every expected cell count is at least 5.
MIN_EXPECTED = 5.0
OTHER = "(other)"


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
        return not_tested("prediction", reason=reason, threshold=alpha, n_reference=n_ref, n_current=n_cur)
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
        return not_tested(test, reason=reason, threshold=alpha, n_reference=n_ref, n_current=n_cur)
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

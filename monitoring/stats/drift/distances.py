"""Distances between two category distributions: the population stability index and Jensen-Shannon.

Both take counts or shares per category (each side is normalised) in the same category order; they
are effect sizes, not tests, and the categorical tests report them next to their chi-square.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from monitoring.stats.drift.result import FloatArray


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

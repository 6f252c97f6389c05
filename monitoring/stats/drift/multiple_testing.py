"""Multiple-testing correction: the Benjamini-Hochberg step-up procedure over one run's p-values.

A drift run holds many tests (several per language); corrected together, a run without drift flags
something with probability at most alpha however many tests it holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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

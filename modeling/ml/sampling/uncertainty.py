"""Uncertainty scores of calibrated class probabilities, and the priority orders built from them.

Least confidence, margin and entropy score each pool row from its probabilities alone;
`uncertainty_order` sorts the pool most uncertain first with the package's deterministic tie-breaking
(primary score, then the secondary score, then the lower pool index: see the package docstring's table).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from modeling.ml.sampling.strategies import UNCERTAINTY_STRATEGIES, FloatArray, IntArray


def least_confidence(probs: npt.ArrayLike) -> FloatArray:
    """Return 1 - max class probability per row (0 when the model is certain)."""
    p = np.asarray(probs, dtype=np.float64)
    result: FloatArray = 1.0 - p.max(axis=1)
    return result


def margin(probs: npt.ArrayLike) -> FloatArray:
    """Return top1 - top2 probability per row; 1.0 for a single-class model (nothing competes)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.shape[1] < 2:
        return np.ones(p.shape[0], dtype=np.float64)
    top = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
    result: FloatArray = top[:, 1] - top[:, 0]
    return result


def entropy(probs: npt.ArrayLike) -> FloatArray:
    """Return the Shannon entropy in nats per row, taking 0 log 0 as 0."""
    p = np.asarray(probs, dtype=np.float64)
    # Clip only inside the log, so an exact zero contributes 0 * finite = 0.
    result: FloatArray = -(p * np.log(np.clip(p, 1e-300, None))).sum(axis=1)
    return result


def uncertainty_scores(probs: npt.ArrayLike, strategy: str) -> FloatArray:
    """Return the per-row priority of an uncertainty strategy: higher means label sooner."""
    if strategy == "least_confidence":
        return least_confidence(probs)
    if strategy == "margin":
        return 1.0 - margin(probs)
    if strategy == "entropy":
        return entropy(probs)
    raise ValueError(f"{strategy!r} is not an uncertainty strategy; use one of {sorted(UNCERTAINTY_STRATEGIES)}")


def uncertainty_order(probs: npt.ArrayLike, strategy: str) -> IntArray:
    """Return every row index, most uncertain first, with the module's deterministic tie-breaking."""
    primary = uncertainty_scores(probs, strategy)
    secondary = 1.0 - margin(probs) if strategy == "entropy" else entropy(probs)
    index = np.arange(primary.size)
    # lexsort sorts by the last key first; negate to put higher priority first.
    return np.lexsort((index, -secondary, -primary)).astype(np.int64)

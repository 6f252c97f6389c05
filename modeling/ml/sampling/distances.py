"""Euclidean distances on float32 embeddings, and k-center greedy (the kcenter strategy and the coverage phase).

Distances to one centre are one mat-vec; distances to many seeds (already-labeled items, k-means
centres) are computed block by block, each block at most DISTANCE_BLOCK_CELLS (rows x seeds) cells, so a
100k-item pool never needs a full distance matrix. `k_center_greedy` picks farthest-first from those
distances (Sener & Savarese 2018); `eligible_mask` is the pickers' shared check of an eligibility mask.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from modeling.ml.sampling.strategies import BoolArray, Float32Array, FloatArray, IntArray

# Cells of one temporary (rows x seeds) distance block: 4M float32 = 16 MB.
DISTANCE_BLOCK_CELLS = 4_000_000


def squared_distances(points: Float32Array, sq_norms: Float32Array, centre: Float32Array) -> Float32Array:
    """Return the squared Euclidean distance of every row of `points` to `centre` (clipped at 0)."""
    d = sq_norms - 2.0 * (points @ centre) + np.float32(centre @ centre)
    result: Float32Array = np.maximum(d, 0.0).astype(np.float32, copy=False)
    return result


def nearest_squared_distances(points: Float32Array, seeds: Float32Array) -> Float32Array:
    """Return each row's squared distance to its nearest seed row, block by block to bound memory."""
    return nearest_seeds(points, seeds)[1]


def nearest_seeds(points: Float32Array, seeds: Float32Array) -> tuple[IntArray, Float32Array]:
    """Return each row's nearest seed (lowest index on ties) and squared distance to it, block by block."""
    sq = np.einsum("ij,ij->i", points, points)
    seed_sq = np.einsum("ij,ij->i", seeds, seeds)
    which = np.empty(points.shape[0], dtype=np.int64)
    nearest = np.empty(points.shape[0], dtype=np.float32)
    rows = max(1, DISTANCE_BLOCK_CELLS // max(1, seeds.shape[0]))
    for start in range(0, points.shape[0], rows):
        block = slice(start, start + rows)
        d = sq[block, None] - 2.0 * (points[block] @ seeds.T) + seed_sq[None, :]
        which[block] = d.argmin(axis=1)
        nearest[block] = np.maximum(d[np.arange(d.shape[0]), which[block]], 0.0)
    return which, nearest


def k_center_greedy(
    points: npt.ArrayLike,
    k: int,
    *,
    seeds: npt.ArrayLike | None = None,
    eligible: npt.ArrayLike | None = None,
) -> tuple[IntArray, FloatArray]:
    """Return up to `k` row indices picked farthest-first, and each pick's distance to its nearest centre.

    The greedy 2-approximation of k-center (Sener & Savarese 2018, core-set): each pick is the eligible
    row farthest from every seed and every earlier pick. Without seeds the first pick is the row farthest
    from the mean of the eligible rows, so the result is deterministic.
    """
    x = np.ascontiguousarray(points, dtype=np.float32)
    allowed = eligible_mask(eligible, x.shape[0])
    k = min(k, int(allowed.sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    sq = np.einsum("ij,ij->i", x, x)
    seed_rows = None if seeds is None else np.asarray(seeds, dtype=np.float32).reshape(-1, x.shape[1])
    picks, scores = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.float64)
    if seed_rows is not None and seed_rows.shape[0] > 0:
        nearest, start = nearest_squared_distances(x, seed_rows), 0
    else:
        from_mean = np.where(allowed, squared_distances(x, sq, x[allowed].mean(axis=0)), -np.inf)
        picks[0] = int(np.argmax(from_mean))
        scores[0] = math.sqrt(float(from_mean[picks[0]]))
        nearest, start = squared_distances(x, sq, x[picks[0]]), 1
    # A picked or ineligible row is never the farthest: -inf survives every np.minimum update.
    nearest[~allowed] = -np.inf
    nearest[picks[:start]] = -np.inf
    for step in range(start, k):
        pick = int(np.argmax(nearest))
        picks[step], scores[step] = pick, math.sqrt(max(float(nearest[pick]), 0.0))
        np.minimum(nearest, squared_distances(x, sq, x[pick]), out=nearest)
        nearest[pick] = -np.inf
    return picks, scores


def eligible_mask(eligible: npt.ArrayLike | None, n: int) -> BoolArray:
    """Return a fresh boolean mask of the rows a picker may choose (all rows when None)."""
    if eligible is None:
        return np.ones(n, dtype=np.bool_)
    mask = np.array(eligible, dtype=np.bool_, copy=True)
    if mask.shape != (n,):
        raise ValueError(f"eligible mask has shape {mask.shape}, expected ({n},)")
    return mask

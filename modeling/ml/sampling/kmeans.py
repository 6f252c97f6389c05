"""k-means++ pickers: weighted k-means representatives (margin + diversity) and BADGE's gradient seeding.

`weighted_kmeans_representatives` is the selection step of diverse mini-batch active learning (Zhdanov
2019): weighted k-means++ seeding, Lloyd's iterations bounded by KMEANS_MAX_ITERATIONS and
KMEANS_CELL_BUDGET, then the row nearest each centre. `badge_kmeanspp` is BADGE (Ash et al. 2020):
k-means++ seeding on gradient embeddings whose distances are computed from their two factors, never
materialised. Both draw rows in proportion to a weight with `_draw_proportional`.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from modeling.ml.sampling.distances import eligible_mask, nearest_seeds, squared_distances
from modeling.ml.sampling.strategies import BoolArray, Float32Array, FloatArray, IntArray

# Lloyd's iterations for margin + diversity stop when no candidate changes cluster, after at most this many,
# or earlier once (candidates x clusters x iterations) would pass KMEANS_CELL_BUDGET: a 2,000-item batch
# (20,000 candidates) gets its 50 in seconds, a 10,000-item one (100,000 candidates) 1 refinement of its
# k-means++ seeding instead of many minutes of them.
KMEANS_MAX_ITERATIONS = 50
KMEANS_CELL_BUDGET = 500_000_000
# Floor of a k-means weight: a candidate the model is certain of (margin 1) still counts, barely, so a
# cluster's weighted mean is always defined and k-means++ seeding still spreads over such candidates.
KMEANS_MIN_WEIGHT = 1e-6


def weighted_kmeans_representatives(
    points: npt.ArrayLike, weights: npt.ArrayLike, k: int, *, rng: np.random.Generator
) -> IntArray:
    """Return up to `k` distinct rows: the row nearest each centre of a weighted k-means clustering.

    The selection step of diverse mini-batch active learning (Zhdanov 2019). Seeding is weighted k-means++
    (Arthur & Vassilvitskii 2007): the first centre is drawn with probability proportional to weight, each
    next one proportional to weight x squared distance to the nearest centre. Lloyd's iterations then move
    each centre to its cluster's weighted mean until no row changes cluster (see KMEANS_MAX_ITERATIONS); a
    cluster left empty keeps its centre. Centres in turn claim their nearest unclaimed row (lowest index on
    ties), so duplicate rows still give `k` distinct picks, returned in centre order.
    """
    x = np.ascontiguousarray(points, dtype=np.float32)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (x.shape[0],) or (w.size and (not np.isfinite(w).all() or w.min() < 0)):
        raise ValueError(f"weights must be {x.shape[0]} finite non-negative numbers, got shape {w.shape}")
    k = min(k, x.shape[0])
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    w = np.maximum(w, KMEANS_MIN_WEIGHT)
    centres = _lloyd(x, w, _kmeanspp_seeds(x, w, k, rng))
    return _claim_nearest(x, centres)


def _kmeanspp_seeds(x: Float32Array, w: FloatArray, k: int, rng: np.random.Generator) -> Float32Array:
    """Return `k` rows of `x` drawn by weighted k-means++ seeding, as the initial centres."""
    sq = np.einsum("ij,ij->i", x, x)
    allowed = np.ones(x.shape[0], dtype=np.bool_)
    picks = np.zeros(k, dtype=np.int64)
    # Before the first centre every row weighs its own weight: the draw is proportional to w.
    nearest = np.ones(x.shape[0], dtype=np.float32)
    for step in range(k):
        picks[step] = _draw_proportional((nearest * w).astype(np.float32), allowed, rng)
        allowed[picks[step]] = False
        fresh = squared_distances(x, sq, x[picks[step]])
        nearest = fresh if step == 0 else np.minimum(nearest, fresh)
    seeds: Float32Array = x[picks].copy()
    return seeds


def _lloyd(x: Float32Array, w: FloatArray, centres: Float32Array) -> Float32Array:
    """Return the centres after weighted Lloyd iterations from `centres` (see KMEANS_MAX_ITERATIONS)."""
    k = centres.shape[0]
    budget = KMEANS_CELL_BUDGET // max(1, x.shape[0] * k)
    assignment = np.full(x.shape[0], -1, dtype=np.int64)
    for _ in range(max(1, min(KMEANS_MAX_ITERATIONS, budget))):
        fresh = nearest_seeds(x, centres)[0]
        if np.array_equal(fresh, assignment):
            break
        assignment = fresh
        mass = np.bincount(assignment, weights=w, minlength=k)
        sums = np.zeros((k, x.shape[1]), dtype=np.float64)
        np.add.at(sums, assignment, w[:, None] * x)
        filled = mass > 0
        centres[filled] = (sums[filled] / mass[filled, None]).astype(np.float32)
    return centres


def _claim_nearest(x: Float32Array, centres: Float32Array) -> IntArray:
    """Return, centre by centre, the nearest row no earlier centre claimed (lowest index on ties)."""
    sq = np.einsum("ij,ij->i", x, x)
    claimed = np.zeros(x.shape[0], dtype=np.bool_)
    picks = np.zeros(centres.shape[0], dtype=np.int64)
    for j, centre in enumerate(centres):
        d = np.where(claimed, np.inf, squared_distances(x, sq, centre))
        picks[j] = int(np.argmin(d))
        claimed[picks[j]] = True
    return picks


def badge_kmeanspp(
    probs: npt.ArrayLike,
    embeddings: npt.ArrayLike,
    k: int,
    *,
    rng: np.random.Generator,
    eligible: npt.ArrayLike | None = None,
    chosen: npt.ArrayLike | None = None,
) -> tuple[IntArray, FloatArray]:
    """Return up to `k` rows picked by k-means++ seeding on BADGE gradient embeddings, with pick distances.

    BADGE (Ash et al. 2020) embeds item i as g_i = (p_i - e_yhat_i) (x) x_i: the gradient of the loss of a
    linear head at the predicted label, so its length grows with uncertainty and its direction with the
    content. The (k*d)-wide g_i are never built: <g_i, g_j> = <a_i, a_j> <x_i, x_j> with a = p - e_yhat,
    so a distance to one centre costs one (n, k) and one (n, d) mat-vec. The first pick is the longest g_i
    (as in the paper's code) unless `chosen` rows already act as centres; later picks are drawn with
    probability proportional to the squared distance to the nearest centre.
    """
    p = np.asarray(probs, dtype=np.float32)
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    allowed = eligible_mask(eligible, x.shape[0])
    k = min(k, int(allowed.sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    a = p.copy()
    a[np.arange(a.shape[0]), p.argmax(axis=1)] -= 1.0
    gram = _GradientGeometry(a, x)
    prior = np.zeros(0, dtype=np.int64) if chosen is None else np.asarray(chosen, dtype=np.int64)
    nearest = gram.nearest_to(prior)
    picks, scores = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.float64)
    for step in range(k):
        if step == 0 and prior.size == 0:
            pick = int(np.argmax(np.where(allowed, gram.sq, -np.inf)))
        else:
            pick = _draw_proportional(nearest, allowed, rng)
        # With no centre yet, the first pick's distance is to the origin: its gradient length.
        distance = nearest[pick] if np.isfinite(nearest[pick]) else gram.sq[pick]
        picks[step], scores[step] = pick, math.sqrt(max(float(distance), 0.0))
        np.minimum(nearest, gram.squared_distances(pick), out=nearest)
        allowed[pick] = False
    return picks, scores


class _GradientGeometry:
    """Distances between BADGE gradient embeddings g_i = a_i (x) x_i, computed from the factors alone."""

    def __init__(self, a: Float32Array, x: Float32Array) -> None:
        self.a, self.x = a, x
        # |g_i|^2 = |a_i|^2 |x_i|^2
        self.sq: Float32Array = np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", x, x)

    def squared_distances(self, j: int) -> Float32Array:
        """Return |g_i - g_j|^2 for every row i."""
        d = self.sq + self.sq[j] - 2.0 * (self.a @ self.a[j]) * (self.x @ self.x[j])
        result: Float32Array = np.maximum(d, 0.0).astype(np.float32, copy=False)
        return result

    def nearest_to(self, centres: IntArray) -> Float32Array:
        """Return each row's squared distance to its nearest centre (+inf with no centres)."""
        nearest = np.full(self.sq.shape[0], np.inf, dtype=np.float32)
        for centre in centres:
            np.minimum(nearest, self.squared_distances(int(centre)), out=nearest)
        return nearest


def _draw_proportional(weights: Float32Array, allowed: BoolArray, rng: np.random.Generator) -> int:
    """Draw an allowed row with probability proportional to its weight (uniformly if all weights are 0)."""
    w = np.where(allowed, weights, 0.0).astype(np.float64)
    if float(w.sum()) <= 0.0:
        w = allowed.astype(np.float64)
    cumulative = np.cumsum(w)
    # u in [0, total): the first row whose cumulative weight exceeds u has a positive weight; the clip
    # guards the rounding case u * total == total.
    pick = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    return min(pick, int(np.flatnonzero(w)[-1]))

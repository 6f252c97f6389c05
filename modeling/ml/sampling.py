"""Choose the next batch to label: uncertainty, diversity and random-audit picks over calibrated outputs.

Pure NumPy: the pool is given as calibrated probabilities (n, k) and, for the diversity strategies, the
stored embeddings (n, d). `select_batch` is the one entry point; the scoring and picking functions it
composes are public so a notebook or a benchmark can use them on their own.

Uncertainty orders (most uncertain first; a tie on the primary score goes to the secondary, then to the
lower pool index, so a batch never depends on sort stability or platform):

============== ============================== ===============================
strategy        primary                        secondary
============== ============================== ===============================
least_conf.     1 - max p, descending          entropy, descending
margin          top1 - top2, ascending         entropy, descending
entropy         entropy (nats), descending     top1 - top2, ascending
============== ============================== ===============================

A margin tie goes to the higher entropy: with the same gap between the top two classes, the item whose
remaining mass is spread over more classes is the one the model is less sure about overall.

The default, margin + diversity, is diverse mini-batch active learning (Zhdanov 2019): take the
CANDIDATE_FACTOR x batch items with the smallest margin, cluster them into as many clusters as picks with
k-means weighted by uncertainty, and label the item nearest each centre. Clustering takes representatives
of the uncertain region's distinct parts; k-center greedy inside the same candidates (the first version of
this default) takes its outliers instead, and on the oracle benchmark it learned slower than plain margin.

That holds once the model is fair; with few labels per class its uncertainty is poor and covering the
space pays more than sampling its dense parts ("cold start": Hacohen et al. 2022 show opposite strategies
suit low and high budgets; Doucet et al. 2023, TCM, start with a coverage strategy and switch to an
uncertainty one). So while fewer than LOW_BUDGET_LABELS_PER_CLASS x classes items are labeled (known only
when `labeled_embeddings` are given), margin + diversity picks the same candidates' k-center cover seeded
with the labeled items (Sener & Savarese 2018): the uncertain items farthest from everything labeled.

Diversity works in Euclidean geometry on the embeddings as given (pass L2-normalised rows for cosine).
Distances are float32 and updated one centre at a time (a mat-vec per pick), so a 100k x 384 pool
costs milliseconds per pick; seeding from already-labeled embeddings and k-means assignments need
block-wise (rows x centres) products, bounded by DISTANCE_BLOCK_CELLS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

Strategy = Literal["random", "least_confidence", "margin", "entropy", "kcenter", "badge", "margin_diversity"]
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
UNCERTAINTY_STRATEGIES: frozenset[str] = frozenset({"least_confidence", "margin", "entropy"})
DIVERSITY_STRATEGIES: frozenset[str] = frozenset({"kcenter", "badge", "margin_diversity"})
# Strategies whose batch keeps its pick order; the others are ordered by score (uncertainty).
PICK_ORDERED_STRATEGIES: frozenset[str] = frozenset({"kcenter", "badge"})
DEFAULT_STRATEGY: Strategy = "margin_diversity"
# margin + diversity: weighted k-means runs inside the CANDIDATE_FACTOR x batch most uncertain by margin
# (Zhdanov 2019's prefilter factor beta). 10 is the value this default always had, kept rather than tuned.
CANDIDATE_FACTOR = 10
# margin + diversity covers (k-center) instead of clustering while labels < this x classes: the low-budget
# regime. 40 comes from the oracle benchmark (benchmarks/active_learning.py: 20 and 40 measured, 40 kept);
# it is a per-class count so a 3-class project leaves the regime at 120 labels and a 13-class one at 520.
LOW_BUDGET_LABELS_PER_CLASS = 40
# Lloyd's iterations for margin + diversity stop when no candidate changes cluster, after at most this many,
# or earlier once (candidates x clusters x iterations) would pass KMEANS_CELL_BUDGET: a 2,000-item batch
# (20,000 candidates) gets its 50 in seconds, a 10,000-item one (100,000 candidates) 1 refinement of its
# k-means++ seeding instead of many minutes of them.
KMEANS_MAX_ITERATIONS = 50
KMEANS_CELL_BUDGET = 500_000_000
# Floor of a k-means weight: a candidate the model is certain of (margin 1) still counts, barely, so a
# cluster's weighted mean is always defined and k-means++ seeding still spreads over such candidates.
KMEANS_MIN_WEIGHT = 1e-6
DEFAULT_RANDOM_FRACTION = 0.05
# Cells of one temporary (rows x seeds) distance block: 4M float32 = 16 MB.
DISTANCE_BLOCK_CELLS = 4_000_000
# Rows of `probs` must sum to 1 within this: catches logits passed where probabilities belong.
PROBABILITY_TOLERANCE = 1e-3

# (pool subset it may pick from, how many, pool items already in the batch) -> (picks, scores).
Picker = Callable[[BoolArray, int, IntArray], tuple[IntArray, FloatArray]]


@dataclass(frozen=True)
class Selection:
    """One batch in priority order (label `indices[0]` first).

    `scores[i]` says why `indices[i]` was picked: its uncertainty under an uncertainty strategy or margin +
    diversity (1 - margin for both margin strategies), its distance to the nearest centre when picked by
    kcenter or badge, and 0.0 for a random pick. Picks scored by uncertainty are ordered by score (ties
    keep the margin order); kcenter and badge picks keep their pick order (each pick is the one that adds
    most to those before it), with the picks that top up language quotas first.
    `is_random[i]` marks picks drawn uniformly from the whole pool, independently of the model: the
    random-audit share, usable as an unbiased sample.
    """

    indices: IntArray
    scores: FloatArray
    is_random: BoolArray
    strategy: Strategy

    def __len__(self) -> int:
        """Return the number of picks."""
        return int(self.indices.size)


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


def squared_distances(points: Float32Array, sq_norms: Float32Array, centre: Float32Array) -> Float32Array:
    """Return the squared Euclidean distance of every row of `points` to `centre` (clipped at 0)."""
    d = sq_norms - 2.0 * (points @ centre) + np.float32(centre @ centre)
    result: Float32Array = np.maximum(d, 0.0).astype(np.float32, copy=False)
    return result


def nearest_squared_distances(points: Float32Array, seeds: Float32Array) -> Float32Array:
    """Return each row's squared distance to its nearest seed row, block by block to bound memory."""
    return _nearest_seeds(points, seeds)[1]


def _nearest_seeds(points: Float32Array, seeds: Float32Array) -> tuple[IntArray, Float32Array]:
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
    allowed = _eligible_mask(eligible, x.shape[0])
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
        fresh = _nearest_seeds(x, centres)[0]
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
    allowed = _eligible_mask(eligible, x.shape[0])
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


def _eligible_mask(eligible: npt.ArrayLike | None, n: int) -> BoolArray:
    """Return a fresh boolean mask of the rows a picker may choose (all rows when None)."""
    if eligible is None:
        return np.ones(n, dtype=np.bool_)
    mask = np.array(eligible, dtype=np.bool_, copy=True)
    if mask.shape != (n,):
        raise ValueError(f"eligible mask has shape {mask.shape}, expected ({n},)")
    return mask


def audit_count(random_fraction: float, batch_size: int) -> int:
    """Return how many picks of a batch are random-audit picks: fraction x batch, rounded half up."""
    return min(batch_size, math.floor(random_fraction * batch_size + 0.5))


def select_batch(
    probs: npt.ArrayLike,
    embeddings: npt.ArrayLike | None = None,
    *,
    strategy: Strategy = DEFAULT_STRATEGY,
    batch_size: int,
    languages: Sequence[str] | None = None,
    quotas: Mapping[str, float | int] | None = None,
    random_fraction: float = DEFAULT_RANDOM_FRACTION,
    labeled_embeddings: npt.ArrayLike | None = None,
    seed: int = 0,
    candidate_factor: int = CANDIDATE_FACTOR,
) -> Selection:
    """Return the next `batch_size` pool items to label, in priority order.

    `probs` are calibrated class probabilities (rows sum to 1). Diversity strategies need `embeddings`.
    First `audit_count(random_fraction, batch)` items are drawn uniformly from the whole pool (flagged
    `is_random`, spread evenly through the order); with strategy "random" and no quotas every pick is one.
    Then `quotas` (language -> share of the batch as a float, or a minimum count as an int) are topped
    up by running the strategy inside each short language, and the strategy fills the rest. A quota is
    capped at what the pool holds; quotas that add up to more than the batch are scaled down to fit.
    `labeled_embeddings` seed kcenter so the batch avoids what is labeled; margin_diversity covers its
    candidates from them while they number fewer than LOW_BUDGET_LABELS_PER_CLASS x classes, then (and
    without them) clusters the candidates alone as Zhdanov 2019 does; badge measures uncertainty and
    ignores them.
    A pool smaller than the batch gives the whole pool. Same inputs and `seed`, same Selection.
    """
    p = _checked_probs(probs)
    n = p.shape[0]
    x = _checked_embeddings(embeddings, n, strategy)
    _check_arguments(batch_size, random_fraction, candidate_factor)
    rng = np.random.default_rng(seed)
    size = min(batch_size, n)
    audit_size = size if strategy == "random" and not quotas else audit_count(random_fraction, size)
    audit = rng.choice(n, size=audit_size, replace=False).astype(np.int64)
    picker = _picker(strategy, p, x, labeled_embeddings, rng, candidate_factor)
    model_picks, model_scores = _model_picks(
        picker, n, size - audit_size, audit, languages, quotas, by_score=strategy not in PICK_ORDERED_STRATEGIES
    )
    return _interleave(audit, model_picks, model_scores, strategy)


def _model_picks(
    picker: Picker,
    n: int,
    size: int,
    audit: IntArray,
    languages: Sequence[str] | None,
    quotas: Mapping[str, float | int] | None,
    *,
    by_score: bool,
) -> tuple[IntArray, FloatArray]:
    """Run the strategy for each language short of its quota, then for the rest.

    Picks come back best score first when `by_score`, else in pick order (quota languages first).
    """
    available = np.ones(n, dtype=np.bool_)
    available[audit] = False
    chosen, scores, remaining = [audit], [], size
    for mask, need in _quota_needs(quotas, languages, n, size + audit.size, audit):
        picks, picked_scores = picker(available & mask, min(need, remaining), _cat(chosen))
        available[picks] = False
        chosen.append(picks)
        scores.append(picked_scores)
        remaining -= picks.size
    picks, picked_scores = picker(available, remaining, _cat(chosen))
    indices = _cat([*chosen[1:], picks])
    values = np.concatenate([*scores, picked_scores])
    if not by_score:
        return indices, values
    order = np.argsort(-values, kind="stable")
    return indices[order], values[order]


def _count(parts: list[IntArray]) -> int:
    """Return the total length of a list of index arrays."""
    return sum(int(part.size) for part in parts)


def _cat(parts: list[IntArray]) -> IntArray:
    """Concatenate index arrays (an empty int64 array for none)."""
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def _quota_needs(
    quotas: Mapping[str, float | int] | None,
    languages: Sequence[str] | None,
    n: int,
    size: int,
    audit: IntArray,
) -> list[tuple[BoolArray, int]]:
    """Return (language mask, picks still needed) for each language whose quota the audit picks miss."""
    if not quotas:
        return []
    if languages is None or len(languages) != n:
        raise ValueError(f"quotas need one language per pool item; got {None if languages is None else len(languages)}")
    langs = np.asarray(languages, dtype=object)
    names = sorted(quotas)
    masks = [langs == name for name in names]
    wanted = [
        min(_quota_minimum(name, quotas[name], size), int(mask.sum())) for name, mask in zip(names, masks, strict=True)
    ]
    wanted = _fit(wanted, size)
    needs = [(mask, want - int(mask[audit].sum())) for mask, want in zip(masks, wanted, strict=True)]
    return [(mask, need) for mask, need in needs if need > 0]


def _quota_minimum(name: str, quota: float | int, size: int) -> int:
    """Return the minimum count a quota asks for in a batch of `size`: ceil(share x size) or the count."""
    if isinstance(quota, bool) or not isinstance(quota, int | float):
        raise ValueError(f"quota for {name!r} must be a share (float) or a count (int), got {quota!r}")
    if isinstance(quota, int):
        if quota < 0:
            raise ValueError(f"quota count for {name!r} must be >= 0, got {quota}")
        return quota
    if not 0.0 <= quota <= 1.0:
        raise ValueError(f"quota share for {name!r} must be in [0, 1], got {quota}")
    return math.ceil(quota * size - 1e-9)


def _fit(wanted: list[int], size: int) -> list[int]:
    """Scale minimum counts down to sum to at most `size` (largest remainder, lower position on ties)."""
    total = sum(wanted)
    if total <= size:
        return wanted
    exact = [w * size / total for w in wanted]
    fitted = [math.floor(e) for e in exact]
    by_remainder = sorted(range(len(wanted)), key=lambda i: (-(exact[i] - fitted[i]), i))
    for i in by_remainder[: size - sum(fitted)]:
        fitted[i] += 1
    return fitted


def _picker(
    strategy: Strategy,
    probs: FloatArray,
    x: Float32Array | None,
    labeled: npt.ArrayLike | None,
    rng: np.random.Generator,
    candidate_factor: int,
) -> Picker:
    """Return the strategy as a function (eligible mask, k, pool items already chosen) -> (picks, scores)."""
    if strategy == "random":
        return lambda allowed, k, _chosen: _random_picks(allowed, k, rng)
    if strategy in UNCERTAINTY_STRATEGIES:
        order, scores = uncertainty_order(probs, strategy), uncertainty_scores(probs, strategy)
        return lambda allowed, k, _chosen: _ranked_picks(order, scores, allowed, k)
    if x is None:
        raise ValueError(f"strategy {strategy!r} needs the pool's embeddings")
    if strategy == "badge":
        return lambda allowed, k, chosen: badge_kmeanspp(probs, x, k, rng=rng, eligible=allowed, chosen=chosen)
    seeds = None if labeled is None else np.asarray(labeled, dtype=np.float32).reshape(-1, x.shape[1])
    if strategy == "kcenter":
        return lambda allowed, k, chosen: k_center_greedy(x, k, seeds=_seeds(seeds, x, chosen), eligible=allowed)
    margin_order, uncertainty = uncertainty_order(probs, "margin"), uncertainty_scores(probs, "margin")
    if seeds is not None and is_low_budget(seeds.shape[0], probs.shape[1]):
        return lambda allowed, k, chosen: _margin_coverage(
            x, margin_order, uncertainty, allowed, k, seeds=_seeds(seeds, x, chosen), factor=candidate_factor
        )
    return lambda allowed, k, _chosen: _margin_diversity(
        x, margin_order, uncertainty, allowed, k, rng=rng, factor=candidate_factor
    )


def is_low_budget(labeled: int, classes: int) -> bool:
    """Return whether `labeled` items are too few for `classes` classes to trust uncertainty alone."""
    return labeled < LOW_BUDGET_LABELS_PER_CLASS * classes


def _random_picks(allowed: BoolArray, k: int, rng: np.random.Generator) -> tuple[IntArray, FloatArray]:
    """Return `k` allowed rows drawn uniformly without replacement, each scored 0."""
    rows = np.flatnonzero(allowed)
    k = min(k, rows.size)
    return rng.choice(rows, size=k, replace=False).astype(np.int64), np.zeros(k)


def _ranked_picks(order: IntArray, scores: FloatArray, allowed: BoolArray, k: int) -> tuple[IntArray, FloatArray]:
    """Return the first `k` allowed rows of a priority order, with their scores."""
    picks = order[allowed[order]][: max(k, 0)]
    return picks, scores[picks]


def _seeds(labeled: Float32Array | None, x: Float32Array, chosen: IntArray) -> Float32Array | None:
    """Return labeled embeddings plus the embeddings of pool items already in the batch (None if neither)."""
    parts = [part for part in (labeled, x[chosen]) if part is not None and part.shape[0] > 0]
    return np.concatenate(parts) if parts else None


def _margin_diversity(
    x: Float32Array,
    order: IntArray,
    uncertainty: FloatArray,
    allowed: BoolArray,
    k: int,
    *,
    rng: np.random.Generator,
    factor: int,
) -> tuple[IntArray, FloatArray]:
    """Return one representative per weighted k-means cluster of the `factor` x k allowed rows of least margin.

    Zhdanov 2019: prefilter by informativeness, cluster with informativeness as weights (here 1 - margin),
    take the row nearest each centre. Picks come back most uncertain first, scored by 1 - margin.
    """
    candidates = order[allowed[order]][: factor * max(k, 0)]
    picks = weighted_kmeans_representatives(x[candidates], uncertainty[candidates], k, rng=rng)
    # Candidates are in margin order (with its tie-breaking): sorting positions sorts by uncertainty.
    positions = np.sort(picks)
    return candidates[positions], uncertainty[candidates[positions]]


def _margin_coverage(
    x: Float32Array,
    order: IntArray,
    uncertainty: FloatArray,
    allowed: BoolArray,
    k: int,
    *,
    seeds: Float32Array | None,
    factor: int,
) -> tuple[IntArray, FloatArray]:
    """Return the k-center cover, seeded with `seeds`, of the `factor` x k allowed rows of least margin.

    The low-budget phase of margin + diversity: each pick is the candidate farthest from every seed and
    earlier pick (k_center_greedy on the candidates alone, so its cost is bounded by their number). Picks
    come back most uncertain first, scored by 1 - margin.
    """
    candidates = order[allowed[order]][: factor * max(k, 0)]
    picks, _ = k_center_greedy(x[candidates], k, seeds=seeds)
    positions = np.sort(picks)
    return candidates[positions], uncertainty[candidates[positions]]


def _interleave(audit: IntArray, picks: IntArray, scores: FloatArray, strategy: Strategy) -> Selection:
    """Merge audit picks into the model's order at evenly spaced positions."""
    size = audit.size + picks.size
    is_random = np.zeros(size, dtype=np.bool_)
    if audit.size:
        # Spread, not appended: a reviewer who stops half-way has still labeled about half the audit.
        is_random[((np.arange(audit.size) + 0.5) * size / audit.size).astype(np.int64)] = True
    indices = np.zeros(size, dtype=np.int64)
    values = np.zeros(size, dtype=np.float64)
    indices[is_random], indices[~is_random] = audit, picks
    values[~is_random] = scores
    return Selection(indices=indices, scores=values, is_random=is_random, strategy=strategy)


def _checked_probs(probs: npt.ArrayLike) -> FloatArray:
    """Return probs as float64 (n, k), refusing anything that is not a probability matrix."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"probs must be a 2-D (items, classes) array, got shape {p.shape}")
    if p.size and (not np.isfinite(p).all() or p.min() < 0 or np.abs(p.sum(axis=1) - 1).max() > PROBABILITY_TOLERANCE):
        raise ValueError(
            "probs rows must be finite, non-negative and sum to 1 (pass calibrated probabilities, not logits)"
        )
    return p


def _checked_embeddings(embeddings: npt.ArrayLike | None, n: int, strategy: str) -> Float32Array | None:
    """Return embeddings as float32 (n, d), or None; diversity strategies require them."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {list(STRATEGIES)}")
    if embeddings is None:
        if strategy in DIVERSITY_STRATEGIES:
            raise ValueError(f"strategy {strategy!r} needs the pool's embeddings")
        return None
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != n:
        raise ValueError(f"embeddings must be ({n}, dim), got shape {x.shape}")
    return x


def _check_arguments(batch_size: int, random_fraction: float, candidate_factor: int) -> None:
    """Refuse a negative batch, a fraction outside [0, 1] or a candidate factor below 1."""
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0, got {batch_size}")
    if not 0.0 <= random_fraction <= 1.0:
        raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction}")
    if candidate_factor < 1:
        raise ValueError(f"candidate_factor must be >= 1, got {candidate_factor}")

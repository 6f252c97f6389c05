"""Batch assembly: `select_batch`, the one entry point, and what it adds around the strategies.

`select_batch` checks its arguments (probabilities that sum to 1, embeddings where a diversity strategy
needs them), draws the random-audit picks uniformly from the whole pool, turns the strategy into a
picker (eligible mask, k, items already chosen) -> (picks, scores), runs it inside each language short
of its quota and then for the rest, and spreads the audit picks evenly through the model's order in the
returned `Selection`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from modeling.ml.sampling.distances import k_center_greedy
from modeling.ml.sampling.kmeans import badge_kmeanspp
from modeling.ml.sampling.margin_diversity import (
    CANDIDATE_FACTOR,
    coverage_space,
    is_low_budget,
    margin_coverage_picks,
    margin_diversity_picks,
    pool_languages,
)
from modeling.ml.sampling.strategies import (
    DEFAULT_STRATEGY,
    DIVERSITY_STRATEGIES,
    PICK_ORDERED_STRATEGIES,
    STRATEGIES,
    UNCERTAINTY_STRATEGIES,
    BoolArray,
    Float32Array,
    FloatArray,
    IntArray,
    Strategy,
)
from modeling.ml.sampling.uncertainty import uncertainty_order, uncertainty_scores

DEFAULT_RANDOM_FRACTION = 0.05
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
    labeled_probs: npt.ArrayLike | None = None,
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
    candidates from them while they number fewer than LOW_BUDGET_LABELS_PER_CELL x classes x the pool's
    languages (from `languages`, one per pool item; one language without them), then (and without them)
    clusters the candidates alone as Zhdanov 2019 does; badge measures uncertainty and ignores them.
    `labeled_probs` (the same model's calibrated probabilities for the labeled items, row for row) let
    that cover measure distance on embeddings and predictions together (`coverage_space`); without them
    it covers the embeddings alone.
    A pool smaller than the batch gives the whole pool. Same inputs and `seed`, same Selection.
    """
    p = _checked_probs(probs)
    n = p.shape[0]
    x = _checked_embeddings(embeddings, n, strategy)
    _check_arguments(batch_size, random_fraction, candidate_factor)
    if languages is not None and len(languages) != n:
        raise ValueError(f"languages must name one language per pool item ({n}), got {len(languages)}")
    rng = np.random.default_rng(seed)
    size = min(batch_size, n)
    audit_size = size if strategy == "random" and not quotas else audit_count(random_fraction, size)
    audit = rng.choice(n, size=audit_size, replace=False).astype(np.int64)
    labeled = _checked_labeled(labeled_embeddings, labeled_probs, x, p.shape[1])
    picker = _picker(strategy, p, x, labeled, rng, candidate_factor, pool_languages(languages))
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
    labeled: tuple[Float32Array, FloatArray | None] | None,
    rng: np.random.Generator,
    candidate_factor: int,
    language_count: int,
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
    seeds, seed_probs = labeled if labeled is not None else (None, None)
    if strategy == "kcenter":
        return lambda allowed, k, chosen: k_center_greedy(x, k, seeds=_seeds(seeds, x, chosen), eligible=allowed)
    margin_order, uncertainty = uncertainty_order(probs, "margin"), uncertainty_scores(probs, "margin")
    if seeds is not None and is_low_budget(seeds.shape[0], probs.shape[1], language_count):
        space = x if seed_probs is None else coverage_space(x, probs)
        cover_seeds = seeds if seed_probs is None else coverage_space(seeds, seed_probs)
        return lambda allowed, k, chosen: margin_coverage_picks(
            space,
            margin_order,
            uncertainty,
            allowed,
            k,
            seeds=_seeds(cover_seeds, space, chosen),
            factor=candidate_factor,
        )
    return lambda allowed, k, _chosen: margin_diversity_picks(
        x, margin_order, uncertainty, allowed, k, rng=rng, factor=candidate_factor
    )


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


def _checked_labeled(
    embeddings: npt.ArrayLike | None, probs: npt.ArrayLike | None, x: Float32Array | None, classes: int
) -> tuple[Float32Array, FloatArray | None] | None:
    """Return the labeled items' (embeddings, probabilities or None), checked against the pool's shapes."""
    if embeddings is None:
        if probs is not None:
            raise ValueError("labeled_probs need the labeled_embeddings they belong to")
        return None
    if x is None:
        return None  # a strategy without embeddings has no use for them
    seeds = np.asarray(embeddings, dtype=np.float32).reshape(-1, x.shape[1])
    if probs is None:
        return seeds, None
    raw = np.asarray(probs, dtype=np.float64)
    p = _checked_probs(raw.reshape(0, classes) if raw.size == 0 else raw)
    if p.shape != (seeds.shape[0], classes):
        raise ValueError(
            f"labeled_probs must be ({seeds.shape[0]}, {classes}), one row per labeled item; got {p.shape}"
        )
    return seeds, p


def _check_arguments(batch_size: int, random_fraction: float, candidate_factor: int) -> None:
    """Refuse a negative batch, a fraction outside [0, 1] or a candidate factor below 1."""
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0, got {batch_size}")
    if not 0.0 <= random_fraction <= 1.0:
        raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction}")
    if candidate_factor < 1:
        raise ValueError(f"candidate_factor must be >= 1, got {candidate_factor}")

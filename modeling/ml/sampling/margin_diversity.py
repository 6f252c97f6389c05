"""The default strategy's two phases: k-center coverage while labels are few, weighted k-means after.

Both phases take the CANDIDATE_FACTOR x k allowed items of least margin. While fewer than
LOW_BUDGET_LABELS_PER_CELL x classes x languages items are labeled (`is_low_budget`; a language counts
once it holds MIN_LANGUAGE_SHARE of the pool, `pool_languages`), `margin_coverage_picks` takes their
k-center cover seeded with the labeled items (Sener & Savarese 2018; the cold-start argument of Hacohen
et al. 2022 and Doucet et al. 2023), measured on the embeddings joined with the calibrated probabilities
(`coverage_space`); after that `margin_diversity_picks` clusters them with k-means
weighted by uncertainty and takes the item nearest each centre (Zhdanov 2019). The thresholds are read
here at call time: to change one at run time (a test), set it on this module, not on the package.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

from modeling.ml.sampling.distances import k_center_greedy
from modeling.ml.sampling.kmeans import weighted_kmeans_representatives
from modeling.ml.sampling.strategies import BoolArray, Float32Array, FloatArray, IntArray

# margin + diversity: weighted k-means runs inside the CANDIDATE_FACTOR x batch most uncertain by margin
# (Zhdanov 2019's prefilter factor beta). 10 is the value this default always had, kept rather than tuned.
CANDIDATE_FACTOR = 10
# margin + diversity covers (k-center) instead of clustering while labels < this x classes x languages:
# the low-budget regime, counted per cell (one class in one language) because a multilingual encoder keeps
# languages apart, so each language's part of every class must be seen before the model's uncertainty
# means much. On the oracle benchmark (benchmarks/active_learning.py, 10 seeds) the 13-topic reviews in
# 8 languages needed the cover up to ~520 labels (5 a cell; without it the default reached random's final
# macro-F1 only at 550 labels, with it at 400-450), while the English 3-class tweets learned faster with no
# cover past the 50 seed labels (macro-F1 0.601/0.616 at 100/150 labels against 0.584/0.597 when covering
# up to 120; AUC 0.636 against 0.632): a per-class count (40 before 2026-11-22) cannot serve both.
LOW_BUDGET_LABELS_PER_CELL = 5
# The cover measures distance in the embedding joined with this x the calibrated probabilities (the labeled
# items' too, by the same model): an uncertain item far from everything labeled in what the model predicts
# for it counts as uncovered even where the embeddings crowd. On the reviews (10 seeds) this took the
# default from 450 to 350 labels to reach random's final macro-F1 (AUC 0.590 -> 0.614); weights of 1.5
# and 3 did about as well (350 and 400 labels); the embeddings alone are weight 0.
PREDICTION_WEIGHT = 2.0
# A language is one of the pool's languages (a factor of the cells) once it holds this share of the pool:
# a few items misdetected or in a stray language do not multiply the low-budget regime.
MIN_LANGUAGE_SHARE = 0.05


def pool_languages(languages: Iterable[str] | Mapping[str, int] | None) -> int:
    """Return how many languages hold at least MIN_LANGUAGE_SHARE of the pool (1 when none is known).

    Takes one language per pool item, or counts by language. Blank languages (undetected) count toward
    the pool's size but are no language of their own.
    """
    if languages is None:
        return 1
    counts = Counter(dict(languages) if isinstance(languages, Mapping) else languages)
    total = sum(counts.values())
    present = sum(1 for name, n in counts.items() if name and n > 0 and n >= MIN_LANGUAGE_SHARE * total)
    return max(1, present)


def low_budget_limit(classes: int, languages: int = 1) -> int:
    """Return the label count at which the low-budget (coverage) phase ends for this many cells."""
    return LOW_BUDGET_LABELS_PER_CELL * max(1, classes) * max(1, languages)


def is_low_budget(labeled: int, classes: int, languages: int = 1) -> bool:
    """Return whether `labeled` items are too few for `classes` x `languages` cells to trust uncertainty alone."""
    return labeled < low_budget_limit(classes, languages)


def margin_diversity_picks(
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


def coverage_space(x: Float32Array, probs: FloatArray) -> Float32Array:
    """Return the rows the cover measures: each embedding joined with PREDICTION_WEIGHT x its probabilities."""
    return np.concatenate([x, PREDICTION_WEIGHT * probs], axis=1).astype(np.float32)


def margin_coverage_picks(
    space: Float32Array,
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
    earlier pick (k_center_greedy on the candidates alone, so its cost is bounded by their number), in
    `space` (`coverage_space` rows, or plain embeddings when the labeled items' probabilities are not
    known; `seeds` in the same space). Picks come back most uncertain first, scored by 1 - margin.
    """
    candidates = order[allowed[order]][: factor * max(k, 0)]
    picks, _ = k_center_greedy(space[candidates], k, seeds=seeds)
    positions = np.sort(picks)
    return candidates[positions], uncertainty[candidates[positions]]

"""The default strategy's two phases: k-center coverage while labels are few, weighted k-means after.

Both phases take the CANDIDATE_FACTOR x k allowed items of least margin. While fewer than
LOW_BUDGET_LABELS_PER_CLASS x classes items are labeled (`is_low_budget`), `margin_coverage_picks` takes
their k-center cover seeded with the labeled items (Sener & Savarese 2018; the cold-start argument of
Hacohen et al. 2022 and Doucet et al. 2023); after that `margin_diversity_picks` clusters them with
k-means weighted by uncertainty and takes the item nearest each centre (Zhdanov 2019). The threshold is
read here at call time: to change it at run time (a test), set it on this module, not on the package.
"""

from __future__ import annotations

import numpy as np

from modeling.ml.sampling.distances import k_center_greedy
from modeling.ml.sampling.kmeans import weighted_kmeans_representatives
from modeling.ml.sampling.strategies import BoolArray, Float32Array, FloatArray, IntArray

# margin + diversity: weighted k-means runs inside the CANDIDATE_FACTOR x batch most uncertain by margin
# (Zhdanov 2019's prefilter factor beta). 10 is the value this default always had, kept rather than tuned.
CANDIDATE_FACTOR = 10
# margin + diversity covers (k-center) instead of clustering while labels < this x classes: the low-budget
# regime. 40 comes from the oracle benchmark (benchmarks/active_learning.py: 20 and 40 measured, 40 kept);
# it is a per-class count so a 3-class project leaves the regime at 120 labels and a 13-class one at 520.
LOW_BUDGET_LABELS_PER_CLASS = 40


def is_low_budget(labeled: int, classes: int) -> bool:
    """Return whether `labeled` items are too few for `classes` classes to trust uncertainty alone."""
    return labeled < LOW_BUDGET_LABELS_PER_CLASS * classes


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


def margin_coverage_picks(
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

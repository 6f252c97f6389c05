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
uncertainty one). So while fewer than LOW_BUDGET_LABELS_PER_CELL x classes x languages items are labeled
(known only when `labeled_embeddings` are given; the languages are those holding MIN_LANGUAGE_SHARE of the
pool), margin + diversity picks the same candidates' k-center cover seeded with the labeled items (Sener &
Savarese 2018): the uncertain items farthest from everything labeled.

Diversity works in Euclidean geometry on the embeddings as given (pass L2-normalised rows for cosine).
Distances are float32 and updated one centre at a time (a mat-vec per pick), so a 100k x 384 pool
costs milliseconds per pick; seeding from already-labeled embeddings and k-means assignments need
block-wise (rows x centres) products, bounded by DISTANCE_BLOCK_CELLS.

The package, by what each part does: `strategies` (the strategy names and array types), `uncertainty`
(least confidence, margin, entropy and their orders), `distances` (block-wise distances and k-center
greedy), `kmeans` (weighted k-means representatives and BADGE's k-means++ seeding), `margin_diversity`
(the default's coverage and clustering phases, and the low-budget threshold) and `batch` (`select_batch`:
argument checks, random-audit picks, language quotas). Everything public is re-exported here: import it
from `modeling.ml.sampling`. The constants re-exported here are copies: a threshold is read in the
module that defines it, so change it there at run time (a test sets
`modeling.ml.sampling.margin_diversity.LOW_BUDGET_LABELS_PER_CELL`), never on the package.
"""

from __future__ import annotations

from modeling.ml.sampling.batch import (
    DEFAULT_RANDOM_FRACTION,
    PROBABILITY_TOLERANCE,
    Picker,
    Selection,
    audit_count,
    select_batch,
)
from modeling.ml.sampling.distances import (
    DISTANCE_BLOCK_CELLS,
    k_center_greedy,
    nearest_squared_distances,
    squared_distances,
)
from modeling.ml.sampling.kmeans import (
    KMEANS_CELL_BUDGET,
    KMEANS_MAX_ITERATIONS,
    KMEANS_MIN_WEIGHT,
    badge_kmeanspp,
    weighted_kmeans_representatives,
)
from modeling.ml.sampling.margin_diversity import (
    CANDIDATE_FACTOR,
    LOW_BUDGET_LABELS_PER_CELL,
    MIN_LANGUAGE_SHARE,
    is_low_budget,
    low_budget_limit,
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
from modeling.ml.sampling.uncertainty import entropy, least_confidence, margin, uncertainty_order, uncertainty_scores

__all__ = [
    "CANDIDATE_FACTOR",
    "DEFAULT_RANDOM_FRACTION",
    "DEFAULT_STRATEGY",
    "DISTANCE_BLOCK_CELLS",
    "DIVERSITY_STRATEGIES",
    "KMEANS_CELL_BUDGET",
    "KMEANS_MAX_ITERATIONS",
    "KMEANS_MIN_WEIGHT",
    "LOW_BUDGET_LABELS_PER_CELL",
    "MIN_LANGUAGE_SHARE",
    "PICK_ORDERED_STRATEGIES",
    "PROBABILITY_TOLERANCE",
    "STRATEGIES",
    "UNCERTAINTY_STRATEGIES",
    "BoolArray",
    "Float32Array",
    "FloatArray",
    "IntArray",
    "Picker",
    "Selection",
    "Strategy",
    "audit_count",
    "badge_kmeanspp",
    "entropy",
    "is_low_budget",
    "k_center_greedy",
    "least_confidence",
    "low_budget_limit",
    "margin",
    "nearest_squared_distances",
    "pool_languages",
    "select_batch",
    "squared_distances",
    "uncertainty_order",
    "uncertainty_scores",
    "weighted_kmeans_representatives",
]

"""The names every part of the sampling package shares: the query strategies and the array types.

`Strategy` lists the strategies `select_batch` knows; the sets below group them by what they need
(uncertainty strategies read probabilities only, diversity strategies also the embeddings) and by how a
batch is ordered. The array aliases are the float64 scores, float32 embeddings, int64 pool indices and
boolean masks the other modules take and return.
"""

from __future__ import annotations

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

"""Turn a version's pool predictions into the labeling queue: the sampling strategy picks, labeling stores."""

from __future__ import annotations

import logging
from typing import Any, cast

import numpy as np

from labeling.models import Item
from labeling.services.queue import queue_set_priorities
from modeling.ml.sampling import DIVERSITY_STRATEGIES, STRATEGIES, Strategy, select_batch
from modeling.models import ModelVersion, Prediction
from modeling.services.scoring import POOL_STATUSES, embedding_from_bytes

logger = logging.getLogger(__name__)
# Strategy used when a diversity strategy is configured but the predictions carry no embeddings.
FALLBACK_STRATEGY: Strategy = "margin"


def queue_refresh(
    *, version: ModelVersion, labeled_embeddings: np.ndarray | None = None, labeled_probs: np.ndarray | None = None
) -> int:
    """Rank the still-unlabeled pool by `version`'s predictions with the project's strategy; return items queued.

    The batch's first pick gets the highest priority; random-audit picks are flagged on the items. The
    project's language quotas (language -> share of the batch, or minimum count) are topped up from
    each language's own most useful items, so a multilingual queue does not starve a small language.
    ``labeled_embeddings`` (the gold items' embeddings by the same version, while they are few) steer
    the diversity strategies away from what is already labeled; ``labeled_probs`` (the same items'
    calibrated probabilities by the same version) let the default's cover weigh predictions too.
    """
    project = version.project
    rows = list(
        Prediction.objects.filter(model_version=version, item__split=Item.Split.POOL, item__status__in=POOL_STATUSES)
        .order_by("item_id")
        .values_list("item_id", "probs", "embedding", "item__language")
    )
    if not rows:
        return queue_set_priorities(project=project, ranked=[], version_number=version.number)
    item_ids = [row[0] for row in rows]
    probs = np.asarray([row[1] for row in rows], dtype=np.float64)
    raw = [row[2] for row in rows]
    embeddings = np.stack([embedding_from_bytes(bytes(r)) for r in raw]) if all(r is not None for r in raw) else None
    strategy = _strategy(project.al_strategy, has_embeddings=embeddings is not None)
    quotas = _quotas(project.language_quotas)
    selection = select_batch(
        probs,
        embeddings,
        strategy=strategy,
        batch_size=project.al_batch_size,
        languages=[row[3] for row in rows],  # quotas, and the default's low-budget cells (class x language)
        quotas=quotas,
        random_fraction=project.random_fraction,
        labeled_embeddings=labeled_embeddings if embeddings is not None else None,
        labeled_probs=labeled_probs if embeddings is not None and labeled_embeddings is not None else None,
        seed=version.number,
    )
    size = len(selection)
    ranked = [
        (item_ids[int(index)], float(size - rank), bool(selection.is_random[rank]))
        for rank, index in enumerate(selection.indices)
    ]
    queued = queue_set_priorities(project=project, ranked=ranked, version_number=version.number)
    logger.info(
        "queue refreshed",
        extra={"version_id": version.pk, "strategy": strategy, "queued": queued, "quotas": sorted(quotas or {})},
    )
    return queued


def _strategy(configured: str, *, has_embeddings: bool) -> Strategy:
    """Return the project's strategy, or plain margin when it needs embeddings the predictions lack."""
    if configured not in STRATEGIES:
        return FALLBACK_STRATEGY
    if configured in DIVERSITY_STRATEGIES and not has_embeddings:
        return FALLBACK_STRATEGY
    return cast(Strategy, configured)


def _quotas(setting: Any) -> dict[str, float | int] | None:
    """Return the project's language quotas as ``select_batch`` takes them; None when there are none.

    The project form and API validate the setting; a value they would refuse (written around them) is
    a bug that should fail the scoring job loudly, which ``select_batch`` does with a ValueError.
    """
    if not setting:
        return None
    if not isinstance(setting, dict):
        raise ValueError(f"language_quotas must be an object of language -> share or count, got {setting!r}")
    return dict(setting)

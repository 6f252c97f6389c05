"""Explaining a detection: a domain classifier on the reference's eval texts against the window's texts.

The classifier (``monitoring.stats.explain``) ranks the window's texts by how unlike the reference they
read; that ranking, weighted by the model's doubt, picks the candidates sent to labeling. Texts exist
in the log only for the audit sample and for projects that log texts; without them the explanation
says so instead of failing the run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from labeling.models import Item, Project
from modeling.serving.projection import decode
from monitoring.services.drift.traffic import Traffic, window_rows
from monitoring.stats.explain import explain_shift

EXPLAIN_TEXTS = 2_000
MIN_EXPLAIN_TEXTS = 20
CURRENT_LIKE_SHOWN = 10
CANDIDATES_KEPT = 500


def _no_texts(status: str, message: str, n: int = 0) -> dict[str, Any]:
    return {"status": status, "message": message, "n_texts": n}


def explain_window(*, project: Project, version: int, start: datetime, end: datetime, base: Traffic) -> dict[str, Any]:
    """Run the domain classifier on reference eval texts vs the window's logged texts (see the module doc)."""
    rows = list(
        window_rows(project, version, start, end)
        .filter(text__isnull=False)
        .order_by("id")
        .values_list("id", "text", "confidence", "embedding")[:EXPLAIN_TEXTS]
    )
    if not rows:
        return _no_texts(
            "no_texts",
            "No texts logged in this window: the project does not log prediction texts and no audit sample "
            "fell in it. Turn on text logging in the release policy (texts are redacted) to see what changed.",
        )
    if len(rows) < MIN_EXPLAIN_TEXTS:
        return _no_texts(
            "too_few_texts",
            f"Only {len(rows)} texts were logged in this window; at least {MIN_EXPLAIN_TEXTS} are needed.",
            len(rows),
        )
    item_ids = base.item_ids
    texts_by_id = dict(Item.objects.filter(pk__in=item_ids).values_list("id", "text"))
    kept = [index for index, item_id in enumerate(item_ids) if item_id in texts_by_id]
    reference_texts = [texts_by_id[item_ids[i]] for i in kept]
    if len(reference_texts) < 2:
        return _no_texts("no_reference_texts", "The reference's eval items were deleted: nothing to compare with.")
    current_vectors = [decode(bytes(raw)) if raw is not None else None for *_, raw in rows]
    dims = base.embeddings.shape[1]
    use_embeddings = all(v is not None and v.size == dims for v in current_vectors) and dims > 0
    try:
        explanation = explain_shift(
            reference_texts,
            [row[1] for row in rows],
            reference_embeddings=base.embeddings[kept] if use_embeddings else None,
            current_embeddings=np.vstack(current_vectors).astype(np.float64) if use_embeddings else None,  # type: ignore[arg-type]
            seed=0,
        )
    except ValueError as exc:  # e.g. every text empty after redaction: say why rather than fail the run
        return _no_texts("failed", f"The explanation could not be computed: {exc}", len(rows))
    return _explanation_dict(explanation.as_dict(), rows, use_embeddings)


def _explanation_dict(result: dict[str, Any], rows: list[tuple[Any, ...]], use_embeddings: bool) -> dict[str, Any]:
    scores = result.pop("current_scores")
    entries = [
        {
            "id": str(row[0]),
            "score": round(float(score), 4),
            "confidence": round(float(row[2]), 4),
            # Most drifted *and* least sure: the texts whose labels teach the next version most.
            "priority": round(float(score) * (1.0 - float(row[2])), 6),
        }
        for row, score in zip(rows, scores, strict=True)
    ]
    texts = {str(row[0]): row[1] for row in rows}
    current_like = sorted(entries, key=lambda e: -e["score"])[:CURRENT_LIKE_SHOWN]
    return {
        "status": "ok",
        **{key: result[key] for key in ("auc", "auc_low", "auc_high", "top_tokens", "n_reference", "n_current")},
        "embeddings_used": use_embeddings,
        "current_like": [{**entry, "text": texts[entry["id"]]} for entry in current_like],
        "candidates": sorted(entries, key=lambda e: -e["priority"])[:CANDIDATES_KEPT],
    }

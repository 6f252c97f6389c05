"""The prediction-log rows of one answer, one per text, handed to the write-behind ``LogBuffer``."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

from modeling.serving.logbuffer import Row
from modeling.serving.server.specs import TextResult


def _log_rows(
    key: str,
    texts: list[str],
    results: Sequence[TextResult],
    ids: list[str],
    latency_ms: float,
    meta: dict[str, Any],
) -> list[Row]:
    """One prediction-log row per text: ids, version, caller, latency, label, probabilities, length, hash,
    unknown-token rate and projected embedding (the sink adds the script: off the request path).

    Probabilities are keyed by label name: versions of a project may order their labels differently.
    """
    now = time.time()
    rows = []
    for text, result, prediction_id in zip(texts, results, ids, strict=True):
        best = max(range(len(result.probs)), key=result.probs.__getitem__)
        rows.append(
            {
                "id": prediction_id,
                "key": key,
                "version": result.version,
                "created_at": now,
                "latency_ms": latency_ms,
                "label": result.labels[best],
                "confidence": result.probs[best],
                "probs": dict(zip(result.labels, result.probs, strict=True)),
                "input_chars": len(text),
                "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                "text": text,  # the sink keeps it (redacted) only when the project opted in or for audit
                "unk_rate": result.unk_rate,
                "embedding": result.embedding,
                "meta": meta,
            }
        )
    return rows

"""Hand-built prediction-log and error rows for the monitoring tests (traffic, quality, audit)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from modeling.models import PredictionError, PredictionLog


def log_row(
    project,
    at: datetime,
    *,
    version: int = 1,
    route: str = "production",
    language: str = "en",
    label: str = "positive",
    confidence: float = 0.9,
    latency_ms: float = 20.0,
    chars: int = 10,
    text: str | None = None,
    audit: bool = False,
) -> PredictionLog:
    labels = ["negative", "neutral", "positive"]
    rest = (1 - confidence) / (len(labels) - 1)
    return PredictionLog(
        id=uuid.uuid4(),
        project=project,
        version_number=version,
        route=route,
        created_at=at,
        latency_ms=latency_ms,
        label=label,
        confidence=confidence,
        probs={name: (confidence if name == label else rest) for name in labels},
        input_chars=chars,
        language=language,
        text_sha256=hashlib.sha256((text or str(at)).encode()).hexdigest(),
        text=text,
        audit=audit,
    )


def save_logs(rows: list[PredictionLog]) -> list[PredictionLog]:
    PredictionLog.objects.bulk_create(rows)
    return rows


def error_row(project, at: datetime, *, kind: str = "overloaded", status: int = 503, texts: int = 1, **extra):
    return PredictionError.objects.create(
        project=project, created_at=at, kind=kind, status_code=status, texts=texts, **extra
    )

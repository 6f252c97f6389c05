"""The predict request: the body's size limit under the project's policy, the body's validation (the
texts, their count and length, the ``model`` field) and the ``X-Caller-Key`` header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from modeling.models import ReleasePolicy
from webapp.errors import ValidationFailed

CALLER_KEY_MAX = 100
# A JSON string can spend up to 12 bytes on one character (a surrogate pair as two \uXXXX escapes).
MAX_JSON_BYTES_PER_CHAR = 12
BODY_OVERHEAD_BYTES = 4096


def body_limit(policy: ReleasePolicy) -> int:
    """Return the largest body a valid request can have under ``policy`` (and the global cap)."""
    largest_valid = policy.max_texts_per_request * (policy.max_text_chars * MAX_JSON_BYTES_PER_CHAR + 8)
    return min(int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE), largest_valid + BODY_OVERHEAD_BYTES)


@dataclass(frozen=True)
class PredictRequest:
    texts: list[str]
    model: str | int | None


def predict_request_parse(data: Any, *, policy: ReleasePolicy) -> PredictRequest:
    """Validate a predict body against the policy's limits; a ``ValidationFailed`` names the bad index."""
    if not isinstance(data, dict):
        raise ValidationFailed('The body must be a JSON object like {"texts": ["…"]}.', details={"field": "body"})
    unknown = sorted(set(data) - {"texts", "model"})
    if unknown:
        raise ValidationFailed(f"Unknown field(s): {', '.join(unknown)}.", details={"field": unknown[0]})
    texts = data.get("texts")
    if not isinstance(texts, list) or not texts:
        raise ValidationFailed("texts must be a non-empty list of strings.", details={"field": "texts"})
    if len(texts) > policy.max_texts_per_request:
        raise ValidationFailed(
            f"Too many texts: {len(texts)}; this project accepts at most {policy.max_texts_per_request} per request.",
            details={"field": "texts", "limit": policy.max_texts_per_request, "count": len(texts)},
        )
    for index, text in enumerate(texts):
        problem = _text_problem(text, policy.max_text_chars)
        if problem:
            raise ValidationFailed(f"texts[{index}] {problem}.", details={"field": "texts", "index": index})
    return PredictRequest(texts=texts, model=_model_field(data.get("model")))


def _text_problem(text: Any, max_chars: int) -> str | None:
    if not isinstance(text, str):
        return f"is a {type(text).__name__}, not a string"
    if not text.strip():
        return "is empty"
    if len(text) > max_chars:
        return f"has {len(text)} characters; this project accepts at most {max_chars}"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # JSON may carry a lone surrogate ("\ud800"), which is no text
            return "is not valid Unicode (it holds an unpaired surrogate)"
    return None


def _model_field(model: Any) -> str | int | None:
    if model is None or model in ("production", "canary"):
        return model  # type: ignore[no-any-return]
    if isinstance(model, int) and not isinstance(model, bool) and model >= 1:
        return model
    raise ValidationFailed(
        'model must be "production", "canary" or a version number.', details={"field": "model", "value": str(model)}
    )


def caller_key_parse(header: str | None) -> str | None:
    """Return the ``X-Caller-Key`` header's value, refusing one that is empty or too long."""
    if header is None:
        return None
    key = header.strip()
    if not key or len(key) > CALLER_KEY_MAX or not key.isprintable():
        raise ValidationFailed(
            f"X-Caller-Key must be 1 to {CALLER_KEY_MAX} printable characters.", details={"field": "X-Caller-Key"}
        )
    return key

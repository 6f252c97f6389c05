"""Calling the model server: this process's client, and a prediction from route to response body.

Shadow: production traffic, when the policy enables it and a ``shadow`` alias exists, is copied to
the shadow model by the model server after the answer is computed (logged, never returned). The
answer names the version that actually computed it (during a hot swap that may be the newer one).
The model server's errors become 503s that say when to retry.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from labeling.models import Project
from modeling.models import Alias, PredictionLog
from modeling.services.serving.errors import NO_MODEL_RETRY_AFTER, ServingUnavailable
from modeling.services.serving.request import CALLER_KEY_MAX, PredictRequest
from modeling.services.serving.routing import Route, model_key, route_choose
from modeling.services.serving.state import ServingState
from modeling.serving.client import (
    ModelNotServed,
    ModelServerClient,
    ModelServerError,
    ServerOverloaded,
    ServerUnavailable,
)

logger = logging.getLogger(__name__)


_client_lock = threading.Lock()
_client: tuple[int, str, ModelServerClient] | None = None


def serving_client() -> ModelServerClient:
    """Return this process's client for ``MODEL_SERVER_ADDRESS`` (made after a fork, never inherited)."""
    global _client
    address = settings.MODEL_SERVER_ADDRESS
    current = _client
    if current is not None and current[0] == os.getpid() and current[1] == address:
        return current[2]
    with _client_lock:
        client = ModelServerClient(address, timeout=float(settings.MODEL_SERVER_TIMEOUT_SECONDS))
        _client = (os.getpid(), address, client)
        return client


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key the canary split sticks to, and what the log records."""

    key: str
    label: str


def prediction_make(
    *, project: Project, state: ServingState, request: PredictRequest, caller: Caller
) -> dict[str, Any]:
    """Route, have the model server predict, and return the API's response body (input order kept)."""
    route = route_choose(project=project, state=state, model=request.model, caller_key=caller.key)
    meta = prediction_meta(project=project, state=state, caller=caller, route=route.name)
    shadow = None
    if route.name == PredictionLog.Route.PRODUCTION and state.policy.shadow_enabled and "shadow" in state.aliases:
        shadow = {"key": model_key(project.pk, Alias.Name.SHADOW), "meta": {**meta, "route": "shadow"}}
    reply = _call(project, route, request.texts, meta, shadow)
    if route.version is not None and reply["version"] != route.version:
        raise ServingUnavailable(
            f"Version {route.version} is being swapped out of the {route.alias} slot; retry.", retry_after=1
        )
    return _response(reply)


def prediction_meta(*, project: Project, state: ServingState, caller: Caller, route: str) -> dict[str, Any]:
    """What the model server's prediction log records of a request, beside each text's own fields."""
    return {
        "project": project.pk,
        "caller": caller.label[:CALLER_KEY_MAX],
        "route": route,
        "log_text": bool(state.policy.log_texts),
        "language": project.languages[0] if len(project.languages) == 1 else "",
        # A multilingual project's texts get their language in the log writer (see _log_record).
        "languages": project.languages if len(project.languages) > 1 else [],
    }


def _call(
    project: Project, route: Route, texts: list[str], meta: dict[str, Any], shadow: dict[str, Any] | None
) -> dict[str, Any]:
    client = serving_client()
    try:
        try:
            return client.predict(model_key(project.pk, route.alias), texts, meta, shadow=shadow)
        except ModelNotServed:
            if not route.fallback:
                raise
            # The canary alias was set a moment ago and is still loading: production answers meanwhile.
            meta = {**meta, "route": PredictionLog.Route.PRODUCTION}
            return client.predict(model_key(project.pk, Alias.Name.PRODUCTION), texts, meta, shadow=shadow)
    except ModelNotServed as exc:
        raise ServingUnavailable(
            f"The {route.alias} model is not loaded on the model server yet.",
            retry_after=NO_MODEL_RETRY_AFTER,
            code="no_production_model" if route.alias == Alias.Name.PRODUCTION else "model_not_loaded",
        ) from exc
    except ServerOverloaded as exc:
        raise ServingUnavailable(
            "The model server is at capacity; retry shortly.", retry_after=exc.retry_after or 1, code="overloaded"
        ) from exc
    except ServerUnavailable as exc:
        logger.error("model server unavailable", extra={"project_id": project.pk, "error": str(exc)})
        raise ServingUnavailable(
            "The model server is unavailable; retry shortly.", retry_after=exc.retry_after or 1, code="unavailable"
        ) from exc
    except ModelServerError as exc:
        logger.error("model server error", extra={"project_id": project.pk, "code": exc.code})
        raise ServingUnavailable(
            "The model server failed to answer; retry.", retry_after=1, code="model_error"
        ) from exc


def _response(reply: dict[str, Any]) -> dict[str, Any]:
    labels: list[str] = reply["labels"]
    predictions = []
    for prediction_id, probs in zip(reply["ids"], reply["probs"], strict=True):
        best = max(range(len(probs)), key=probs.__getitem__)
        predictions.append(
            {
                "id": prediction_id,
                "label": labels[best],
                "score": probs[best],
                "scores": dict(zip(labels, probs, strict=True)),
            }
        )
    return {"model_version": reply["version"], "predictions": predictions}

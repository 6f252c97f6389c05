"""Serving: route API predictions to the model server, record feedback, and write the prediction log.

The web side (``prediction_make``, ``feedback_record``) never imports torch: it validates, picks a
route, and forwards the texts to the model server over its socket (``modeling.serving.client``).
The model-server side (``served_aliases``, ``prediction_log_write``) runs inside ``manage.py
model_server``: which versions to load, and the bulk writer behind its write-behind log buffer.

Routing, per request, from the project's release policy and aliases. Each web process keeps them
for ``API_SERVING_STATE_TTL_MS`` (1 s by default: two queries saved per request, about a third of the
web's own CPU per prediction), so a policy change or an alias move reaches the API within a second,
as it reaches the model server (which polls the aliases as often):

- no ``model``: the ``canary`` alias for ``canary_percent`` of callers, the rest ``production``.
  The split is sticky per caller: a hash of the project and the caller key (the ``X-Caller-Key``
  header, else the authenticated user) picks a bucket in [0, 100).
- ``"production"`` / ``"canary"``: that alias. ``<number>``: the alias that serves that version
  ("pinned"); a version that no alias points at is not loaded anywhere, so it is a 400.
- shadow: production traffic, when the policy enables it and a ``shadow`` alias exists, is copied to
  the shadow model by the model server after the answer is computed (logged, never returned).

The model server serves each alias under the key ``"<project id>:<alias>"``. The answer names the
version that actually computed it (during a hot swap that may be the newer one).

The package, by what each part does: ``errors`` (the 503 and the 429), ``state`` (the per-process
caches of memberships and serving state), ``request`` (the body's limit and validation, the caller
key), ``routing`` (which alias answers), ``predicting`` (the model server client and a prediction),
``feedback`` (a served prediction's true label), ``served`` (what the model server loads) and
``prediction_log`` (the log sink and the audit sample). Everything public is re-exported here:
import it from ``modeling.services.serving``. The caches (``state._states``, ``state._members``)
and the client (``predicting._client``) each live in one module: clear or patch them there.
"""

from __future__ import annotations

from modeling.services.serving.errors import NO_MODEL_RETRY_AFTER, RateLimited, ServingUnavailable
from modeling.services.serving.feedback import feedback_record
from modeling.services.serving.predicting import Caller, prediction_make, prediction_meta, serving_client
from modeling.services.serving.prediction_log import (
    LOG_COLUMNS,
    PROBS_COLUMN,
    audit_sampled,
    prediction_log_write,
)
from modeling.services.serving.request import (
    BODY_OVERHEAD_BYTES,
    CALLER_KEY_MAX,
    MAX_JSON_BYTES_PER_CHAR,
    PredictRequest,
    body_limit,
    caller_key_parse,
    predict_request_parse,
)
from modeling.services.serving.routing import Route, canary_bucket, model_key, route_choose
from modeling.services.serving.served import ServedAlias, served_aliases
from modeling.services.serving.state import CACHE_ENTRIES, ServingState, serving_project, serving_state

__all__ = [
    "BODY_OVERHEAD_BYTES",
    "CACHE_ENTRIES",
    "CALLER_KEY_MAX",
    "LOG_COLUMNS",
    "MAX_JSON_BYTES_PER_CHAR",
    "NO_MODEL_RETRY_AFTER",
    "PROBS_COLUMN",
    "Caller",
    "PredictRequest",
    "RateLimited",
    "Route",
    "ServedAlias",
    "ServingState",
    "ServingUnavailable",
    "audit_sampled",
    "body_limit",
    "caller_key_parse",
    "canary_bucket",
    "feedback_record",
    "model_key",
    "predict_request_parse",
    "prediction_log_write",
    "prediction_make",
    "prediction_meta",
    "route_choose",
    "served_aliases",
    "serving_client",
    "serving_project",
    "serving_state",
]

"""Serving: route API predictions to the model server, record feedback, and write the prediction log.

The web side (``prediction_make``, ``feedback_record``) never imports torch: it validates, picks a
route, and forwards the texts to the model server over its socket (``modeling.serving.client``).
The model-server side (``served_specs``, ``prediction_log_write``) runs inside ``manage.py
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
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Q
from rest_framework import status

from labeling.models import Label, Project
from labeling.selectors import project_for_user
from modeling.ml.textinfo import detect_language, dominant_script
from modeling.models import Alias, ModelVersion, PredictionFeedback, PredictionLog, ReleasePolicy
from modeling.redaction import redact
from modeling.serving.client import (
    ModelNotServed,
    ModelServerClient,
    ModelServerError,
    ServerOverloaded,
    ServerUnavailable,
)
from webapp.errors import ApplicationError, Conflict, NotFound, ServiceUnavailable, ValidationFailed

logger = logging.getLogger(__name__)

CALLER_KEY_MAX = 100
# A JSON string can spend up to 12 bytes on one character (a surrogate pair as two \uXXXX escapes).
MAX_JSON_BYTES_PER_CHAR = 12
BODY_OVERHEAD_BYTES = 4096
NO_MODEL_RETRY_AFTER = 5


class ServingUnavailable(ServiceUnavailable):
    """503: no production model, the model server is down or overloaded; retry after ``retry_after`` s."""

    def __init__(self, message: str, *, retry_after: float, code: str = "unavailable", details: Any = None) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after = max(1, math.ceil(retry_after))


class RateLimited(ApplicationError):
    """429: this caller used up its requests for the current minute."""

    code = "rate_limited"
    status_code = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


# --- reading the project's serving state ----------------------------------------------------------


@dataclass(frozen=True)
class ServingState:
    """The release policy and the aliases (name -> version number) a request is routed by."""

    policy: ReleasePolicy
    aliases: dict[str, int]


_states: dict[int, tuple[float, ServingState]] = {}
_members: dict[tuple[int, str], tuple[float, Project]] = {}
CACHE_ENTRIES = 10_000


def serving_project(*, user: Any, slug: str) -> Project:
    """Return ``project_for_user`` for any member, remembered for ``API_AUTH_CACHE_MS``.

    Only a granted access is remembered: an outsider is checked on every request, and a new member
    gets in at once; a removed member keeps predicting for at most the cache time.
    """
    ttl = settings.API_AUTH_CACHE_MS / 1000.0
    key, now = (user.pk, slug), time.monotonic()
    cached = _members.get(key)
    if cached is not None and now - cached[0] < ttl:
        return cached[1]
    project = project_for_user(user=user, slug=slug)
    if ttl > 0:
        if len(_members) >= CACHE_ENTRIES:
            _members.clear()
        _members[key] = (now, project)
    return project


def serving_state(*, project: Project) -> ServingState:
    """Return the project's release policy (defaults when it has none) and its aliases, at most a TTL old."""
    now = time.monotonic()
    cached = _states.get(project.pk)
    if cached is not None and now - cached[0] < settings.API_SERVING_STATE_TTL_MS / 1000.0:
        return cached[1]
    policy = ReleasePolicy.objects.filter(project=project).first() or ReleasePolicy(project=project)
    aliases = dict(Alias.objects.filter(project=project).values_list("name", "version__number"))
    state = ServingState(policy=policy, aliases=aliases)
    _states[project.pk] = (now, state)
    return state


def body_limit(policy: ReleasePolicy) -> int:
    """Return the largest body a valid request can have under ``policy`` (and the global cap)."""
    largest_valid = policy.max_texts_per_request * (policy.max_text_chars * MAX_JSON_BYTES_PER_CHAR + 8)
    return min(int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE), largest_valid + BODY_OVERHEAD_BYTES)


# --- the request -----------------------------------------------------------------------------------


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


# --- routing ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Which alias answers, what the log calls the route, and the version a pinned request demands.

    ``fallback``: a canary the split chose may be answered by production while it is still loading.
    """

    name: str
    alias: str
    version: int | None = None
    fallback: bool = False


def canary_bucket(*, project_id: int, caller_key: str) -> float:
    """Return the caller's fixed bucket in [0, 100): the same caller always lands in the same one."""
    digest = hashlib.sha256(f"{project_id}:{caller_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100.0


def route_choose(*, project: Project, state: ServingState, model: str | int | None, caller_key: str) -> Route:
    """Return the route for one request (see the module docstring); 400 for a model that is not served."""
    aliases = state.aliases
    if isinstance(model, int):
        return _pinned(project, aliases, model)
    if model == "canary":
        if Alias.Name.CANARY not in aliases:
            raise ValidationFailed("This project has no canary version.", details={"field": "model"})
        return Route(PredictionLog.Route.CANARY, Alias.Name.CANARY)
    if Alias.Name.PRODUCTION not in aliases:
        raise ServingUnavailable(
            "This project has no production model yet; promote a version first.",
            retry_after=NO_MODEL_RETRY_AFTER,
            code="no_production_model",
        )
    percent = state.policy.canary_percent
    split = model is None and Alias.Name.CANARY in aliases and percent > 0
    if split and canary_bucket(project_id=project.pk, caller_key=caller_key) < percent:
        return Route(PredictionLog.Route.CANARY, Alias.Name.CANARY, fallback=True)
    return Route(PredictionLog.Route.PRODUCTION, Alias.Name.PRODUCTION)


def _pinned(project: Project, aliases: dict[str, int], number: int) -> Route:
    for name in (Alias.Name.PRODUCTION, Alias.Name.CANARY, Alias.Name.SHADOW):
        if aliases.get(name) == number:
            return Route(PredictionLog.Route.PINNED, name, number)
    exists = ModelVersion.objects.filter(project=project, number=number).exists()
    served = ", ".join(f"{name} = version {version}" for name, version in sorted(aliases.items())) or "none"
    message = (
        f"Version {number} is not served: only the versions the production, canary and shadow aliases point at are "
        f"(now: {served})."
        if exists
        else f"This project has no version {number}."
    )
    raise ValidationFailed(message, details={"field": "model", "value": number})


def model_key(project_id: int, alias: str) -> str:
    """Return the key the model server serves ``alias`` of a project under."""
    return f"{project_id}:{alias}"


# --- calling the model server ----------------------------------------------------------------------

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
    meta = {
        "project": project.pk,
        "caller": caller.label[:CALLER_KEY_MAX],
        "route": route.name,
        "log_text": bool(state.policy.log_texts),
        "language": project.languages[0] if len(project.languages) == 1 else "",
        # A multilingual project's texts get their language in the log writer (see _log_record).
        "languages": project.languages if len(project.languages) > 1 else [],
    }
    shadow = None
    if route.name == PredictionLog.Route.PRODUCTION and state.policy.shadow_enabled and "shadow" in state.aliases:
        shadow = {"key": model_key(project.pk, Alias.Name.SHADOW), "meta": {**meta, "route": "shadow"}}
    reply = _call(project, route, request.texts, meta, shadow)
    if route.version is not None and reply["version"] != route.version:
        raise ServingUnavailable(
            f"Version {route.version} is being swapped out of the {route.alias} slot; retry.", retry_after=1
        )
    return _response(reply)


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


# --- feedback ----------------------------------------------------------------------------------------


def feedback_record(*, project: Project, user: Any, prediction_id: Any, label: Any) -> tuple[PredictionFeedback, bool]:
    """Record the true label of a served prediction; return it and whether it is new.

    The same label again changes nothing (idempotent); a different one is a 409. A prediction answered
    a moment ago may still sit in the model server's write-behind buffer: the server is asked to
    flush before the id is declared unknown.
    """
    parsed_id = _uuid(prediction_id)
    if not isinstance(label, str) or not label:
        raise ValidationFailed("label must be the name of one of the project's labels.", details={"field": "label"})
    found = Label.objects.filter(project=project, name=label).first()
    if found is None:
        names = list(Label.objects.filter(project=project).values_list("name", flat=True))
        raise ValidationFailed(
            f"Unknown label {label!r}; this project's labels are: {', '.join(names)}.",
            details={"field": "label", "labels": names},
        )
    if not _prediction_exists(project, parsed_id):
        raise NotFound("No prediction of this project has that id.")
    return _feedback_store(project, user, parsed_id, found)


def _uuid(value: Any) -> uuid.UUID:
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise ValidationFailed(
        "prediction_id must be the id (a UUID) of a prediction returned by the predict endpoint.",
        details={"field": "prediction_id"},
    )


def _prediction_exists(project: Project, prediction_id: uuid.UUID) -> bool:
    served = PredictionLog.objects.filter(project=project, id=prediction_id).exclude(route=PredictionLog.Route.SHADOW)
    if served.exists():
        return True
    try:
        flushed = serving_client().flush(timeout=10.0)
    except ModelServerError as exc:
        raise ServingUnavailable(
            "Cannot confirm this prediction while the model server is unavailable; retry shortly.", retry_after=2
        ) from exc
    if not flushed:
        raise ServingUnavailable("The prediction log is behind; retry shortly.", retry_after=2)
    return served.exists()


@transaction.atomic
def _feedback_store(
    project: Project, user: Any, prediction_id: uuid.UUID, label: Label
) -> tuple[PredictionFeedback, bool]:
    feedback, created = PredictionFeedback.objects.select_related("label").get_or_create(
        prediction_id=prediction_id,
        defaults={"project": project, "label": label, "user": user if user.is_authenticated else None},
    )
    if not created and feedback.label_id != label.pk:
        raise Conflict(
            f"This prediction already has the feedback label {feedback.label.name!r}.",
            details={"label": feedback.label.name},
        )
    return feedback, created


# --- the model server's side: what to serve, and the log sink ---------------------------------------


@dataclass(frozen=True)
class ServedAlias:
    """One alias the model server should serve, with what it needs to load the version."""

    key: str
    version: int
    path: str
    manifest_sha256: str
    max_length: int
    truncation: str
    quantize_int8: bool


def served_aliases() -> list[ServedAlias]:
    """Return every alias whose version has an artifact (one query; the model server polls it)."""
    rows = (
        Alias.objects.exclude(Q(version__artifact_path="") | Q(version__manifest_sha256=""))
        .values_list(
            "project_id",
            "name",
            "version__number",
            "version__artifact_path",
            "version__manifest_sha256",
            "version__train_config",
            "project__release_policy__quantize_int8",
        )
        .order_by("project_id", "name")
    )
    served = []
    for project_id, name, number, path, manifest, train_config, quantize in rows:
        config = train_config if isinstance(train_config, dict) else {}
        served.append(
            ServedAlias(
                key=model_key(project_id, name),
                version=number,
                path=path,
                manifest_sha256=manifest,
                max_length=int(config.get("max_length") or 256),
                truncation="head_tail" if config.get("truncation") == "head_tail" else "head",
                quantize_int8=bool(quantize),
            )
        )
    return served


LOG_COLUMNS = (
    "id",
    "project_id",
    "version_number",
    "route",
    "caller",
    "created_at",
    "latency_ms",
    "label",
    "confidence",
    "probs",
    "input_chars",
    "language",
    "text_sha256",
    "text",
    "embedding",
    "unk_rate",
    "script",
    "audit",
)
PROBS_COLUMN = LOG_COLUMNS.index("probs")


def prediction_log_write(rows: Sequence[dict[str, Any]]) -> int:
    """Write the model server's log rows as ``PredictionLog`` rows in bulk; return how many were new.

    Texts are kept (redacted) where the request said the project opted in, and for the audit sample
    (``audit_sampled``). Rows of a project deleted meanwhile are dropped. A retried batch after a lost
    acknowledgement inserts nothing twice (ids are primary keys; conflicts are skipped). COPY on
    PostgreSQL, one multi-row INSERT elsewhere.
    """
    close_old_connections()  # this runs in a long-lived thread: drop a connection the database closed
    try:
        projects = {int(row["meta"]["project"]) for row in rows}
        # A project without a release policy row audits at the policy's default share.
        default_share = ReleasePolicy._meta.get_field("audit_share").get_default()
        shares = {
            pk: default_share if share is None else share
            for pk, share in Project.objects.filter(pk__in=projects).values_list("pk", "release_policy__audit_share")
        }
        records = [
            _log_record(row, audit_share=shares[int(row["meta"]["project"])])
            for row in rows
            if int(row["meta"]["project"]) in shares
        ]
        if not records:
            return 0
        if connection.vendor == "postgresql":
            return _copy_log(records)
        created = PredictionLog.objects.bulk_create(
            [PredictionLog(**dict(zip(LOG_COLUMNS, record, strict=True))) for record in records],
            ignore_conflicts=True,
        )
        return len(created)
    except Exception:
        connection.close()  # the next attempt reconnects
        raise


def audit_sampled(prediction_id: uuid.UUID, share: float) -> bool:
    """Return whether a prediction falls in the audit sample: a fixed hash of its id below ``share``.

    Deterministic (a retried write or a second reader draws the same sample) and independent of the
    text, the caller and the time, so the sample is an unbiased share of the traffic.
    """
    if share <= 0.0:
        return False
    digest = hashlib.sha256(b"audit:" + prediction_id.bytes).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


def _log_record(row: dict[str, Any], *, audit_share: float = 0.0) -> tuple[Any, ...]:
    meta = row["meta"]
    prediction_id = uuid.UUID(row["id"])
    route = str(meta.get("route") or PredictionLog.Route.PRODUCTION)
    # The shadow's copies were never answered: auditing them would count one request twice.
    audit = route != PredictionLog.Route.SHADOW and audit_sampled(prediction_id, audit_share)
    raw_text = str(row["text"])
    # PostgreSQL text cannot hold NUL: one such row would fail its whole batch on every retry.
    text = redact(raw_text).replace("\x00", "\ufffd") if meta.get("log_text") or audit else None
    unk = row.get("unk_rate")
    embedding = row.get("embedding")
    return (
        prediction_id,
        int(meta["project"]),
        int(row["version"]),
        route,
        str(meta.get("caller") or "")[:CALLER_KEY_MAX],
        datetime.fromtimestamp(float(row["created_at"]), tz=UTC),
        float(row["latency_ms"]),
        str(row["label"])[:100],
        float(row["confidence"]),
        row["probs"],
        int(row["input_chars"]),
        # Here, in the log writer's thread, rather than in the server's request path.
        str(meta.get("language") or detect_language(raw_text, meta.get("languages") or []))[:16],
        str(row["text_sha256"]),
        text,
        bytes(embedding) if embedding is not None else None,
        float(unk) if unk is not None else None,
        # Here, in the log writer's thread, rather than in the server's request path.
        dominant_script(raw_text),
        audit,
    )


def _copy_log(records: list[tuple[Any, ...]]) -> int:
    """COPY the rows into a temporary table, then insert them skipping ids already written."""
    import json

    # Identifiers only (the model's table and fixed column names); the values travel through COPY.
    table = connection.ops.quote_name(PredictionLog._meta.db_table)
    columns = ", ".join(LOG_COLUMNS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS predlog_staging (LIKE {table}) ON COMMIT DELETE ROWS")
        with cursor.cursor.copy(f"COPY predlog_staging ({columns}) FROM STDIN") as copy:
            for record in records:
                copy.write_row((*record[:PROBS_COLUMN], json.dumps(record[PROBS_COLUMN]), *record[PROBS_COLUMN + 1 :]))
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM predlog_staging ON CONFLICT (id) DO NOTHING"  # noqa: S608
        )
        return int(cursor.rowcount)

"""``POST /api/v1/projects/{slug}/predict`` and ``POST …/feedback``: the prediction API.

Any member of the project may call both (reviewers included): a service calling the API gets its own
user, a member of the projects it serves, and a token (``manage.py drf_create_token <user>``).
Non-members get the same 404 as a project that does not exist. Token or session authentication.

Predict is the hot path: each web process remembers a token's user and a granted membership for
``API_AUTH_CACHE_MS`` (1 s by default), and the project's serving state as long (see
``modeling.services.serving``), so a steady caller's request makes no database query at all. Those
lookups and the per-request database connection were more than half of the web's CPU per prediction.
A revoked token or a removed member can keep predicting for at most that long; feedback always checks.
A plain JSON request (the usual one) is decoded and its answer rendered without DRF's per-request
negotiation, parser and renderer machinery, to the same bytes (``modeling.api.plainjson``).

The view checks, in order: the project (404), the body's size (413, before anything is read), the
caller's rate limit (429), the body (400), then routes and forwards to the model server (503 when it
cannot answer). No step writes on success: the prediction log is written by the model server. A
request the service fails (429, 503, an unexpected 5xx) writes one ``PredictionError`` row on its way out
(the availability SLO counts them); the caller's own mistakes (400, 401, 404, 413) write nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.models import Project
from labeling.selectors import project_for_user
from modeling.api.plainjson import PlainJsonNegotiation, json_body, json_response
from modeling.models import PredictionError
from modeling.services.ratelimit import rate_limit_hit
from modeling.services.serving import (
    CACHE_ENTRIES,
    Caller,
    RateLimited,
    ServingState,
    ServingUnavailable,
    body_limit,
    caller_key_parse,
    feedback_record,
    predict_request_parse,
    prediction_make,
    route_choose,
    serving_project,
    serving_state,
)
from modeling.services.serving.ttlcache import TtlCache
from webapp.errors import ApplicationError, PayloadTooLarge, ValidationFailed

logger = logging.getLogger(__name__)

NOT_A_MEMBER = OpenApiResponse(description="No such project, or you are not a member of it.")
RETRY = OpenApiResponse(description="`Retry-After` says when to try again.")
CALLER_KEY = OpenApiParameter(
    "X-Caller-Key",
    str,
    OpenApiParameter.HEADER,
    description="Optional: the end user or client this call is for. The canary split sticks to it "
    "(default: the authenticated user) and the prediction log records it.",
)


class PredictRequestSerializer(serializers.Serializer):
    texts = serializers.ListField(child=serializers.CharField(), min_length=1, max_length=64)
    model = serializers.CharField(required=False, help_text='"production", "canary" or a version number.')


class PredictionSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="Refer to it when sending feedback.")
    label = serializers.CharField()
    score = serializers.FloatField(help_text="The label's calibrated probability.")
    scores = serializers.DictField(child=serializers.FloatField(), help_text="Every label's calibrated probability.")


class PredictResponseSerializer(serializers.Serializer):
    model_version = serializers.IntegerField()
    predictions = PredictionSerializer(many=True, help_text="One per text, in input order.")


class FeedbackSerializer(serializers.Serializer):
    prediction_id = serializers.UUIDField()
    label = serializers.CharField()


_tokens: TtlCache[str, tuple[Any, Any]] = TtlCache(CACHE_ENTRIES)


class CachedTokenAuthentication(TokenAuthentication):
    """Token authentication that remembers a valid token's user for ``API_AUTH_CACHE_MS``."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        # An unknown token raises: never remembered. One thread per token loads it (single flight).
        load = super().authenticate_credentials
        return _tokens.get(key, settings.API_AUTH_CACHE_MS / 1000.0, lambda: load(key))


class _RetryAfterMixin:
    """Send ``Retry-After`` with every error that carries one (429, 503)."""

    def handle_exception(self, exc: Exception) -> Response:
        response: Response = super().handle_exception(exc)  # type: ignore[misc]
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response["Retry-After"] = str(retry_after)
        return response


class PredictView(_RetryAfterMixin, APIView):
    authentication_classes = [CachedTokenAuthentication, SessionAuthentication]
    content_negotiation_class = PlainJsonNegotiation

    @extend_schema(
        request=PredictRequestSerializer,
        parameters=[CALLER_KEY],
        responses={
            200: PredictResponseSerializer,
            400: OpenApiResponse(description="A bad body; `error.details.index` names the offending text."),
            404: NOT_A_MEMBER,
            413: OpenApiResponse(description="The body is larger than any valid request could be."),
            429: RETRY,
            503: RETRY,
        },
        summary="Predict labels for 1 to 64 texts (any member; limits per project)",
    )
    def post(self, request: Request, slug: str) -> Response:
        self.failure = PredictFailure(started=time.perf_counter())
        project = serving_project(user=request.user, slug=slug)
        self.failure.project = project
        state = serving_state(project=project)
        meta = request._request.META
        _check_size(meta, state)
        answer = predict_answer(
            project=project, state=state, user=request.user, meta=meta, read_body=lambda: _body(request),
            failure=self.failure,
        )  # fmt: skip
        return json_response(request, answer)

    def handle_exception(self, exc: Exception) -> Response:
        failure: PredictFailure | None = getattr(self, "failure", None)
        if failure is not None and failure.project is not None:
            kind = failure_kind(exc)
            if kind is not None:
                failure.record(kind, exc)
        return super().handle_exception(exc)


@dataclass
class PredictFailure:
    """What a failing prediction request knew when it failed: enough for one ``PredictionError`` row."""

    started: float
    project: Project | None = None
    texts: int = 1  # a 429 is answered before the body is read: its texts are not known
    state: ServingState | None = None
    model: str | int | None = None
    caller: Caller | None = None

    def _route(self) -> tuple[str, int]:
        """The route and version the request was (or would have been) sent to; ("", 0) before routing."""
        if self.state is None or self.caller is None or self.project is None:
            return "", 0
        try:
            route = route_choose(project=self.project, state=self.state, model=self.model, caller_key=self.caller.key)
        except ApplicationError:  # no production version: refused before a model was chosen
            return "", 0
        return route.name, route.version or self.state.aliases.get(route.alias, 0)

    def record(self, kind: str, exc: Exception) -> None:
        """Insert one row; a failure to record is logged and never changes the answer."""
        assert self.project is not None
        route, version = self._route()
        languages = self.project.languages
        try:
            PredictionError.objects.create(
                project=self.project,
                kind=kind,
                status_code=_status_of(exc),
                version_number=version,
                route=route,
                caller=(self.caller.label if self.caller else "")[:100],
                texts=self.texts,
                latency_ms=(time.perf_counter() - self.started) * 1000.0,
                language=languages[0] if len(languages) == 1 else "",
            )
        except Exception:  # the database may be what is failing: the caller still gets the real error
            logger.exception("recording a prediction error failed", extra={"project_id": self.project.pk})


# The ServingUnavailable codes of modeling.services.serving, by the error kind the SLOs count.
_UNAVAILABLE_KINDS = {
    "no_production_model": PredictionError.Kind.NO_MODEL,
    "model_not_loaded": PredictionError.Kind.NO_MODEL,
    "overloaded": PredictionError.Kind.OVERLOADED,
    "model_error": PredictionError.Kind.MODEL_ERROR,
}


def failure_kind(exc: Exception) -> str | None:
    """The service-side failure kind of an exception; None for the caller's own errors (4xx but 429)."""
    if isinstance(exc, RateLimited):
        return PredictionError.Kind.RATE_LIMITED
    if isinstance(exc, ServingUnavailable):
        return _UNAVAILABLE_KINDS.get(exc.code, PredictionError.Kind.SERVER_ERROR)
    if isinstance(exc, ApplicationError):
        return PredictionError.Kind.SERVER_ERROR if exc.status_code >= 500 else None
    if isinstance(exc, APIException):
        return PredictionError.Kind.SERVER_ERROR if exc.status_code >= 500 else None
    return PredictionError.Kind.SERVER_ERROR  # unexpected: it becomes a 500


def _status_of(exc: Exception) -> int:
    return int(getattr(exc, "status_code", 500))


class FeedbackView(_RetryAfterMixin, APIView):
    @extend_schema(
        request=FeedbackSerializer,
        responses={
            201: FeedbackSerializer,
            200: OpenApiResponse(FeedbackSerializer, description="The same label was already recorded."),
            400: OpenApiResponse(description="Not a prediction id, or not one of the project's labels."),
            404: NOT_A_MEMBER,
            409: OpenApiResponse(description="This prediction already has a different label."),
            503: RETRY,
        },
        summary="Record the true label of a prediction (any member; the same label again is a no-op)",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        body = _body(request)
        data: Any = body if isinstance(body, dict) else {}
        feedback, created = feedback_record(
            project=project, user=request.user, prediction_id=data.get("prediction_id"), label=data.get("label")
        )
        body = {"prediction_id": str(feedback.prediction_id), "label": feedback.label.name}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def _body(request: Request) -> Any:
    """The parsed JSON body; one nested too deeply for the parser is a 400, not a 500."""
    try:
        return json_body(request)
    except RecursionError:
        raise ValidationFailed("The body is nested too deeply to be a request.", details={"field": "body"}) from None


def predict_answer(
    *,
    project: Project,
    state: ServingState,
    user: Any,
    meta: Mapping[str, Any],
    read_body: Callable[[], Any],
    failure: PredictFailure,
) -> dict[str, Any]:
    """The rest of a prediction once the project is known and the body's size passed: the response body.

    Shared by ``PredictView`` and the WSGI fast lane (``modeling.api.predict_lane``), so both check the
    caller key (400), the rate limit (429), the body (400) and call the model server (503) in this order.
    ``read_body`` is called after the rate limit, once.
    """
    caller = _caller(meta, user)
    _check_rate(project, user, state)
    body = predict_request_parse(read_body(), policy=state.policy)
    failure.texts, failure.state, failure.model, failure.caller = len(body.texts), state, body.model, caller
    return prediction_make(project=project, state=state, request=body, caller=caller)


def _check_size(meta: Mapping[str, Any], state: ServingState) -> None:
    """413 before the body is read: DRF's parsers read it whole, past Django's own upload cap."""
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = body_limit(state.policy)
    if length > limit:
        raise PayloadTooLarge(
            f"The body has {length} bytes; requests to this project are at most {limit} bytes.",
            details={"limit": limit},
        )


def _caller(meta: Mapping[str, Any], user: Any) -> Caller:
    # META, not request.headers: that builds a mapping of every header to read one (tens of µs a request).
    key = caller_key_parse(meta.get("HTTP_X_CALLER_KEY"))
    return Caller(key=key or f"user:{user.pk}", label=key or user.get_username())


def _check_rate(project: Project, user: Any, state: ServingState) -> None:
    limit = state.policy.rate_limit_per_minute
    decision = rate_limit_hit(key=f"{project.pk}:{user.pk}", limit=limit)
    if not decision.allowed:
        raise RateLimited(
            f"Rate limit of {limit} requests a minute reached for this token; retry in {decision.retry_after} s.",
            retry_after=decision.retry_after,
        )

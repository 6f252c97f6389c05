"""The prediction API's fast lane: a token-authenticated plain-JSON predict call answered below Django.

``PredictView`` behind Django's handler (even its short middleware chain, ``webapp.wsgi``) spent about
0.8 ms of web CPU on a one-text prediction on the 2-core demo host, against 0.3 ms for a bare WSGI
function forwarding the same body to the model server (``benchmarks/predict_api.py``). The difference
was spread thinly over Django's handler, its signals and URL resolver, the middleware and DRF's request
wrapper, authentication and response finalisation; on two cores shared with the model server it was a
sixth of the API's throughput. The lane answers the common call with the same parts, minus that frame:

- The same checks, in the same order, with the same code: the token (``CachedTokenAuthentication``),
  the project and its serving state (``serving_project``/``serving_state``), the body's size, then
  ``predict_answer`` (caller key, rate limit, body, model server), whose errors render through the
  project's error format with ``Retry-After``, and whose service-side failures (429, 503, 500) write
  the same ``PredictionError`` row through ``PredictFailure``.
- The same response: the bytes ``json_response`` writes, DRF's ``Allow``/``Vary`` headers, and the
  headers the short chain's middleware adds, taken from the middleware itself when the lane is built.
- The same bookkeeping: Django's ``request_started``/``request_finished`` signals (database
  connections are closed or kept exactly as Django does), the request metrics and the request log line.

Whatever it would answer differently goes to Django untouched (the body, if read, handed on): a
missing, invalid or unknown token (401), a project the caller cannot see (404), a body over the size
limit (413) or one the fast JSON decoder refuses (400 from DRF's parser, with DRF's message), a host
outside ``ALLOWED_HOSTS``, an ``Accept`` or ``Content-Type`` other than plain JSON, a query string. Each
of those is answered before anything is written, so handing it on changes nothing. Settings under which
the middleware's headers depend on the request (HTTPS redirects, HSTS, proxy headers, ``PREPEND_WWW``,
blocked user agents) turn the lane off: every call then takes the short chain.
"""

from __future__ import annotations

import functools
import io
import logging
import re
import time
from collections.abc import Callable, Iterable
from http.client import responses
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.http import Http404, HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from rest_framework.exceptions import AuthenticationFailed

from modeling.api.plainjson import JSON, PLAIN_ACCEPT, dumps, loads
from modeling.api.predict import (
    CachedTokenAuthentication,
    PredictFailure,
    PredictView,
    failure_kind,
    predict_answer,
)
from modeling.services.serving import body_limit, serving_project, serving_state
from webapp.errors import SERVER_ERROR, ApplicationError, error_body
from webapp.observability import request_observed

request_logger = logging.getLogger("django.request")

StartResponse = Callable[..., Any]
VIEW_NAME = "api-predict"
# The URL pattern's own shape (``projects/<slug:slug>/predict`` under /api/v1/): anything else is Django's.
PREDICT_PATH = re.compile(r"/api/v1/projects/([-a-zA-Z0-9_]+)/predict")
# Settings under which the short chain's middleware answers per request (a redirect, a header that
# depends on the scheme or on proxy headers): the lane steps aside for all calls.
_REQUEST_DEPENDENT = (
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_PROXY_SSL_HEADER",
    "USE_X_FORWARDED_HOST",
    "USE_X_FORWARDED_PORT",
    "PREPEND_WWW",
    "DISALLOWED_USER_AGENTS",
)


class _Fallback(Exception):
    """The call is not the lane's to answer: hand it to Django (nothing has been written)."""


def lane_enabled() -> bool:
    """Whether the settings let the lane answer: the middleware's headers must not depend on the request."""
    return not any(getattr(settings, name, None) for name in _REQUEST_DEPENDENT)


def middleware_headers() -> list[tuple[str, str]]:
    """The headers the short chain's middleware adds to an API response, from the middleware itself."""
    response = HttpResponse()
    before = set(response.headers)
    request = HttpRequest()
    for middleware in (XFrameOptionsMiddleware, SecurityMiddleware):
        response = middleware(lambda _request: HttpResponse()).process_response(request, response)
    return [(name, value) for name, value in response.items() if name not in before]


class PredictLane:
    """A WSGI application for token-authenticated predict calls, handing what it does not answer to ``fallback``."""

    def __init__(self, fallback: WSGIHandler) -> None:
        self.fallback = fallback
        self.enabled = lane_enabled()
        self.middleware_headers = middleware_headers()
        # What DRF's finalize_response adds to the view's answers (``Allow``; ``Vary`` with the browsable API).
        self.view_headers = [(name, str(value)) for name, value in PredictView().default_response_headers.items()]
        self.authentication = CachedTokenAuthentication()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not self.enabled:
            return self.fallback(environ, start_response)
        started = time.perf_counter()
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            try:
                status, body, headers, user_id = self._answer(environ, started)
            except _Fallback:
                answer = None
            else:
                answer = self._respond(start_response, status, body, headers)
                request_observed(VIEW_NAME, "POST", status, time.perf_counter() - started, user_id)
        finally:
            signals.request_finished.send(sender=self.__class__)
        if answer is None:  # Django's handler sends its own signals and observes its own request
            return self.fallback(environ, start_response)
        return answer

    def _answer(self, environ: dict[str, Any], started: float) -> tuple[int, bytes, list[tuple[str, str]], Any]:
        try:
            user, project, state, data = self._checked(environ)
        except _Fallback:
            raise
        except Exception as exc:  # a database that fails, say: Django answers (and logs) it as it would
            raise _Fallback from exc
        failure = PredictFailure(started=started, project=project)
        try:
            answer = predict_answer(
                project=project, state=state, user=user, meta=environ, read_body=lambda: data, failure=failure
            )
        except Exception as exc:
            kind = failure_kind(exc)
            if kind is not None:
                failure.record(kind, exc)
            if not isinstance(exc, ApplicationError):  # what Django does with an unexpected error
                _log_response(500, environ, exc_info=True)
                return 500, dumps(SERVER_ERROR), [], user.pk  # handler500's answer: not the view's
            _log_response(exc.status_code, environ)
            retry_after = getattr(exc, "retry_after", None)
            headers = [*self.view_headers, *([] if retry_after is None else [("Retry-After", str(retry_after))])]
            return exc.status_code, dumps(error_body(exc.code, exc.message, exc.details)), headers, user.pk
        return 200, dumps(answer), self.view_headers, user.pk

    def _checked(self, environ: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
        """What the view knows before ``predict_answer``: user, project, serving state and the decoded body."""
        slug = _plain_call_slug(environ)
        user = self._user(environ)
        try:
            project = serving_project(user=user, slug=slug)
        except (ApplicationError, Http404):
            raise _Fallback from None  # Django answers the same 404
        state = serving_state(project=project)
        length = int(environ["CONTENT_LENGTH"])
        if length > body_limit(state.policy):
            raise _Fallback  # the 413, before the body is read
        return user, project, state, _read_json(environ, length)

    def _user(self, environ: dict[str, Any]) -> Any:
        """The token's user, the header read as DRF's ``TokenAuthentication`` reads it; else ``_Fallback`` (401)."""
        parts = environ.get("HTTP_AUTHORIZATION", "").encode("iso-8859-1").split()
        if len(parts) != 2 or parts[0].lower() != b"token":
            raise _Fallback
        try:
            user, _token = self.authentication.authenticate_credentials(parts[1].decode())
        except (UnicodeError, AuthenticationFailed):
            raise _Fallback from None
        return user

    def _respond(
        self, start_response: StartResponse, status: int, body: bytes, extra: list[tuple[str, str]]
    ) -> list[bytes]:
        headers = [("Content-Type", JSON), *extra, *self.middleware_headers, ("Content-Length", str(len(body)))]
        start_response(f"{status} {responses[status]}", headers)
        return [body]


def _log_response(status: int, environ: dict[str, Any], *, exc_info: bool = False) -> None:
    """Django's ``log_response`` line for an error answer: a warning for 4xx, an error for 5xx."""
    log = request_logger.error if status >= 500 else request_logger.warning
    log("%s: %s", responses[status], environ.get("PATH_INFO"), exc_info=exc_info, extra={"status_code": status})


def _plain_call_slug(environ: dict[str, Any]) -> str:
    """The project slug of a plain predict call the lane may answer; else ``_Fallback``."""
    match = PREDICT_PATH.fullmatch(environ.get("PATH_INFO", ""))
    if (
        match is None
        or environ.get("REQUEST_METHOD") != "POST"
        or environ.get("QUERY_STRING")
        or environ.get("CONTENT_TYPE") != JSON
        or environ.get("HTTP_ACCEPT", "*/*") not in PLAIN_ACCEPT
        or not environ.get("CONTENT_LENGTH", "").isdigit()
        or int(environ["CONTENT_LENGTH"]) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        or not _host_allowed(environ)
    ):
        raise _Fallback
    return match.group(1)


def _host_allowed(environ: dict[str, Any]) -> bool:
    """Django's ``get_host`` check (without proxy headers, which turn the lane off)."""
    host = environ.get("HTTP_HOST")
    if not host:
        port = environ.get("SERVER_PORT", "")
        default = "443" if environ.get("wsgi.url_scheme") == "https" else "80"
        host = environ.get("SERVER_NAME", "") + ("" if port == default else f":{port}")
    return _host_valid(host, tuple(settings.ALLOWED_HOSTS), settings.DEBUG)


@functools.lru_cache(maxsize=256)
def _host_valid(host: str, allowed: tuple[str, ...], debug: bool) -> bool:
    """Whether Django's ``get_host`` accepts ``host`` (a regular expression and a scan: remembered)."""
    domain, _port = split_domain_port(host)
    if debug and not allowed:
        allowed = (".localhost", "127.0.0.1", "[::1]")
    return bool(domain) and validate_host(domain, allowed)


def _read_json(environ: dict[str, Any], length: int) -> Any:
    """Read and decode the body; one the fast decoder refuses is handed on with its bytes put back."""
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(raw), str(len(raw))
    if not raw:
        raise _Fallback
    try:
        return loads(raw)
    except (ValueError, RecursionError):
        raise _Fallback from None

"""The WSGI application granian serves: Django's handler, with a shorter middleware chain for API tokens.

A call to the prediction API with an ``Authorization: Token …`` header never uses a session, a CSRF
cookie, messages, static files, htmx or the HTML error pages, yet the full chain ran all of them on
every prediction. Such calls go to a second Django handler built with only the middleware that still
does something for them (``API_MIDDLEWARE``, in ``settings.MIDDLEWARE``'s order): request metrics and
the request log, security headers and redirects, common checks and the frame-options header. The view,
its authentication (DRF's, token first), its errors and its bytes are the same; every other request,
and a predict call authenticated by session, takes the full chain.

A plain token call goes first to the prediction API's fast lane (``modeling.api.predict_lane``), which
answers it with the same checks, bytes, headers, log and metrics without Django's handler and DRF, and
hands the short chain whatever it would not answer the same way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

API_MIDDLEWARE = frozenset(
    {
        "webapp.observability.RequestMetricsMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    }
)
TOKEN_API_PATH = re.compile(r"/api/v1/projects/[^/]+/predict")

StartResponse = Callable[..., Any]


def token_api_call(environ: dict[str, Any]) -> bool:
    """Return whether a request is a token-authenticated prediction call (the short chain's only traffic)."""
    return (
        environ.get("REQUEST_METHOD") == "POST"
        and environ.get("HTTP_AUTHORIZATION", "").startswith("Token ")
        and TOKEN_API_PATH.fullmatch(environ.get("PATH_INFO", "")) is not None
    )


def api_handler() -> WSGIHandler:
    """Return a Django handler whose middleware chain is ``settings.MIDDLEWARE`` filtered to API_MIDDLEWARE.

    Django's handler reads ``settings.MIDDLEWARE`` once, while it is built: this sets the filtered list
    for that moment only (at import, before the server takes a request) and puts the full list back.
    """
    full = settings.MIDDLEWARE
    settings.MIDDLEWARE = [name for name in full if name in API_MIDDLEWARE]
    try:
        return WSGIHandler()
    finally:
        settings.MIDDLEWARE = full


class Application:
    """Send token-authenticated prediction calls to the short chain and everything else to the full one."""

    def __init__(self) -> None:
        self.full = get_wsgi_application()  # sets Django up: the lane imports models
        self.api = api_handler()
        from modeling.api.predict_lane import PredictLane

        self.lane = PredictLane(fallback=self.api)
        # Django imports the URLconf on a worker's first request. Here that pulls in the monitoring
        # views and their scientific stack: seconds of CPU on a busy 2-core host, during which every
        # request queued on that worker waits (a 6-8 s p99 in benchmarks/predict_api.py, and the same
        # stall after every worker restart). Paying it when the application is built keeps it off the
        # request path, whatever server imports this module.
        get_resolver().url_patterns  # noqa: B018 (the attribute access is the import)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        handler = self.lane if token_api_call(environ) else self.full
        return handler(environ, start_response)


application = Application()

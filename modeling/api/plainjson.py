"""The prediction API's JSON in and out without DRF's per-request machinery, when the request is plain.

A plain request is what every client library sends: ``Content-Type: application/json``, an ``Accept``
of ``*/*`` or ``application/json`` (or none), no query string. For it DRF's content negotiation, its
parser selection and its renderer always land on the same answer; computing that answer per request
was about a fifth of the web's in-process CPU per prediction (py-spy, one text per request). Anything
else (``?format=``, ``Accept: application/json; indent=4``, a form body, a charset, a body the fast
decoder refuses) takes DRF's ordinary path, so every status code, error message and byte of output
stays what DRF gives.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request

JSON = "application/json"
PLAIN_ACCEPT = frozenset({"*/*", JSON})
# What DRF's JSONRenderer writes with the project's settings (UNICODE_JSON, COMPACT_JSON, STRICT_JSON),
# made once: json.dumps with arguments builds a new encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class PlainJsonNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answered without parsing ``Accept`` when the request is plain."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        meta = request._request.META
        first = renderers[0] if renderers else None
        if (
            format_suffix is None
            and type(first) is JSONRenderer
            and meta.get("HTTP_ACCEPT", "*/*") in PLAIN_ACCEPT
            and not meta.get("QUERY_STRING")
        ):
            return first, JSON  # what DRF answers for these: the first renderer, its bare media type
        return super().select_renderer(request, renderers, format_suffix)  # type: ignore[no-any-return]


def json_body(request: Request) -> Any:
    """Return the parsed body: decoded here for a plain JSON body, else (or if it fails) by DRF's parsers."""
    django_request = request._request
    if django_request.META.get("CONTENT_TYPE") == JSON:
        raw = django_request.body
        if raw:
            try:
                return loads(raw)
            except (ValueError, RecursionError):
                pass  # DRF reads the same bytes again and answers with its own error
    return request.data  # form bodies, charsets, empty bodies, parse errors: DRF's answer


def loads(raw: bytes) -> Any:
    """Decode a body as DRF's JSONParser does: UTF-8 text (a BOM is an error), no NaN or Infinity.

    Raises ``ValueError`` (or ``RecursionError``) where DRF's parser would refuse it too; its message is DRF's.
    """
    return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # DRF's STRICT_JSON refuses NaN and Infinity too


def dumps(data: Any) -> bytes:
    """Return ``data`` as the bytes DRF's JSONRenderer writes with the project's settings."""
    return _ENCODER.encode(data).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def json_response(request: Request, data: Any, status: int = 200) -> HttpResponse:
    """Return ``data`` rendered exactly as DRF's JSONRenderer would, skipping DRF's Response when plain.

    Plain means the negotiation chose DRF's ``JSONRenderer`` with the bare ``application/json``; any
    other choice (an indent, the browsable API) goes through DRF's ``Response`` as before.
    """
    if type(getattr(request, "accepted_renderer", None)) is not JSONRenderer or request.accepted_media_type != JSON:
        from rest_framework.response import Response

        return Response(data, status=status)
    return HttpResponse(dumps(data), status=status, content_type=JSON)

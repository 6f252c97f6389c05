"""One error format everywhere: ``{"error": {"code", "message", "details"}}``.

Domain errors subclass ``ApplicationError`` with a stable ``code`` and an HTTP status; the DRF
exception handler and the JSON 404/500 handlers for ``/api/`` paths render them the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_default_handler

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A domain error a person can act on."""

    code = "error"
    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code


class ValidationFailed(ApplicationError):
    code = "validation_error"
    status_code = status.HTTP_400_BAD_REQUEST


class NotFound(ApplicationError):
    code = "not_found"
    status_code = status.HTTP_404_NOT_FOUND


class Forbidden(ApplicationError):
    code = "permission_denied"
    status_code = status.HTTP_403_FORBIDDEN


class Conflict(ApplicationError):
    code = "conflict"
    status_code = status.HTTP_409_CONFLICT


class PayloadTooLarge(ApplicationError):
    code = "payload_too_large"
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class UnsupportedMedia(ApplicationError):
    code = "unsupported_media_type"
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE


class ServiceUnavailable(ApplicationError):
    code = "unavailable"
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


_DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ParseError: "parse_error",
    exceptions.ValidationError: "validation_error",
}


def _drf_code(exc: exceptions.APIException) -> str:
    for klass, code in _DRF_CODES.items():
        if isinstance(exc, klass):
            return code
    return str(getattr(exc, "default_code", "error"))


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: map every error to the project's error format."""
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_default_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        message, details = "The request is invalid; see details for each field.", exc.detail
    else:
        message, details = str(exc.detail), None
    response.data = error_body(_drf_code(exc), message, details)
    return response


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    from django.views.defaults import page_not_found

    if _wants_json(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return page_not_found(request, exception or Http404())  # type: ignore[return-value]


SERVER_ERROR = error_body("server_error", "An unexpected error occurred; it has been logged.")


def handler500(request: HttpRequest) -> JsonResponse:
    from django.views.defaults import server_error

    if _wants_json(request):
        return JsonResponse(SERVER_ERROR, status=500)
    return server_error(request)  # type: ignore[return-value]

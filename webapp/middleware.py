"""Render domain errors raised in HTML views as a page with the right status; messages built on demand."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.functional import SimpleLazyObject, empty

from webapp.errors import ApplicationError


class ApplicationErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, ApplicationError) or request.path.startswith("/api/"):
            return None
        context = {"error": exception, "status": exception.status_code}
        return render(request, "error.html", context, status=exception.status_code)


class LazyMessageMiddleware(MessageMiddleware):
    """Django's ``MessageMiddleware``, building a request's message storage only when something uses it.

    Building it (a cookie signer, two storages) on every request was about 3% of the web's CPU for a
    prediction call, which never shows a message. Storage that was never touched holds nothing to
    save, so skipping its ``update`` changes nothing.
    """

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response
        return super().process_response(request, response)

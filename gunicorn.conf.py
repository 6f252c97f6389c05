"""Gunicorn settings read by every ``gunicorn`` started from the repository root (compose, the Dockerfile,
the benchmarks); flags on the command line still win over anything set here.
"""

from __future__ import annotations

from typing import Any


def post_worker_init(worker: Any) -> None:
    """Import the URLconf, and with it every view module, before the worker accepts a request.

    Django imports the URLconf on a worker's first request. Here that pulls in the monitoring views and
    their scientific stack: seconds of CPU on a busy 2-core host, during which every request queued on
    that worker waits (a 6-8 s p99 in ``benchmarks/predict_api.py``, and the same stall after every
    worker restart in production). Paying it at boot keeps it off the request path.
    """
    from django.conf import settings

    if not settings.configured:  # not a Django application
        return
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (the attribute access is the import)

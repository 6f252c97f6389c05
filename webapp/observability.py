"""Structured logs and Prometheus metrics.

Logs are JSON lines carrying ids and durations, never item texts. Metrics: request counts and
latency by view, and job counts by kind and state, read from the database at scrape time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "loopline_http_requests_total",
    "HTTP requests by view, method and status.",
    ["view", "method", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "loopline_http_request_duration_seconds",
    "HTTP request latency by view.",
    ["view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0),
    registry=REGISTRY,
)
request_logger = logging.getLogger("loopline.request")


class JsonFormatter(_BaseJsonFormatter):
    """One JSON object per line with time, level, logger, message and any ``extra`` fields."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("fmt", "%(asctime)s %(levelname)s %(name)s %(message)s")
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


class RequestMetricsMiddleware:
    """Count and time every request by its URL pattern's name (never by raw path: bounded labels)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match else None) or "unmatched"
        user_id = getattr(getattr(request, "user", None), "pk", None)
        request_observed(view, request.method or "", response.status_code, elapsed, user_id)
        return response


def request_observed(view: str, method: str, status: int, seconds: float, user_id: object) -> None:
    """Count and time one answered request, and log it (but health checks and scrapes)."""
    REQUESTS.labels(view=view, method=method, status=str(status)).inc()
    LATENCY.labels(view=view).observe(seconds)
    if view not in {"metrics", "healthz"}:
        request_logger.info(
            "request",
            extra={
                "view": view,
                "method": method,
                "status": status,
                "ms": round(seconds * 1000, 2),
                "user_id": user_id,
            },
        )


class JobStateCollector(Collector):
    """Expose ``loopline_jobs{kind,status}`` from one grouped query at scrape time."""

    def describe(self) -> list[Metric]:
        # Declared empty so registering at import time does not query the database.
        return []

    def collect(self) -> Iterator[Metric]:
        from django.db.models import Count

        from webapp.models import Job

        family = GaugeMetricFamily("loopline_jobs", "Jobs by kind and status.", labels=["kind", "status"])
        counts = {
            (row["kind"], row["status"]): row["n"]
            for row in Job.objects.values("kind", "status").annotate(n=Count("id"))
        }
        for kind in Job.Kind.values:
            for status in Job.Status.values:
                family.add_metric([kind, status], counts.get((kind, status), 0))
        yield family


REGISTRY.register(JobStateCollector())

"""``GET /api/v1/projects/{slug}/monitoring/traffic`` and ``…/quality``: the Service and Quality pages' figures.

Any member reads. Both take the pages' range parameters: ``range`` (1h, 6h, 24h, 7d, 30d, 90d, 365d;
default 24h) or ``from``/``to`` (ISO 8601); quality also ``source`` (audit, default, or feedback). A bad
parameter is a 400 that names it. The summaries are built from the rollups only (plus, for quality, the
20 least confident predictions of the last hour), so their cost does not grow with the raw log.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.selectors import project_for_user
from monitoring.selectors.quality import Quality, RecentPrediction, Slice, lowest_confidence, quality, source_parse
from monitoring.selectors.traffic import JobHealth, ServerStatus, Totals, Traffic, job_health, model_servers, traffic
from monitoring.stats.accuracy import ClassMetrics, Proportion
from monitoring.timerange import RANGES, TimeRange, parse_time_range

RANGE_PARAMETERS = [
    OpenApiParameter("range", str, enum=list(RANGES), description="A window ending now (default 24h)."),
    OpenApiParameter("from", str, description="ISO 8601 start of a custom window (instead of range)."),
    OpenApiParameter("to", str, description="ISO 8601 end of a custom window (default: now)."),
]
SOURCE = OpenApiParameter("source", str, enum=["audit", "feedback"], description="Ground truth (default audit).")
BAD_RANGE = OpenApiResponse(description="A malformed range, from/to or source; the message names it.")
NOT_A_MEMBER = OpenApiResponse(description="No such project, or you are not a member of it.")
ESTIMATE_ASSUMPTIONS = (
    "Estimated accuracy is the mean calibrated max-probability of the served predictions. It equals the "
    "expected accuracy only if the probabilities are calibrated on this traffic (the temperature fitted on the "
    "eval split still holds) and any shift keeps P(label | text) fixed; a change in what texts mean (concept "
    "shift) does not move it."
)


def range_data(time_range: TimeRange, step_seconds: float) -> dict[str, Any]:
    return {
        "start": time_range.start,
        "end": time_range.end,
        "key": time_range.key,
        "grain": time_range.grain,
        "step_seconds": int(step_seconds),
    }


def _totals(totals: Totals) -> dict[str, Any]:
    return {
        "predictions": totals.predictions,
        "failed": totals.error_count,
        "error_rate": totals.error_rate,
        "errors": dict(sorted(totals.errors.items())),
        "latency_ms": {**totals.latency(), "mean": totals.mean_latency_ms()},
        "routes": dict(sorted(totals.by_route.items())),
        "languages": dict(sorted(totals.by_language.items())),
        "versions": {str(k): v for k, v in sorted(totals.by_version.items())},
        "labels": dict(sorted(totals.label_counts.items())),
    }


def traffic_data(data: Traffic, servers: list[ServerStatus], health: JobHealth) -> dict[str, Any]:
    """Return the Service page's figures as plain JSON-ready data."""
    return {
        "range": range_data(data.time_range, data.step.total_seconds()),
        "totals": _totals(data.totals),
        "series": [
            {
                "start": point.start,
                "predictions": point.totals.predictions,
                "failed": point.totals.error_count,
                "errors": point.totals.errors,
                "error_rate": point.totals.error_rate,
                "routes": point.totals.by_route,
                "latency_ms": point.totals.latency(),
            }
            for point in data.points
        ],
        "model_servers": [asdict(server) for server in servers],
        "jobs": asdict(health),
        "latency_note": "Percentiles are interpolated linearly inside the fixed latency buckets (10, 25, 50, 100, "
        "200, 300, 500, 1000, 2000, 5000 ms); a value above 5000 ms is reported as 5000.",
    }


def _proportion(p: Proportion) -> dict[str, Any]:
    return {
        "value": p.value,
        "low": p.interval.low if p.interval else None,
        "high": p.interval.high if p.interval else None,
        "n": p.n,
    }


def slice_data(s: Slice) -> dict[str, Any]:
    measured = _proportion(s.accuracy)
    out = {
        "key": s.key,
        "accuracy": measured["value"],
        "low": measured["low"],
        "high": measured["high"],
        "n": measured["n"],
        "estimated": s.estimated.value,
        "served": s.estimated.n,
    }
    if s.macro_f1 is not None:
        interval = s.macro_f1.interval
        out["macro_f1"] = {
            "value": s.macro_f1.value,
            "low": interval.low if interval else None,
            "high": interval.high if interval else None,
            "n": s.macro_f1.n,
        }
    return out


def _class(c: ClassMetrics) -> dict[str, Any]:
    precision, recall = _proportion(c.precision), _proportion(c.recall)
    return {
        "label": c.label,
        "support": c.support,
        "predicted": c.predicted,
        "precision": precision["value"],
        "precision_low": precision["low"],
        "precision_high": precision["high"],
        "recall": recall["value"],
        "recall_low": recall["low"],
        "recall_high": recall["high"],
    }


def quality_data(data: Quality, recent: list[RecentPrediction]) -> dict[str, Any]:
    """Return the Quality page's figures as plain JSON-ready data."""
    return {
        "range": range_data(data.time_range, data.step.total_seconds()),
        "source": data.source,
        "labels": data.labels,
        "overall": slice_data(data.overall),
        "series": [{**slice_data(s), "start": start} for start, s in data.over_time],
        "by_language": [slice_data(s) for s in data.by_language],
        "by_version": [slice_data(s) for s in data.by_version],
        "classes": [_class(c) for c in data.classes],
        "confusion": {"labels": data.confusion_labels, "matrix": data.confusion, "source": "audit"},
        "lowest_confidence": [asdict(r) for r in recent],
        "estimate_assumptions": ESTIMATE_ASSUMPTIONS,
        "interval_note": "Accuracy: 95% Wilson score interval. Macro-F1: 95% percentile bootstrap (1,000 "
        "multinomial resamples of the confusion cells).",
    }


class TrafficView(APIView):
    @extend_schema(
        parameters=RANGE_PARAMETERS,
        responses={
            200: OpenApiResponse(description="Volume, latency, errors, routes, model servers, jobs."),
            400: BAD_RANGE,
            404: NOT_A_MEMBER,
        },
        summary="Traffic summary of a time range (any member)",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        time_range = parse_time_range(request.query_params)
        data = traffic_data(
            traffic(project=project, time_range=time_range),
            model_servers(project=project),
            job_health(project=project, time_range=time_range),
        )
        return Response(data)


class QualityView(APIView):
    @extend_schema(
        parameters=[*RANGE_PARAMETERS, SOURCE],
        responses={
            200: OpenApiResponse(description="Measured and estimated accuracy, per class, language, version."),
            400: BAD_RANGE,
            404: NOT_A_MEMBER,
        },
        summary="Quality summary of a time range (any member)",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        time_range = parse_time_range(request.query_params)
        source = source_parse(request.query_params.get("source"))
        data = quality(project=project, time_range=time_range, source=source)
        return Response(quality_data(data, lowest_confidence(project=project)))

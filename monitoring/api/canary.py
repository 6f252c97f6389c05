"""Canary/shadow agreement endpoint: production against the canary and shadow versions (members)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.selectors import project_for_user
from monitoring.selectors.canary import RANGE_CHOICES, CanaryReport, canary_report, canary_time_range


def _plain(value: Any) -> Any:
    """Return dataclasses, datetimes and dict keys as JSON-ready values (version-number keys become strings)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def report_data(report: CanaryReport) -> dict[str, Any]:
    """Return the report as the API's JSON body (the field names of ``monitoring.selectors.canary``)."""
    body = {field.name: getattr(report, field.name) for field in dataclasses.fields(report)}
    body["time_range"] = {
        "start": report.time_range.start,
        "end": report.time_range.end,
        "key": report.time_range.key,
    }
    for route in ("shadow", "canary"):
        body[route] = dataclasses.asdict(getattr(report, route))
    body["production_confidence"] = dataclasses.asdict(report.production_confidence)
    data: dict[str, Any] = _plain(body)
    return data


class CanaryView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("range", str, description=f"One of {', '.join(RANGE_CHOICES)} (default 24h)."),
            OpenApiParameter("from", str, description="ISO 8601 start (with 'to': a window of at most 24 hours)."),
            OpenApiParameter("to", str, description="ISO 8601 end (default now)."),
        ],
        responses={
            200: OpenApiResponse(
                description="Agreement (Wilson interval and n), label transitions, per-language agreement, agreement "
                "per time bucket, label-mix shift, confidence, and sample disagreements for the shadow and the "
                "canary version(s) against production."
            ),
            400: OpenApiResponse(description="A malformed window or one longer than 24 hours."),
            404: OpenApiResponse(description="No such project, or you are not a member."),
        },
        summary="Live agreement between production and the canary/shadow versions (members)",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        time_range = canary_time_range(request.query_params)
        return Response(report_data(canary_report(project=project, time_range=time_range)))

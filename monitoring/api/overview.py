"""``GET /api/v1/projects/{slug}/monitoring/overview``: the Overview page's summary (any member).

Takes the pages' range parameters (``range`` or ``from``/``to``) and an optional ``source`` (audit or
feedback; by default the audit sample when it has outcomes in the window, else feedback). A bad
parameter is a 400 that names it. Built from the rollups and small tables only (drift runs, SLO
objectives, alerts), so its cost does not grow with the raw prediction log.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.selectors import project_for_user
from monitoring.api.traffic import (
    BAD_RANGE,
    ESTIMATE_ASSUMPTIONS,
    NOT_A_MEMBER,
    RANGE_PARAMETERS,
    range_data,
    slice_data,
)
from monitoring.models import Alert, DriftRun
from monitoring.selectors.overview import DriftStatus, Overview, project_overview
from monitoring.selectors.quality import source_parse
from monitoring.services.drift import TESTS
from monitoring.services.slo import SloStatus
from monitoring.timerange import parse_time_range

SOURCE = OpenApiParameter(
    "source",
    str,
    enum=["audit", "feedback"],
    description="Ground truth of the accuracy (default: audit when it has outcomes in the window, else feedback).",
)
BUDGET_NOTE = (
    "Error budget remaining over each SLO's rolling period (not the chosen range), ending where the rollups "
    "end: 100% untouched, 0% spent, negative overspent."
)


def _traffic(data: Overview) -> dict[str, Any]:
    totals = data.traffic.totals
    return {
        "predictions": totals.predictions,
        "failed": totals.error_count,
        "error_rate": totals.error_rate,
        "latency_ms": totals.latency(),
        "series": [
            {
                "start": point.start,
                "predictions": point.totals.predictions,
                "failed": point.totals.error_count,
                "error_rate": point.totals.error_rate,
                "p95_ms": point.totals.latency()["p95"] if point.totals.predictions else None,
            }
            for point in data.traffic.points
        ],
    }


def _quality(data: Overview) -> dict[str, Any]:
    q = data.quality
    return {
        "source": q.source,
        "source_chosen": data.source_chosen,
        "overall": slice_data(q.overall),
        "series": [{**slice_data(s), "start": start} for start, s in q.over_time],
        "estimate_assumptions": ESTIMATE_ASSUMPTIONS,
    }


def _run(run: DriftRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    overall = (run.results or {}).get("overall", {})
    return {
        "id": run.pk,
        "version_number": run.version_number,
        "window_start": run.window_start,
        "window_end": run.window_end,
        "n_current": run.n_current,
        "drifted": run.drifted,
        "alerts": list((run.results or {}).get("alerts", [])),
        "tests": {
            name: {"alert": bool(overall[name].get("alert")), "p_value": overall[name].get("p_value")}
            for name in TESTS
            if name in overall
        },
    }


def _drift(status: DriftStatus) -> dict[str, Any]:
    return {
        "version_number": status.version.number if status.version else None,
        "reference": {"created_at": status.reference.created_at, "n_items": status.reference.n_items}
        if status.reference
        else None,
        "latest": {window: _run(run) for window, run in status.latest.items()},
        "alerts_firing": status.firing,
    }


def _slo(status: SloStatus) -> dict[str, Any]:
    return {
        "slo": status.slo,
        "label": status.label,
        "objective": status.objective,
        "objective_percent": round(100 * status.objective, 4),
        "events": status.budget.events,
        "bad": status.budget.bad,
        "allowed": status.budget.allowed,
        "remaining": status.budget.remaining,
        "remaining_percent": status.budget.remaining_percent,
        "firing": [r.policy.name for r in status.results if r.fires],
    }


def _alert(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "key": alert.key,
        "kind": alert.kind,
        "severity": alert.severity,
        "title": alert.title,
        "version_number": alert.version_number,
        "started_at": alert.started_at,
        "last_seen_at": alert.last_seen_at,
    }


def overview_data(data: Overview, *, slug: str) -> dict[str, Any]:
    """Return the Overview page's tiles as plain JSON-ready data, with links to each detail page."""
    return {
        "range": range_data(data.time_range, data.traffic.step.total_seconds()),
        "traffic": _traffic(data),
        "quality": _quality(data),
        "drift": _drift(data.drift),
        "slo": {"data_until": data.slo_until, "slos": [_slo(s) for s in data.slos], "note": BUDGET_NOTE},
        "alerts": {"firing": data.alerts_firing, "newest": [_alert(a) for a in data.alerts]},
        "links": {
            name: reverse(f"monitoring:{name}", kwargs={"slug": slug})
            for name in ("service", "quality", "drift", "slo", "alerts")
        },
    }


class OverviewView(APIView):
    @extend_schema(
        parameters=[*RANGE_PARAMETERS, SOURCE],
        responses={
            200: OpenApiResponse(description="Volume, errors, latency, accuracy, drift, error budgets, alerts."),
            400: BAD_RANGE,
            404: NOT_A_MEMBER,
        },
        summary="Monitoring overview of a time range (any member)",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        time_range = parse_time_range(request.query_params)
        source = source_parse(request.query_params["source"]) if request.query_params.get("source") else None
        data = project_overview(project=project, time_range=time_range, source=source)
        return Response(overview_data(data, slug=project.slug))

"""The canary/shadow agreement page: production against the canary and shadow versions on live traffic."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from labeling.selectors import project_for_user
from modeling.charts import figure_json
from monitoring import charts_canary
from monitoring.selectors.canary import (
    RANGE_CHOICES,
    SHADOW_MAX_GAP_S,
    CanaryReport,
    RouteComparison,
    canary_report,
    canary_time_range,
)


def canary_figures(report: CanaryReport) -> dict[str, Any]:
    """Return the page's figures by slot name; a slot without data is None (the template says "no data")."""
    compared = {one.route: one for one in (report.shadow, report.canary)}
    paired = {route: one.series for route, one in compared.items() if one.pairs}
    figures: dict[str, Any] = {"agreement": figure_json(charts_canary.agreement_over_time(paired)) if paired else None}
    for route, one in compared.items():
        figures[f"transitions_{route}"] = (
            figure_json(charts_canary.transition_heatmap(one.transitions, other=route)) if one.pairs else None
        )
        figures[f"labels_{route}"] = (
            figure_json(charts_canary.label_mix(one.label_shift, other=route))
            if one.rows and report.production_rows
            else None
        )
    histograms = {"production": report.production_histogram}
    histograms.update({route: one.confidence_histogram for route, one in compared.items()})
    has_confidence = sum(sum(counts) for counts in histograms.values()) > 0
    figures["confidence"] = figure_json(charts_canary.confidence_histograms(histograms)) if has_confidence else None
    return figures


def _route(comparison: RouteComparison, figures: dict[str, Any]) -> dict[str, Any]:
    """Return one route's comparison with the names and figures of its chart slots."""
    slots = {kind: f"{kind}_{comparison.route}" for kind in ("transitions", "labels")}
    return {
        "c": comparison,
        **{f"{kind}_name": name for kind, name in slots.items()},
        **{kind: figures[name] for kind, name in slots.items()},
    }


@login_required
@require_GET
def canary(request: HttpRequest, slug: str) -> HttpResponse:
    """Agreement between production and the canary/shadow versions over a recent window (members)."""
    project = project_for_user(user=request.user, slug=slug)
    time_range = canary_time_range(request.GET)
    report = canary_report(project=project, time_range=time_range)
    figures = canary_figures(report)
    context = {
        "project": project,
        "report": report,
        "routes": [_route(one, figures) for one in (report.shadow, report.canary)],
        "figures": figures,
        "time_range": time_range,
        "range_choices": RANGE_CHOICES,
        "shadow_gap_s": int(SHADOW_MAX_GAP_S),
    }
    return render(request, "monitoring/canary.html", context)

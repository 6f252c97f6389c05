"""The monitoring Overview page (any member): each monitoring page's headline at a glance, linking to it.

It renders the same summary the API returns (``monitoring.api.overview``), built from the rollups and
small tables only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from labeling.selectors import project_for_user
from modeling.charts import figure_json
from monitoring import charts_overview as charts
from monitoring.api.overview import BUDGET_NOTE, overview_data
from monitoring.selectors.overview import DRIFT_WINDOWS, project_overview
from monitoring.selectors.quality import source_parse
from monitoring.services.drift import TESTS
from monitoring.timerange import RANGES, TimeRange, parse_time_range

# Short names for the drift tile (the drift page spells each test out in full).
TEST_NAMES = {
    "prediction": "label mix",
    "softmax_ks": "softmax",
    "embedding_mmd": "embeddings",
    "length": "length",
    "unk_rate": "unknown tokens",
    "script": "script",
    "language": "language",
}


def _figures(summary: dict[str, Any]) -> dict[str, Any]:
    series = summary["traffic"]["series"]
    times = [p["start"] for p in series]
    rates = [None if p["error_rate"] is None else 100 * p["error_rate"] for p in series]
    return {
        "volume": figure_json(
            charts.volume_sparkline(times, [p["predictions"] for p in series], [p["failed"] for p in series])
        ),
        "errors": figure_json(charts.line_sparkline(times, rates, name="failed", unit="% failed", color=charts.RED)),
        "latency": figure_json(
            charts.line_sparkline(times, [p["p95_ms"] for p in series], name="p95", unit="p95 ms", color=charts.ORANGE)
        ),
        "accuracy": figure_json(charts.accuracy_sparkline(summary["quality"]["series"])),
        "budget": figure_json(charts.budget_chart([(s["label"], s["remaining"]) for s in summary["slo"]["slos"]])),
    }


def _drift_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per test: its verdict in the latest hourly and daily run (None where there is no such run).

    A test in the run with no p-value was not run on that window (e.g. no embeddings logged yet).
    """
    latest = summary["drift"]["latest"]
    rows = []
    for name in TESTS:
        cells = [(latest.get(window) or {}).get("tests", {}).get(name) for window in DRIFT_WINDOWS]
        if any(cells):
            rows.append({"test": name, "name": TEST_NAMES.get(name, name), "cells": cells})
    return rows


def _range_query(time_range: TimeRange) -> str:
    """The query string that opens a detail page on the same window."""
    if time_range.key != "custom":
        return urlencode({"range": time_range.key})
    return urlencode({"from": time_range.start.isoformat(), "to": time_range.end.isoformat()})


@login_required
@require_GET
def overview(request: HttpRequest, slug: str) -> HttpResponse:
    """Volume, errors, latency, accuracy trend, drift status, error budgets and open alerts, each linked."""
    project = project_for_user(user=request.user, slug=slug)
    time_range = parse_time_range(request.GET)
    source = source_parse(request.GET["source"]) if request.GET.get("source") else None
    summary = overview_data(project_overview(project=project, time_range=time_range, source=source), slug=slug)
    keep = request.GET.copy()
    for name in ("range", "from", "to"):
        keep.pop(name, None)
    rate = summary["traffic"]["error_rate"]
    context = {
        "project": project,
        "time_range": time_range,
        "range_choices": list(RANGES),
        "keep": keep.urlencode(),
        "range_query": _range_query(time_range),
        "error_percent": None if rate is None else 100 * rate,
        "summary": summary,
        "drift_rows": _drift_rows(summary),
        "figures": _figures(summary),
        "budget_note": BUDGET_NOTE,
    }
    return render(request, "monitoring/overview.html", context)

"""The Service and Quality monitoring pages (any member; server-rendered, plotly figures as JSON).

Both read the same summaries the API returns (``monitoring.api.traffic``), built from the rollups.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from labeling.selectors import project_for_user
from modeling.charts import figure_json
from monitoring import charts_traffic as charts
from monitoring.api.traffic import ESTIMATE_ASSUMPTIONS, quality_data, traffic_data
from monitoring.selectors.quality import lowest_confidence, source_parse
from monitoring.selectors.quality import quality as quality_of
from monitoring.selectors.traffic import job_health, model_servers, traffic
from monitoring.timerange import RANGES, parse_time_range


def _keep(request: HttpRequest) -> str:
    """The query parameters (other than the range) the range picker's links must keep (e.g. source)."""
    params = request.GET.copy()
    for name in ("range", "from", "to"):
        params.pop(name, None)
    return params.urlencode()


def _service_figures(summary: dict[str, Any]) -> dict[str, Any]:
    series = summary["series"]
    times = [p["start"] for p in series]
    servers = summary["model_servers"]
    served = [p for p in series if p["predictions"]]
    rates = [
        {kind: count / (p["predictions"] + p["failed"]) for kind, count in p["errors"].items()}
        if p["predictions"] + p["failed"]
        else {}
        for p in series
    ]
    return {
        "volume": figure_json(charts.volume_chart(times, [p["routes"] for p in series], [p["failed"] for p in series])),
        "latency": figure_json(charts.latency_chart([p["start"] for p in served], [p["latency_ms"] for p in served])),
        "errors": figure_json(charts.error_rate_chart(times, rates)),
        "routes": figure_json(charts.route_split_chart(summary["totals"]["routes"])),
        "batches": figure_json(
            charts.batch_size_chart(
                [
                    (f"{s['name']} {m['alias']} v{m['version']}", m["batch_size_counts"])
                    for s in servers
                    for m in s["models"]
                ]
            )
        ),
    }


@login_required
@require_GET
def service(request: HttpRequest, slug: str) -> HttpResponse:
    """Volume, latency percentiles, errors by kind, route split, model-server batching, job health."""
    project = project_for_user(user=request.user, slug=slug)
    time_range = parse_time_range(request.GET)
    summary = traffic_data(
        traffic(project=project, time_range=time_range),
        model_servers(project=project),
        job_health(project=project, time_range=time_range),
    )
    context = {
        "project": project,
        "time_range": time_range,
        "range_choices": list(RANGES),
        "keep": _keep(request),
        "summary": summary,
        "figures": _service_figures(summary),
    }
    return render(request, "monitoring/service.html", context)


@login_required
@require_GET
def quality(request: HttpRequest, slug: str) -> HttpResponse:
    """Measured and estimated accuracy over time and per slice, the audit confusion matrix, doubtful predictions."""
    project = project_for_user(user=request.user, slug=slug)
    time_range = parse_time_range(request.GET)
    source = source_parse(request.GET.get("source"))
    summary = quality_data(
        quality_of(project=project, time_range=time_range, source=source), lowest_confidence(project=project)
    )
    figures = {
        "accuracy": figure_json(charts.accuracy_chart(summary["series"])),
        "languages": figure_json(charts.slice_chart(summary["by_language"], x_title="language")),
        "versions": figure_json(charts.slice_chart(summary["by_version"], x_title="model version")),
        "classes": figure_json(charts.class_chart(summary["classes"])),
        "confusion": figure_json(
            charts.confusion_chart(summary["confusion"]["labels"], summary["confusion"]["matrix"])
        ),
    }
    context = {
        "project": project,
        "time_range": time_range,
        "range_choices": list(RANGES),
        "keep": _keep(request),
        "summary": summary,
        "source": source,
        "figures": figures,
        "assumptions": ESTIMATE_ASSUMPTIONS,
    }
    return render(request, "monitoring/quality.html", context)

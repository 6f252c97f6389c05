"""Plotly figures of the Service and Quality pages: plain data in, a plain dict ``Figure`` out (no Django).

Each function returns None when it has nothing to draw, so the page says "no data" instead of an empty
axis (``monitoring/_chart.html``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from modeling.charts import ACCENT, BLUES, GREEN, GREY, ORANGE, Figure, Trace, iso_times, plain_figure

RED = "#c62828"
PURPLE = "#7b4fc9"
ROUTE_COLORS = {"production": ACCENT, "canary": ORANGE, "shadow": GREY, "pinned": PURPLE, "": RED}
KIND_COLORS = {
    "rate_limited": ORANGE,
    "overloaded": PURPLE,
    "no_model": GREY,
    "model_error": RED,
    "server_error": "#8d1c1c",
}
MEASURED_HOVER = "%{y:.3f} [%{customdata[1]:.3f}, %{customdata[2]:.3f}], n = %{customdata[0]}<extra>measured</extra>"
LINED_AXIS = {"linecolor": "#d5d9e0", "automargin": True}


def _figure(
    traces: list[Trace],
    *,
    x_title: str,
    y_title: str,
    height: int = 300,
    yaxis: dict[str, Any] | None = None,
    **layout: Any,
) -> Figure:
    """The pages' common look with a drawn axis line, and room for long tick labels."""
    return plain_figure(
        traces,
        x_title=x_title,
        y_title=y_title,
        height=height,
        xaxis=LINED_AXIS,
        yaxis={**LINED_AXIS, **(yaxis or {})},
        **layout,
    )


# --- Service ------------------------------------------------------------------------------------


def volume_chart(times: Sequence[datetime], by_route: Sequence[dict[str, int]], errors: Sequence[int]) -> Figure | None:
    """Predictions per step stacked by route, and refused texts as a line."""
    if not times:
        return None
    x = iso_times(times)
    routes = sorted({route for point in by_route for route in point})
    traces: list[Trace] = [
        {
            "type": "bar",
            "x": x,
            "y": [point.get(route, 0) for point in by_route],
            "name": route or "no route",
            "marker": {"color": ROUTE_COLORS.get(route, GREY)},
        }
        for route in routes
    ]
    if any(errors):
        traces.append(
            {
                "type": "scatter",
                "x": x,
                "y": list(errors),
                "name": "failed",
                "mode": "lines+markers",
                "line": {"color": RED},
            }
        )
    return _figure(traces, x_title="time (UTC)", y_title="predictions", barmode="stack")


def latency_chart(times: Sequence[datetime], quantiles: Sequence[dict[str, float | None]]) -> Figure | None:
    """p50, p95 and p99 latency per step (interpolated inside the histogram buckets)."""
    if not times:
        return None
    x = iso_times(times)
    traces: list[Trace] = [
        {"type": "scatter", "x": x, "y": [q.get(name) for q in quantiles], "name": name, "mode": "lines",
         "line": {"color": color}}
        for name, color in (("p50", GREEN), ("p95", ORANGE), ("p99", RED))
    ]  # fmt: skip
    return _figure(traces, x_title="time (UTC)", y_title="latency (ms)")


def error_rate_chart(times: Sequence[datetime], rates: Sequence[dict[str, float]]) -> Figure | None:
    """Share of requested texts that failed, per error kind, per step."""
    kinds = sorted({kind for point in rates for kind, value in point.items() if value})
    if not times or not kinds:
        return None
    x = iso_times(times)
    traces: list[Trace] = [
        {
            "type": "scatter",
            "x": x,
            "y": [100 * point.get(kind, 0.0) for point in rates],
            "name": kind,
            "stackgroup": "errors",
            "mode": "lines",
            "line": {"color": KIND_COLORS.get(kind, GREY)},
        }
        for kind in kinds
    ]
    return _figure(traces, x_title="time (UTC)", y_title="failed (% of texts)")


def route_split_chart(by_route: dict[str, int]) -> Figure | None:
    """Predictions per route over the window."""
    routes = [route for route, count in sorted(by_route.items()) if count]
    if not routes:
        return None
    bar: Trace = {
        "type": "bar",
        "x": routes,
        "y": [by_route[r] for r in routes],
        "marker": {"color": [ROUTE_COLORS.get(r, GREY) for r in routes]},
        "text": [f"{by_route[r]:,}" for r in routes],
        "textposition": "auto",
    }
    return _figure([bar], x_title="route", y_title="predictions", height=260, hovermode="closest", showlegend=False)


def batch_size_chart(models: Sequence[tuple[str, dict[str, int]]]) -> Figure | None:
    """Batches per batch-size bucket, per served model (since the model server started)."""
    drawn = [(name, sizes) for name, sizes in models if any(sizes.values())]
    if not drawn:
        return None
    traces: list[Trace] = [
        {"type": "bar", "x": [f"≤{size}" for size in sizes], "y": list(sizes.values()), "name": name}
        for name, sizes in drawn
    ]
    return _figure(
        traces, x_title="texts per batch", y_title="batches", height=260, barmode="group", hovermode="closest"
    )


# --- Quality ------------------------------------------------------------------------------------


def accuracy_chart(points: Sequence[dict[str, Any]]) -> Figure | None:
    """Measured accuracy (95% Wilson interval, n per point) and macro-F1 (95% bootstrap), beside the estimate.

    Each point: ``start``, ``accuracy``, ``low``, ``high``, ``n``, ``estimated``, ``served``, ``macro_f1``.
    """
    measured = [p for p in points if p["accuracy"] is not None]
    estimated = [p for p in points if p["estimated"] is not None]
    if not measured and not estimated:
        return None
    f1 = [p for p in measured if (p.get("macro_f1") or {}).get("value") is not None]
    traces = [
        *([_measured_trace(measured)] if measured else []),
        *([_macro_f1_trace(f1)] if f1 else []),
        *([_estimated_trace(estimated)] if estimated else []),
    ]
    return _figure(traces, x_title="time of prediction (UTC)", y_title="accuracy", yaxis={"range": [0, 1.02]})


def _measured_trace(measured: Sequence[dict[str, Any]]) -> Trace:
    return {
        "type": "scatter",
        "x": iso_times(p["start"] for p in measured),
        "y": [p["accuracy"] for p in measured],
        "name": "measured accuracy",
        "mode": "lines+markers",
        "line": {"color": ACCENT},
        "error_y": _interval_bars(measured, "accuracy", ACCENT),
        "customdata": [[p["n"], p["low"], p["high"]] for p in measured],
        "hovertemplate": MEASURED_HOVER,
    }


def _macro_f1_trace(f1: Sequence[dict[str, Any]]) -> Trace:
    return {
        "type": "scatter",
        "x": iso_times(p["start"] for p in f1),
        "y": [p["macro_f1"]["value"] for p in f1],
        "name": "macro-F1",
        "mode": "markers",
        "marker": {"color": GREEN, "symbol": "square", "size": 7},
        "error_y": _interval_bars([p["macro_f1"] for p in f1], "value", GREEN),
        "hovertemplate": "%{y:.3f}<extra>macro-F1 (95% bootstrap)</extra>",
    }


def _estimated_trace(estimated: Sequence[dict[str, Any]]) -> Trace:
    return {
        "type": "scatter",
        "x": iso_times(p["start"] for p in estimated),
        "y": [p["estimated"] for p in estimated],
        "name": "estimated (mean confidence)",
        "mode": "lines",
        "line": {"color": ORANGE, "dash": "dash"},
        "customdata": [p["served"] for p in estimated],
        "hovertemplate": "%{y:.3f} over %{customdata:,} predictions<extra>estimated</extra>",
    }


def _interval_bars(rows: Sequence[dict[str, Any]], value: str, color: str) -> dict[str, Any]:
    """Thin error bars from each row's ``value`` up to its ``high`` and down to its ``low``."""
    return {**_error_bars(rows, value, "low", "high"), "color": color, "thickness": 1}


def _error_bars(rows: Sequence[dict[str, Any]], value: str, low: str, high: str) -> dict[str, Any]:
    return {
        "type": "data",
        "symmetric": False,
        "array": [(r[high] - r[value]) if r[value] is not None else 0 for r in rows],
        "arrayminus": [(r[value] - r[low]) if r[value] is not None else 0 for r in rows],
    }


def slice_chart(rows: Sequence[dict[str, Any]], *, x_title: str) -> Figure | None:
    """Measured accuracy per slice with its interval and n, and the estimated accuracy as a marker."""
    if not rows:
        return None
    names = [str(r["key"]) or "(unknown)" for r in rows]
    traces: list[Trace] = [
        {
            "type": "bar",
            "x": names,
            "y": [r["accuracy"] for r in rows],
            "name": "measured",
            "marker": {"color": ACCENT},
            "error_y": _error_bars(rows, "accuracy", "low", "high"),
            "text": [f"n = {r['n']}" for r in rows],
            "textposition": "outside",
        },
        {
            "type": "scatter",
            "x": names,
            "y": [r["estimated"] for r in rows],
            "name": "estimated",
            "mode": "markers",
            "marker": {"color": ORANGE, "symbol": "diamond", "size": 10},
        },
    ]
    return _figure(
        traces, x_title=x_title, y_title="accuracy", height=280, hovermode="closest", yaxis={"range": [0, 1.1]}
    )


def class_chart(rows: Sequence[dict[str, Any]]) -> Figure | None:
    """Precision and recall per class with their intervals."""
    if not rows:
        return None
    traces: list[Trace] = [
        {
            "type": "bar",
            "x": [r["label"] for r in rows],
            "y": [r[name] for r in rows],
            "name": name,
            "marker": {"color": color},
            "error_y": _error_bars(rows, name, f"{name}_low", f"{name}_high"),
        }
        for name, color in (("precision", ACCENT), ("recall", GREEN))
    ]
    return _figure(
        traces,
        x_title="class",
        y_title="share",
        height=280,
        barmode="group",
        hovermode="closest",
        yaxis={"range": [0, 1.05]},
    )


def confusion_chart(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> Figure | None:
    """The audited traffic's confusion matrix: rows are the true label, columns the served one."""
    if not labels or not any(any(row) for row in matrix):
        return None
    heatmap: Trace = {
        "type": "heatmap",
        "z": [list(row) for row in matrix],
        "x": list(labels),
        "y": list(labels),
        "colorscale": BLUES,
        "text": [[str(v) for v in row] for row in matrix],
        "texttemplate": "%{text}",
        "hovertemplate": "true %{y}, served %{x}: %{z}<extra></extra>",
    }
    return _figure(
        [heatmap],
        x_title="served label",
        y_title="true label (reviewers)",
        height=320,
        hovermode="closest",
        yaxis={"autorange": "reversed"},
    )

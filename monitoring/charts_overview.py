"""Plotly figures of the Overview page: small sparkline-style charts, plain data in, a plain dict ``Figure`` out.

Each function returns None when it has nothing to draw, so the tile says "no data" instead of showing
an empty axis (``monitoring/_chart.html``). No Django, no queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from modeling.charts import ACCENT, GREEN, ORANGE, Figure, Trace, iso_times, plain_figure

AMBER = "#b7791f"
RED = "#c62828"
SPARK_HEIGHT = 150
BUDGET_LOW = 0.25  # under a quarter of the budget left: amber
LINED_AXIS = {"linecolor": "#d5d9e0", "automargin": True}


def _spark(
    traces: list[Trace],
    *,
    y_title: str,
    height: int = SPARK_HEIGHT,
    y_ticks: int | None = 4,
    xaxis: dict[str, Any] | None = None,
    yaxis: dict[str, Any] | None = None,
    **layout: Any,
) -> Figure:
    """A compact figure: thin margins, no legend, a light grid, the y unit as a short title.

    ``y_ticks`` None leaves the count of y ticks to plotly.js (one per category on a bar chart).
    """
    y_axis = {**LINED_AXIS, "title": {"text": y_title, "font": {"size": 10}}, **(yaxis or {})}
    if y_ticks is not None:
        y_axis["nticks"] = y_ticks
    figure = plain_figure(
        traces,
        height=height,
        font_size=11,
        margin={"l": 44, "r": 8, "t": 8, "b": 28},
        showlegend=False,
        xaxis={**LINED_AXIS, "nticks": 5, **(xaxis or {})},
        yaxis=y_axis,
        **layout,
    )
    del figure["layout"]["legend"]  # hidden anyway: no need to send its placement
    return figure


def volume_sparkline(times: Sequence[datetime], predictions: Sequence[int], failed: Sequence[int]) -> Figure | None:
    """Served predictions per step as bars, failed texts stacked on top in red."""
    if not times or (not any(predictions) and not any(failed)):
        return None
    x = iso_times(times)
    traces: list[Trace] = [
        {"type": "bar", "x": x, "y": list(predictions), "name": "served", "marker": {"color": ACCENT}}
    ]
    if any(failed):
        traces.append({"type": "bar", "x": x, "y": list(failed), "name": "failed", "marker": {"color": RED}})
    return _spark(traces, y_title="texts", barmode="stack", bargap=0.1)


def line_sparkline(
    times: Sequence[datetime], values: Sequence[float | None], *, name: str, unit: str, color: str = ACCENT
) -> Figure | None:
    """One series per step (a gap where a step has no value), e.g. the error rate or the p95 latency."""
    if not any(v is not None for v in values):
        return None
    trace: Trace = {
        "type": "scatter",
        "x": iso_times(times),
        "y": list(values),
        "name": name,
        "mode": "lines+markers",
        "marker": {"size": 3},
        "line": {"color": color, "width": 1.5},
        "connectgaps": False,
    }
    return _spark([trace], y_title=unit, yaxis={"rangemode": "tozero"})


def accuracy_sparkline(points: Sequence[dict[str, Any]]) -> Figure | None:
    """Measured accuracy with its interval as a band (and the n behind each point), and the estimate dashed.

    ``points``: dicts with start, accuracy, low, high, n and estimated (as the quality summary's series).
    """
    measured = [p for p in points if p["accuracy"] is not None]
    estimated = [p for p in points if p["estimated"] is not None]
    if not measured and not estimated:
        return None
    traces = _measured_band(measured) if measured else []
    if estimated:
        traces.append(
            {
                "type": "scatter",
                "x": iso_times(p["start"] for p in estimated),
                "y": [p["estimated"] for p in estimated],
                "name": "estimated",
                "mode": "lines",
                "line": {"color": ORANGE, "width": 1.5, "dash": "dash"},
                "hovertemplate": "%{y:.3f}<extra>estimated</extra>",
            }
        )
    return _spark(traces, y_title="accuracy", yaxis={"range": [0, 1.02]})


def _measured_band(measured: Sequence[dict[str, Any]]) -> list[Trace]:
    """The interval as a filled band between two invisible lines (high, then low filled up to it), then the value."""
    x = iso_times(p["start"] for p in measured)
    edge = {"type": "scatter", "x": x, "mode": "lines", "line": {"width": 0}, "hoverinfo": "skip"}
    return [
        {**edge, "y": [p["high"] for p in measured]},
        {**edge, "y": [p["low"] for p in measured], "fill": "tonexty", "fillcolor": "rgba(47, 111, 222, 0.15)"},
        {
            "type": "scatter",
            "x": x,
            "y": [p["accuracy"] for p in measured],
            "name": "measured",
            "mode": "lines+markers",
            "marker": {"size": 4},
            "line": {"color": ACCENT, "width": 1.5},
            "customdata": [p["n"] for p in measured],
            "hovertemplate": "%{y:.3f}, n = %{customdata}<extra>measured</extra>",
        },
    ]


def budget_chart(budgets: Sequence[tuple[str, float | None]]) -> Figure | None:
    """Error budget remaining per SLO as horizontal bars (percent; negative when overspent).

    ``budgets``: (label, remaining as a fraction, or None for an SLO with no events in its period).
    """
    known = [(label, remaining) for label, remaining in budgets if remaining is not None]
    if not known:
        return None
    values = [100.0 * remaining for _, remaining in known]
    trace: Trace = {
        "type": "bar",
        "x": values,
        "y": [label for label, _ in known],
        "orientation": "h",
        "marker": {"color": [GREEN if r >= BUDGET_LOW else AMBER if r > 0 else RED for _, r in known]},
        "text": [f"{v:.1f}%" for v in values],
        "textposition": "auto",
        "hovertemplate": "%{y}: %{x:.2f}% left<extra></extra>",
    }
    low = min(0.0, min(values))
    return _spark(
        [trace],
        y_title="",
        height=60 + 34 * len(known),
        y_ticks=None,
        hovermode="closest",
        xaxis={"range": [low - 5 if low < 0 else 0, 100], "ticksuffix": "%", "nticks": 6},
        yaxis={"autorange": "reversed"},
    )

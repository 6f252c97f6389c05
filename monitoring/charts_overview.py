"""Plotly figures of the Overview page: small sparkline-style charts, plain data in, a ``Figure`` out.

Each function returns None when it has nothing to draw, so the tile says "no data" instead of showing
an empty axis (``monitoring/_chart.html``). No Django, no queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import plotly.graph_objects as go

ACCENT = "#2f6fde"
ORANGE = "#e07b24"
GREEN = "#2e8540"
AMBER = "#b7791f"
RED = "#c62828"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Noto Sans, sans-serif"
SPARK_HEIGHT = 150
BUDGET_LOW = 0.25  # under a quarter of the budget left: amber


def _spark(traces: list[Any], *, y_title: str, height: int = SPARK_HEIGHT, **layout: Any) -> go.Figure:
    """A compact figure: thin margins, no legend, a light grid, the y unit as a short title.

    An empty template instead of a named one ("plotly_white"): a named template is copied into every
    figure's JSON (several kB per chart), and a tile grid holds several charts.
    """
    axis = {"gridcolor": "#eef0f4", "zeroline": False, "linecolor": "#d5d9e0", "automargin": True}
    return go.Figure(
        data=traces,
        layout=go.Layout(
            template=go.layout.Template(),
            height=height,
            margin={"l": 44, "r": 8, "t": 8, "b": 28},
            font={"family": FONT, "size": 11, "color": "#1d2330"},
            showlegend=layout.pop("showlegend", False),
            hovermode=layout.pop("hovermode", "x unified"),
            plot_bgcolor="white",
            paper_bgcolor="white",
            xaxis={**axis, "nticks": 5, **layout.pop("xaxis", {})},
            yaxis={**axis, "nticks": 4, "title": {"text": y_title, "font": {"size": 10}}, **layout.pop("yaxis", {})},
            **layout,
        ),
    )


def volume_sparkline(times: Sequence[datetime], predictions: Sequence[int], failed: Sequence[int]) -> go.Figure | None:
    """Served predictions per step as bars, failed texts stacked on top in red."""
    if not times or (not any(predictions) and not any(failed)):
        return None
    traces: list[Any] = [go.Bar(x=list(times), y=list(predictions), name="served", marker_color=ACCENT)]
    if any(failed):
        traces.append(go.Bar(x=list(times), y=list(failed), name="failed", marker_color=RED))
    return _spark(traces, y_title="texts", barmode="stack", bargap=0.1)


def line_sparkline(
    times: Sequence[datetime], values: Sequence[float | None], *, name: str, unit: str, color: str = ACCENT
) -> go.Figure | None:
    """One series per step (a gap where a step has no value), e.g. the error rate or the p95 latency."""
    if not any(v is not None for v in values):
        return None
    trace = go.Scatter(
        x=list(times),
        y=list(values),
        name=name,
        mode="lines+markers",
        marker={"size": 3},
        line={"color": color, "width": 1.5},
        connectgaps=False,
    )
    return _spark([trace], y_title=unit, yaxis={"rangemode": "tozero"})


def accuracy_sparkline(points: Sequence[dict[str, Any]]) -> go.Figure | None:
    """Measured accuracy with its interval as a band (and the n behind each point), and the estimate dashed.

    ``points``: dicts with start, accuracy, low, high, n and estimated (as the quality summary's series).
    """
    measured = [p for p in points if p["accuracy"] is not None]
    estimated = [p for p in points if p["estimated"] is not None]
    if not measured and not estimated:
        return None
    traces: list[Any] = []
    if measured:
        x = [p["start"] for p in measured]
        traces += [
            go.Scatter(x=x, y=[p["high"] for p in measured], mode="lines", line={"width": 0}, hoverinfo="skip"),
            go.Scatter(
                x=x,
                y=[p["low"] for p in measured],
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor="rgba(47, 111, 222, 0.15)",
                hoverinfo="skip",
            ),
            go.Scatter(
                x=x,
                y=[p["accuracy"] for p in measured],
                name="measured",
                mode="lines+markers",
                marker={"size": 4},
                line={"color": ACCENT, "width": 1.5},
                customdata=[p["n"] for p in measured],
                hovertemplate="%{y:.3f}, n = %{customdata}<extra>measured</extra>",
            ),
        ]
    if estimated:
        traces.append(
            go.Scatter(
                x=[p["start"] for p in estimated],
                y=[p["estimated"] for p in estimated],
                name="estimated",
                mode="lines",
                line={"color": ORANGE, "width": 1.5, "dash": "dash"},
                hovertemplate="%{y:.3f}<extra>estimated</extra>",
            )
        )
    return _spark(traces, y_title="accuracy", yaxis={"range": [0, 1.02]})


def budget_chart(budgets: Sequence[tuple[str, float | None]]) -> go.Figure | None:
    """Error budget remaining per SLO as horizontal bars (percent; negative when overspent).

    ``budgets``: (label, remaining as a fraction, or None for an SLO with no events in its period).
    """
    known = [(label, remaining) for label, remaining in budgets if remaining is not None]
    if not known:
        return None
    values = [100.0 * remaining for _, remaining in known]
    colors = [GREEN if r >= BUDGET_LOW else AMBER if r > 0 else RED for _, r in known]
    trace = go.Bar(
        x=values,
        y=[label for label, _ in known],
        orientation="h",
        marker_color=colors,
        text=[f"{v:.1f}%" for v in values],
        textposition="auto",
        hovertemplate="%{y}: %{x:.2f}% left<extra></extra>",
    )
    low = min(0.0, min(values))
    return _spark(
        [trace],
        y_title="",
        height=60 + 34 * len(known),
        hovermode="closest",
        xaxis={"range": [low - 5 if low < 0 else 0, 100], "ticksuffix": "%", "nticks": 6},
        yaxis={"autorange": "reversed", "nticks": None},
    )

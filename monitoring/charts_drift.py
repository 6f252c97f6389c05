"""Plotly figures for the drift page: plain data in, a ``Figure`` (or None for "no data") out.

Each test over time is drawn as its p-value per window on a log axis with the test's threshold
(alpha; alpha over the classes for the softmax KS test) as a dashed line, one trace per window kind;
alerting windows are red. The prediction test also gets its effect size, PSI, with its threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from modeling.charts import LIGHT

ACCENT = "#2f6fde"
ORANGE = "#e07b24"
GREEN = "#2e8540"
GREY = "#9aa1ae"
RED = "#c8322f"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Noto Sans, sans-serif"
WINDOW_COLORS = {"hourly": ACCENT, "daily": GREEN, "on_demand": ORANGE}
WINDOW_NAMES = {"hourly": "Hourly", "daily": "Daily", "on_demand": "On demand"}
P_FLOOR = 1e-12  # a p-value of 0 (or one below float precision) is drawn at the floor of the log axis

Point = Mapping[str, Any]


def _layout(fig: go.Figure, *, title: str, y_title: str) -> go.Figure:
    fig.update_layout(
        **LIGHT,
        height=260,
        margin={"l": 56, "r": 16, "t": 44, "b": 44},
        font={"family": FONT, "size": 12, "color": "#1d2330"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 1, "xanchor": "right"},
        hovermode="closest",
        title={"text": title, "font": {"size": 13}, "x": 0, "y": 0.98},
    )
    fig.update_xaxes(title_text="Window end (UTC)", gridcolor="#eef0f4", zeroline=False)
    fig.update_yaxes(title_text=y_title, gridcolor="#eef0f4", zeroline=False)
    return fig


def p_value_chart(points: Sequence[Point], *, title: str) -> go.Figure | None:
    """Return the p-value per window with the threshold line, or None when no window ran the test."""
    tested = [p for p in points if p.get("p_value") is not None]
    if not tested:
        return None
    fig = go.Figure()
    for window in ("hourly", "daily", "on_demand"):
        mine = [p for p in tested if p["window"] == window]
        if not mine:
            continue
        fig.add_trace(
            go.Scatter(
                x=[p["time"] for p in mine],
                y=[max(float(p["p_value"]), P_FLOOR) for p in mine],
                customdata=[[p["n"], p["statistic"]] for p in mine],
                mode="lines+markers",
                name=WINDOW_NAMES[window],
                line={"color": WINDOW_COLORS[window], "width": 1.5},
                marker={"color": [RED if p["alert"] else WINDOW_COLORS[window] for p in mine], "size": 7},
                hovertemplate="%{x}<br>p = %{y:.3g}<br>statistic %{customdata[1]:.4g}<br>n = %{customdata[0]}"
                "<extra>" + WINDOW_NAMES[window] + "</extra>",
            )
        )
    thresholds = [p for p in tested if p.get("threshold") is not None]
    if thresholds:
        fig.add_trace(
            go.Scatter(
                x=[p["time"] for p in thresholds],
                y=[float(p["threshold"]) for p in thresholds],
                mode="lines",
                name="Threshold",
                line={"color": GREY, "dash": "dash", "width": 1},
                hovertemplate="threshold %{y:.3g}<extra></extra>",
            )
        )
    fig = _layout(fig, title=title, y_title="p-value (log)")
    fig.update_yaxes(type="log")
    return fig


def psi_chart(points: Sequence[Point]) -> go.Figure | None:
    """Return the prediction distribution's PSI per window with its threshold, or None without data."""
    tested = [p for p in points if p.get("psi") is not None]
    if not tested:
        return None
    fig = go.Figure(
        go.Scatter(
            x=[p["time"] for p in tested],
            y=[float(p["psi"]) for p in tested],
            mode="lines+markers",
            name="PSI",
            line={"color": ACCENT, "width": 1.5},
            marker={"color": [RED if p["alert"] else ACCENT for p in tested], "size": 7},
            hovertemplate="%{x}<br>PSI %{y:.4f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[p["time"] for p in tested],
            y=[float(p.get("psi_threshold") or 0.1) for p in tested],
            mode="lines",
            name="Threshold",
            line={"color": GREY, "dash": "dash", "width": 1},
        )
    )
    return _layout(fig, title="Predicted-label distribution: PSI", y_title="PSI")

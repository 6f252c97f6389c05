"""Plotly figures of the comparison page (candidate vs production): plain data in, a `Figure` out.

The confusion matrices reuse ``charts.confusion_heatmap``; these add what only a comparison has:
both versions' reliability curves on one diagram, and per-slice deltas in points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from modeling.charts import ACCENT, GREEN, GREY, ORANGE, _layout

RED = "#c0392b"


def reliability_comparison(series: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> go.Figure:
    """Return accuracy against confidence per bin for each named version (empty bins left out)."""
    fig = go.Figure(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="Perfect calibration",
            line={"color": GREY, "dash": "dash", "width": 1},
            hoverinfo="skip",
        )
    )
    for (name, bins), color in zip(series, (ACCENT, ORANGE, GREEN), strict=False):
        shown = [b for b in bins if b.get("count")]
        fig.add_trace(
            go.Scatter(
                x=[b["confidence"] for b in shown],
                y=[b["accuracy"] for b in shown],
                customdata=[[b["count"], b["lower"], b["upper"]] for b in shown],
                mode="lines+markers",
                name=name,
                line={"color": color, "width": 2},
                hovertemplate=(
                    f"{name}<br>bin %{{customdata[1]:.2f}}–%{{customdata[2]:.2f}}<br>"
                    "confidence %{x:.3f}<br>accuracy %{y:.3f}<br>%{customdata[0]} items<extra></extra>"
                ),
            )
        )
    fig = _layout(fig, x_title="Confidence (max probability)", y_title="Accuracy", height=360)
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(range=[0, 1])
    # No scaleanchor: in a wide card it would stretch the x range past [0, 1] to keep the aspect.
    fig.update_yaxes(range=[0, 1.02])
    return fig


def delta_bars(rows: Sequence[Mapping[str, Any]], *, key: str, title: str) -> go.Figure:
    """Return candidate minus production per slice in points: green where the candidate is better, red worse."""
    names = [str(row[key]) for row in rows]
    points = [round(float(row["delta"]) * 100, 2) for row in rows]
    fig = go.Figure(
        go.Bar(
            x=points,
            y=names,
            orientation="h",
            marker_color=[GREEN if p >= 0 else RED for p in points],
            customdata=[[row["n"], row["production"], row["candidate"]] for row in rows],
            hovertemplate=(
                "%{y}: %{x:+.1f} points<br>production %{customdata[1]:.3f} → candidate %{customdata[2]:.3f}"
                "<br>n = %{customdata[0]}<extra></extra>"
            ),
        )
    )
    fig = _layout(
        fig,
        x_title=f"{title} delta (points, candidate − production)",
        y_title="",
        height=max(200, 40 * len(rows) + 100),
    )
    fig.update_layout(hovermode="closest", showlegend=False)
    fig.update_yaxes(type="category", autorange="reversed")
    fig.update_xaxes(zeroline=True, zerolinecolor="#1d2330")
    return fig

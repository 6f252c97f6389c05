"""Plotly figures of the comparison page (candidate vs production): plain data in, a `Figure` out.

The confusion matrices reuse ``charts.confusion_heatmap``; these add what only a comparison has:
both versions' reliability curves on one diagram, and per-slice deltas in points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from modeling.charts import ACCENT, GREEN, ORANGE, _layout, reliability_curves

RED = "#c0392b"


def reliability_comparison(series: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> go.Figure:
    """Return accuracy against confidence per bin for each named version (empty bins left out)."""
    colored = [(name, bins, color) for (name, bins), color in zip(series, (ACCENT, ORANGE, GREEN), strict=False)]
    return reliability_curves(colored, square=False)


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

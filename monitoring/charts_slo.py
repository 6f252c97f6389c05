"""Plotly figures of the SLO page: plain data in, a ``Figure`` out (no Django, no database)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import plotly.graph_objects as go

from modeling.charts import LIGHT

FONT = "system-ui, -apple-system, Segoe UI, Roboto, Noto Sans, sans-serif"
WINDOW_COLORS = ("#2f6fde", "#e07b24", "#2e8540", "#8a4fbf", "#9aa1ae")
SEVERITY_COLORS = {"page": "#c62828", "ticket": "#b7791f"}


def burn_chart(
    times: Sequence[datetime],
    burns: Mapping[str, Sequence[float | None]],
    thresholds: Sequence[tuple[str, float, str]],
    *,
    title: str,
) -> go.Figure | None:
    """Return the burn rate over each trailing window, with the policies' thresholds as dashed lines.

    ``burns`` maps a window's label ("1 h") to one value per time (None: no traffic in that window);
    ``thresholds`` lists (label, factor, severity). None when no window has a value: nothing to draw.
    """
    if not times or all(v is None for series in burns.values() for v in series):
        return None
    traces = [
        go.Scatter(
            x=list(times),
            y=list(series),
            mode="lines",
            name=f"burn over {label}",
            line={"color": WINDOW_COLORS[i % len(WINDOW_COLORS)], "width": 2},
            connectgaps=False,
            hovertemplate=f"{label}: %{{y:.2f}}<extra></extra>",
        )
        for i, (label, series) in enumerate(burns.items())
    ]
    shapes, notes = _threshold_lines(thresholds)
    axis = {"gridcolor": "#eef0f4", "zeroline": False}
    # One constructor call with plain dicts: ``add_hline`` deep-copies the layout per line (~10 ms each).
    return go.Figure(
        data=traces,
        layout={
            **LIGHT,
            "height": 320,
            "margin": {"l": 56, "r": 16, "t": 40, "b": 40},
            "font": {"family": FONT, "size": 12, "color": "#1d2330"},
            "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
            "hovermode": "x unified",
            "title": {"text": title, "font": {"size": 13}, "x": 0, "y": 0.99},
            "xaxis": axis,
            "yaxis": {**axis, "title": {"text": "Burn rate (x budget)"}, "rangemode": "tozero"},
            "shapes": shapes,
            "annotations": notes,
        },
    )


def _threshold_lines(thresholds: Sequence[tuple[str, float, str]]) -> tuple[list[dict], list[dict]]:
    """A dashed line across the plot at each distinct factor, labelled with its severity and windows."""
    shapes, notes, seen = [], [], set()
    for label, factor, severity in thresholds:
        if factor in seen:
            continue
        seen.add(factor)
        color = SEVERITY_COLORS.get(severity, "#666")
        shapes.append(
            {"type": "line", "xref": "x domain", "x0": 0, "x1": 1, "yref": "y", "y0": factor, "y1": factor,
             "line": {"color": color, "dash": "dash", "width": 1}}
        )  # fmt: skip
        # Pages on the left, tickets on the right: the low thresholds (6, 3, 1) sit close together.
        left = severity == "page"
        notes.append(
            {"text": f"{severity} > {factor:g} ({label})", "xref": "x domain", "x": 0 if left else 1, "yref": "y",
             "y": factor, "xanchor": "left" if left else "right", "yanchor": "bottom", "showarrow": False,
             "font": {"size": 10, "color": color}}
        )  # fmt: skip
    return shapes, notes

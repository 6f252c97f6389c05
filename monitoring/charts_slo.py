"""Plotly figures of the SLO page: plain data in, a plain dict ``Figure`` out (no Django, no database)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from modeling.charts import Figure, iso_times, plain_figure

WINDOW_COLORS = ("#2f6fde", "#e07b24", "#2e8540", "#8a4fbf", "#9aa1ae")
SEVERITY_COLORS = {"page": "#c62828", "ticket": "#b7791f"}


def burn_chart(
    times: Sequence[datetime],
    burns: Mapping[str, Sequence[float | None]],
    thresholds: Sequence[tuple[str, float, str]],
    *,
    title: str,
) -> Figure | None:
    """Return the burn rate over each trailing window, with the policies' thresholds as dashed lines.

    ``burns`` maps a window's label ("1 h") to one value per time (None: no traffic in that window);
    ``thresholds`` lists (label, factor, severity). None when no window has a value: nothing to draw.
    """
    if not times or all(v is None for series in burns.values() for v in series):
        return None
    x = iso_times(times)
    traces = [
        {
            "type": "scatter",
            "x": x,
            "y": list(series),
            "mode": "lines",
            "name": f"burn over {label}",
            "line": {"color": WINDOW_COLORS[i % len(WINDOW_COLORS)], "width": 2},
            "connectgaps": False,
            "hovertemplate": f"{label}: %{{y:.2f}}<extra></extra>",
        }
        for i, (label, series) in enumerate(burns.items())
    ]
    shapes, notes = _threshold_lines(thresholds)
    return plain_figure(
        traces,
        y_title="Burn rate (x budget)",
        margin={"l": 56, "r": 16, "t": 40, "b": 40},
        title={"text": title, "font": {"size": 13}, "x": 0, "y": 0.99},
        yaxis={"rangemode": "tozero"},
        shapes=shapes,
        annotations=notes,
    )


def _threshold_lines(thresholds: Sequence[tuple[str, float, str]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A dashed line across the plot at each distinct factor, labelled with its severity and windows."""
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    seen: set[float] = set()
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

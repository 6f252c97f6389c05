"""Plotly figures for the drift page: plain data in, a plain dict ``Figure`` (or None for "no data") out.

Each test over time is drawn as its p-value per window on a log axis with the test's threshold
(alpha; alpha over the classes for the softmax KS test) as a dashed line, one trace per window kind;
alerting windows are red. The prediction test also gets its effect size, PSI, with its threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modeling.charts import ACCENT, GREEN, GREY, ORANGE, Figure, Trace, iso_times, plain_figure

RED = "#c8322f"
WINDOW_COLORS = {"hourly": ACCENT, "daily": GREEN, "on_demand": ORANGE}
WINDOW_NAMES = {"hourly": "Hourly", "daily": "Daily", "on_demand": "On demand"}
P_FLOOR = 1e-12  # a p-value of 0 (or one below float precision) is drawn at the floor of the log axis

Point = Mapping[str, Any]


def _figure(traces: list[Trace], *, title: str, y_title: str, yaxis: dict[str, Any] | None = None) -> Figure:
    """A short card with its title inside the figure and the legend top right, out of the title's way."""
    return plain_figure(
        traces,
        x_title="Window end (UTC)",
        y_title=y_title,
        height=260,
        margin={"l": 56, "r": 16, "t": 44, "b": 44},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 1, "xanchor": "right"},
        hovermode="closest",
        title={"text": title, "font": {"size": 13}, "x": 0, "y": 0.98},
        yaxis=yaxis,
    )


def p_value_chart(points: Sequence[Point], *, title: str) -> Figure | None:
    """Return the p-value per window with the threshold line, or None when no window ran the test."""
    tested = [p for p in points if p.get("p_value") is not None]
    if not tested:
        return None
    traces = [
        _p_value_trace(window, mine)
        for window in WINDOW_NAMES
        if (mine := [p for p in tested if p["window"] == window])
    ]
    thresholds = [p for p in tested if p.get("threshold") is not None]
    if thresholds:
        traces.append(
            {
                "type": "scatter",
                "x": iso_times(p["time"] for p in thresholds),
                "y": [float(p["threshold"]) for p in thresholds],
                "mode": "lines",
                "name": "Threshold",
                "line": {"color": GREY, "dash": "dash", "width": 1},
                "hovertemplate": "threshold %{y:.3g}<extra></extra>",
            }
        )
    return _figure(traces, title=title, y_title="p-value (log)", yaxis={"type": "log"})


def _p_value_trace(window: str, mine: Sequence[Point]) -> Trace:
    """One window kind's p-values, alerting windows' markers in red."""
    return {
        "type": "scatter",
        "x": iso_times(p["time"] for p in mine),
        "y": [max(float(p["p_value"]), P_FLOOR) for p in mine],
        "customdata": [[p["n"], p["statistic"]] for p in mine],
        "mode": "lines+markers",
        "name": WINDOW_NAMES[window],
        "line": {"color": WINDOW_COLORS[window], "width": 1.5},
        "marker": {"color": [RED if p["alert"] else WINDOW_COLORS[window] for p in mine], "size": 7},
        "hovertemplate": "%{x}<br>p = %{y:.3g}<br>statistic %{customdata[1]:.4g}<br>n = %{customdata[0]}"
        "<extra>" + WINDOW_NAMES[window] + "</extra>",
    }


def psi_chart(points: Sequence[Point]) -> Figure | None:
    """Return the prediction distribution's PSI per window with its threshold, or None without data."""
    tested = [p for p in points if p.get("psi") is not None]
    if not tested:
        return None
    x = iso_times(p["time"] for p in tested)
    traces: list[Trace] = [
        {
            "type": "scatter",
            "x": x,
            "y": [float(p["psi"]) for p in tested],
            "mode": "lines+markers",
            "name": "PSI",
            "line": {"color": ACCENT, "width": 1.5},
            "marker": {"color": [RED if p["alert"] else ACCENT for p in tested], "size": 7},
            "hovertemplate": "%{x}<br>PSI %{y:.4f}<extra></extra>",
        },
        {
            "type": "scatter",
            "x": x,
            "y": [float(p.get("psi_threshold") or 0.1) for p in tested],
            "mode": "lines",
            "name": "Threshold",
            "line": {"color": GREY, "dash": "dash", "width": 1},
        },
    ]
    return _figure(traces, title="Predicted-label distribution: PSI", y_title="PSI")

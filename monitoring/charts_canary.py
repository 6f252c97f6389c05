"""Plotly figures of the canary/shadow agreement page: plain data in, a plain dict ``Figure`` out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from modeling.charts import ACCENT, BLUES, GREY, ORANGE, Figure, Trace, plain_figure
from monitoring.stats.agreement import LabelShift, SeriesPoint, Transitions

COLORS = {"production": GREY, "shadow": ACCENT, "canary": ORANGE}


def agreement_over_time(series: Mapping[str, Sequence[SeriesPoint]]) -> Figure:
    """Return each route's agreement with production per time bucket, with its Wilson band.

    Empty buckets are gaps (None), not zeros: no traffic is not disagreement.
    """
    traces = [trace for route, points in series.items() for trace in _agreement_traces(route, points)]
    return plain_figure(
        traces,
        x_title="Time (UTC)",
        y_title="Agreement with production",
        yaxis={"range": [0, 1.02], "tickformat": ".0%"},
    )


def _agreement_traces(route: str, points: Sequence[SeriesPoint]) -> list[Trace]:
    """The Wilson band as a fill between two invisible lines (high, then low filled up to it), then the value."""
    x = [datetime.fromtimestamp(p.start, tz=UTC).isoformat() for p in points]
    color = COLORS.get(route, ACCENT)
    edge = {"type": "scatter", "x": x, "mode": "lines", "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False}
    intervals = [p.agreement.interval for p in points]
    return [
        {**edge, "y": [i.high if i else None for i in intervals]},
        {**edge, "y": [i.low if i else None for i in intervals], "fill": "tonexty", "fillcolor": _translucent(color)},
        {
            "type": "scatter",
            "x": x,
            "y": [p.agreement.value for p in points],
            "mode": "lines+markers",
            "name": f"{route} vs production",
            "line": {"color": color},
            "customdata": [p.agreement.n for p in points],
            "hovertemplate": f"{route}: %{{y:.1%}} agree (n = %{{customdata}})<extra></extra>",
        },
    ]


def transition_heatmap(matrix: Transitions, *, other: str) -> Figure:
    """Return production label (rows) -> other label (columns), cells counted, coloured by row share."""
    shares = [[count / sum(row) if sum(row) else 0.0 for count in row] for row in matrix.counts]
    heatmap: Trace = {
        "type": "heatmap",
        "z": shares,
        "x": matrix.labels,
        "y": matrix.labels,
        "text": [[str(count) for count in row] for row in matrix.counts],
        "texttemplate": "%{text}",
        "hovertemplate": f"production %{{y}} → {other} %{{x}}<br>%{{text}} predictions<extra></extra>",
        "colorscale": BLUES,
        "zmin": 0,
        "zmax": 1,
        "colorbar": {"title": {"text": "Row share"}, "tickformat": ".0%"},
        "xgap": 1,
        "ygap": 1,
    }
    return plain_figure(
        [heatmap],
        x_title=f"{other.capitalize()} label",
        y_title="Production label",
        height=min(720, 60 * len(matrix.labels) + 160),
        hovermode="closest",
        yaxis={"autorange": "reversed"},
    )


def label_mix(shift: LabelShift, *, other: str) -> Figure:
    """Return each label's share of production's and the other version's predictions, with Wilson error bars."""
    labels = [share.label for share in shift.shares]
    traces: list[Trace] = []
    for name, side in (("production", "production"), (other, "other")):
        shares = [getattr(share, side) for share in shift.shares]
        traces.append(
            {
                "type": "bar",
                "x": labels,
                "y": [s.value for s in shares],
                "name": name,
                "marker": {"color": COLORS.get(name, ACCENT)},
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [s.interval.high - s.value if s.interval and s.value is not None else 0 for s in shares],
                    "arrayminus": [
                        s.value - s.interval.low if s.interval and s.value is not None else 0 for s in shares
                    ],
                },
                "customdata": [s.n for s in shares],
                "hovertemplate": f"{name}: %{{y:.1%}} of %{{customdata}}<extra></extra>",
            }
        )
    return plain_figure(
        traces,
        x_title="Label",
        y_title="Share of predictions",
        barmode="group",
        yaxis={"tickformat": ".0%", "rangemode": "tozero"},
    )


def confidence_histograms(histograms: Mapping[str, Sequence[int]]) -> Figure:
    """Return each route's distribution of the top calibrated probability, as shares of its predictions."""
    traces: list[Trace] = []
    for route, counts in histograms.items():
        total = sum(counts)
        if not total:
            continue
        width = 1.0 / len(counts)
        traces.append(
            {
                "type": "bar",
                "x": [(i + 0.5) * width for i in range(len(counts))],
                "y": [count / total for count in counts],
                "width": width,
                "name": route,
                "marker": {"color": COLORS.get(route, ACCENT)},
                "opacity": 0.6,
                "customdata": list(counts),
                "hovertemplate": f"{route}: %{{y:.1%}} (%{{customdata}}) near %{{x:.2f}}<extra></extra>",
            }
        )
    return plain_figure(
        traces,
        x_title="Confidence (calibrated top probability)",
        y_title="Share of predictions",
        barmode="overlay",
        hovermode="closest",
        xaxis={"range": [0, 1]},
        yaxis={"tickformat": ".0%"},
    )


def _translucent(hex_color: str, alpha: float = 0.18) -> str:
    red, green, blue = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"

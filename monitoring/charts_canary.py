"""Plotly figures of the canary/shadow agreement page: plain data in, a ``Figure`` out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import plotly.graph_objects as go

from modeling.charts import ACCENT, GREY, ORANGE, _layout
from monitoring.stats.agreement import LabelShift, SeriesPoint, Transitions

COLORS = {"production": GREY, "shadow": ACCENT, "canary": ORANGE}


def agreement_over_time(series: Mapping[str, Sequence[SeriesPoint]]) -> go.Figure:
    """Return each route's agreement with production per time bucket, with its Wilson band.

    Empty buckets are gaps (None), not zeros: no traffic is not disagreement.
    """
    fig = go.Figure()
    for route, points in series.items():
        x = [datetime.fromtimestamp(p.start, tz=UTC).isoformat() for p in points]
        value = [p.agreement.value for p in points]
        low = [p.agreement.interval.low if p.agreement.interval else None for p in points]
        high = [p.agreement.interval.high if p.agreement.interval else None for p in points]
        color = COLORS.get(route, ACCENT)
        fig.add_trace(go.Scatter(x=x, y=high, mode="lines", line={"width": 0}, hoverinfo="skip", showlegend=False))
        fig.add_trace(
            go.Scatter(
                x=x,
                y=low,
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor=_translucent(color),
                hoverinfo="skip",
                showlegend=False,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=value,
                mode="lines+markers",
                name=f"{route} vs production",
                line={"color": color},
                customdata=[p.agreement.n for p in points],
                hovertemplate=f"{route}: %{{y:.1%}} agree (n = %{{customdata}})<extra></extra>",
            )
        )
    fig = _layout(fig, x_title="Time (UTC)", y_title="Agreement with production")
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return fig


def transition_heatmap(matrix: Transitions, *, other: str) -> go.Figure:
    """Return production label (rows) -> other label (columns), cells counted, coloured by row share."""
    shares = [[count / sum(row) if sum(row) else 0.0 for count in row] for row in matrix.counts]
    fig = go.Figure(
        go.Heatmap(
            z=shares,
            x=matrix.labels,
            y=matrix.labels,
            text=[[str(count) for count in row] for row in matrix.counts],
            texttemplate="%{text}",
            hovertemplate=f"production %{{y}} → {other} %{{x}}<br>%{{text}} predictions<extra></extra>",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": {"text": "Row share"}, "tickformat": ".0%"},
            xgap=1,
            ygap=1,
        )
    )
    fig = _layout(
        fig,
        x_title=f"{other.capitalize()} label",
        y_title="Production label",
        height=min(720, 60 * len(matrix.labels) + 160),
    )
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(autorange="reversed")
    return fig


def label_mix(shift: LabelShift, *, other: str) -> go.Figure:
    """Return each label's share of production's and the other version's predictions, with Wilson error bars."""
    fig = go.Figure()
    for name, side in (("production", "production"), (other, "other")):
        shares = [getattr(share, side) for share in shift.shares]
        values = [s.value for s in shares]
        fig.add_trace(
            go.Bar(
                x=[share.label for share in shift.shares],
                y=values,
                name=name,
                marker_color=COLORS.get(name, ACCENT),
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [s.interval.high - s.value if s.interval and s.value is not None else 0 for s in shares],
                    "arrayminus": [
                        s.value - s.interval.low if s.interval and s.value is not None else 0 for s in shares
                    ],
                },
                customdata=[s.n for s in shares],
                hovertemplate=f"{name}: %{{y:.1%}} of %{{customdata}}<extra></extra>",
            )
        )
    fig = _layout(fig, x_title="Label", y_title="Share of predictions")
    fig.update_layout(barmode="group", hovermode="x unified")
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return fig


def confidence_histograms(histograms: Mapping[str, Sequence[int]]) -> go.Figure:
    """Return each route's distribution of the top calibrated probability, as shares of its predictions."""
    fig = go.Figure()
    for route, counts in histograms.items():
        total = sum(counts)
        if not total:
            continue
        width = 1.0 / len(counts)
        fig.add_trace(
            go.Bar(
                x=[(i + 0.5) * width for i in range(len(counts))],
                y=[count / total for count in counts],
                width=width,
                name=route,
                marker_color=COLORS.get(route, ACCENT),
                opacity=0.6,
                customdata=counts,
                hovertemplate=f"{route}: %{{y:.1%}} (%{{customdata}}) near %{{x:.2f}}<extra></extra>",
            )
        )
    fig = _layout(fig, x_title="Confidence (calibrated top probability)", y_title="Share of predictions")
    fig.update_layout(barmode="overlay", hovermode="closest")
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(tickformat=".0%")
    return fig


def _translucent(hex_color: str, alpha: float = 0.18) -> str:
    red, green, blue = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"

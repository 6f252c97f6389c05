"""Plotly figures for the model version pages: plain data in, a `go.Figure` out (no Django).

The pages embed `fig.to_json()` and draw it with the vendored plotly.js, so every figure here is
complete on its own: traces, axis titles, ranges. The training curves are rebuilt from the growing
history on each poll, so they must accept a history of any length, including an empty one.

The monitoring pages build their figures as plain dicts instead (`Figure`, `plain_figure`): they must
answer in 300 ms, and graph_objects' validation and deep copies made the SLO burn chart (4 x 1,440 points)
cost 78 ms to build and encode, against 5 ms for the same JSON from dicts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import plotly.graph_objects as go

ACCENT = "#2f6fde"
ORANGE = "#e07b24"
GREEN = "#2e8540"
GREY = "#9aa1ae"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Noto Sans, sans-serif"

HistoryPoint = Mapping[str, Any]
ReliabilityBin = Mapping[str, Any]


# The pages' look spelled out on an empty template: a named one ("plotly_white") is deep-copied into every
# figure and its JSON, ~12 ms and 7 kB per chart (most of a monitoring page's server time).
LIGHT = {"template": go.layout.Template(), "plot_bgcolor": "white", "paper_bgcolor": "white"}


Figure = dict[str, Any]
"""A plotly figure as plain data, ``{"data": [trace, ...], "layout": {...}}``, as plotly.js reads it."""
Trace = dict[str, Any]

GRID = "#eef0f4"
TEXT = "#1d2330"
# ColorBrewer "Blues", light to dark: what graph_objects expand the name "Blues" to. plotly.js has a
# "Blues" of its own (dark to light, other hues), so a plain figure must spell the scale out.
BLUES = [
    [i / 8, color]
    for i, color in enumerate(
        ("rgb(247,251,255)", "rgb(222,235,247)", "rgb(198,219,239)", "rgb(158,202,225)", "rgb(107,174,214)",
         "rgb(66,146,198)", "rgb(33,113,181)", "rgb(8,81,156)", "rgb(8,48,107)")
    )
]  # fmt: skip


def figure_json(fig: go.Figure | Figure | None) -> dict[str, Any] | None:
    """Return a figure as the plain JSON plotly.js draws: NaN and infinities as null, dates as ISO strings.

    A plain dict figure skips plotly's validation, and its encoder too: that one tries five converters per
    datetime and re-encodes the whole JSON when it holds a NaN (27 ms against 9.5 ms here for 4 x 1,440
    datetimes with a NaN; 7.8 against 4.3 ms with ISO strings). None stays None: the page's chart slot then
    says "no data".
    """
    if fig is None:
        return None
    if isinstance(fig, dict):
        plain: dict[str, Any] = json.loads(json.dumps(fig, default=_json_default), parse_constant=_null)
        return plain
    data: dict[str, Any] = json.loads(fig.to_json())
    return data


def _json_default(value: object) -> object:
    """Encode what plotly's encoder would: dates as ``isoformat()``, NumPy values as lists, decimals as floats."""
    if isinstance(value, date):  # datetimes too, with their offset: "2025-03-01T00:00:00+00:00"
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _null(_constant: str) -> None:
    """NaN, Infinity and -Infinity (Python's JSON extensions) become null: plotly.js leaves a gap."""
    return None


def iso_times(times: Iterable[date]) -> list[str]:
    """Return each datetime as the ISO string plotly writes for it, formatted once for all of a chart's traces."""
    return [t.isoformat() for t in times]


def plain_figure(
    traces: list[Trace],
    *,
    x_title: str | None = None,
    y_title: str | None = None,
    height: int = 320,
    font_size: int = 12,
    xaxis: Mapping[str, Any] | None = None,
    yaxis: Mapping[str, Any] | None = None,
    **layout: Any,
) -> Figure:
    """Return a plain figure with the pages' look: white, a light grid, no zero line, the legend on top.

    ``xaxis``/``yaxis`` add to or override the axis defaults, ``layout`` any other layout key (``margin``,
    ``hovermode``, ``shapes``…). No template: plotly.js then applies none, as with ``go.layout.Template()``.
    """
    return {
        "data": traces,
        "layout": {
            "height": height,
            "margin": {"l": 56, "r": 16, "t": 36, "b": 48},
            "font": {"family": FONT, "size": font_size, "color": TEXT},
            "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
            "hovermode": "x unified",
            "plot_bgcolor": "white",
            "paper_bgcolor": "white",
            "xaxis": _plain_axis(x_title, xaxis),
            "yaxis": _plain_axis(y_title, yaxis),
            **layout,
        },
    }


def _plain_axis(title: str | None, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    axis: dict[str, Any] = {"gridcolor": GRID, "zeroline": False}
    if title is not None:
        axis["title"] = {"text": title}
    return {**axis, **(extra or {})}


def _layout(fig: go.Figure, *, x_title: str, y_title: str, height: int = 320) -> go.Figure:
    """Apply the pages' common look: white background, small margins, legend on top."""
    fig.update_layout(
        **LIGHT,
        height=height,
        margin={"l": 56, "r": 16, "t": 36, "b": 48},
        font={"family": FONT, "size": 12, "color": "#1d2330"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        hovermode="x unified",
    )
    fig.update_xaxes(title_text=x_title, gridcolor="#eef0f4", zeroline=False)
    fig.update_yaxes(title_text=y_title, gridcolor="#eef0f4", zeroline=False)
    return fig


def loss_curve(history: Sequence[HistoryPoint]) -> go.Figure:
    """Return the training loss by optimizer step (points without a loss are skipped)."""
    points = [p for p in history if p.get("loss") is not None]
    fig = go.Figure(
        go.Scatter(
            x=[p["step"] for p in points],
            y=[p["loss"] for p in points],
            customdata=[p.get("epoch") for p in points],
            mode="lines+markers" if len(points) < 40 else "lines",
            name="Training loss",
            line={"color": ACCENT, "width": 2},
            hovertemplate="step %{x}<br>epoch %{customdata:.2f}<br>loss %{y:.4f}<extra></extra>",
        )
    )
    return _layout(fig, x_title="Step", y_title="Loss")


def eval_curve(history: Sequence[HistoryPoint]) -> go.Figure:
    """Return accuracy and macro-F1 on the eval split at every step that was evaluated."""
    points = [p for p in history if p.get("eval")]
    fig = go.Figure()
    for key, name, color in (("macro_f1", "Macro-F1", ACCENT), ("accuracy", "Accuracy", ORANGE)):
        shown = [p for p in points if p["eval"].get(key) is not None]
        fig.add_trace(
            go.Scatter(
                x=[p["step"] for p in shown],
                y=[p["eval"][key] for p in shown],
                mode="lines+markers",
                name=name,
                line={"color": color, "width": 2},
                hovertemplate=f"{name} %{{y:.3f}}<extra></extra>",
            )
        )
    fig = _layout(fig, x_title="Step", y_title="Score")
    fig.update_yaxes(range=[0, 1.02])
    return fig


def confusion_heatmap(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> go.Figure:
    """Return the confusion matrix: cells annotated with counts, coloured by share of the true class.

    Row-normalising the colour keeps a rare class's errors visible next to a frequent class's hits.
    """
    shares = []
    for row in matrix:
        total = sum(row)
        shares.append([count / total if total else 0.0 for count in row])
    names = list(labels)
    fig = go.Figure(
        go.Heatmap(
            z=shares,
            x=names,
            y=names,
            text=[[str(count) for count in row] for row in matrix],
            texttemplate="%{text}",
            customdata=[[f"{share:.0%}" for share in row] for row in shares],
            hovertemplate="true %{y}<br>predicted %{x}<br>%{text} items (%{customdata} of the row)<extra></extra>",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": {"text": "Row share"}, "tickformat": ".0%"},
            xgap=1,
            ygap=1,
        )
    )
    side = max(300, 60 * len(names) + 140)
    fig = _layout(fig, x_title="Predicted", y_title="True", height=min(side, 720))
    fig.update_layout(hovermode="closest")
    # The first class at the top, as in a printed table.
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", side="bottom")
    return fig


def reliability_diagram(bins_before: Sequence[ReliabilityBin], bins_after: Sequence[ReliabilityBin]) -> go.Figure:
    """Return accuracy against confidence per bin, before and after temperature scaling.

    Empty bins have no accuracy and are left out; the diagonal is perfect calibration.
    """
    series = [("Before calibration", bins_before, ORANGE), ("After calibration", bins_after, ACCENT)]
    return reliability_curves(series, square=True)


def reliability_curves(series: Sequence[tuple[str, Sequence[Mapping[str, Any]], str]], *, square: bool) -> go.Figure:
    """Return one reliability curve per (name, bins, colour) over the perfect-calibration diagonal.

    ``square`` keeps the axes 1:1; a wide card would stretch the x range past [0, 1] to do so.
    """
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
    for name, bins, color in series:
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
    if square:
        fig.update_yaxes(range=[0, 1.02], scaleanchor="x", scaleratio=1)
    else:
        fig.update_yaxes(range=[0, 1.02])
    return fig


def per_class_bars(per_class: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Return precision, recall and F1 per class as grouped bars."""
    labels = [c["label"] for c in per_class]
    fig = go.Figure()
    for key, name, color in (("precision", "Precision", GREY), ("recall", "Recall", ORANGE), ("f1", "F1", ACCENT)):
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[c[key] for c in per_class],
                name=name,
                marker_color=color,
                hovertemplate=f"{name} %{{y:.3f}}<extra></extra>",
            )
        )
    fig = _layout(fig, x_title="Class", y_title="Score")
    fig.update_layout(barmode="group")
    fig.update_xaxes(type="category")
    fig.update_yaxes(range=[0, 1.02])
    return fig


def learning_curve(points: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Return eval macro-F1 by gold training labels, one marker per version, with its 95% CI as error bars.

    `points` are the learning-curve API's points: version, gold_labels, macro_f1, macro_f1_ci ({low, high}
    or None), automatic. Automatic versions get hollow markers.
    """
    upper = [p["macro_f1_ci"]["high"] - p["macro_f1"] if p.get("macro_f1_ci") else 0.0 for p in points]
    lower = [p["macro_f1"] - p["macro_f1_ci"]["low"] if p.get("macro_f1_ci") else 0.0 for p in points]
    fig = go.Figure(
        go.Scatter(
            x=[p["gold_labels"] for p in points],
            y=[p["macro_f1"] for p in points],
            text=[f"v{p['version']}" for p in points],
            customdata=[
                [p["macro_f1_ci"]["low"], p["macro_f1_ci"]["high"]] if p.get("macro_f1_ci") else [None, None]
                for p in points
            ],
            mode="lines+markers+text",
            textposition="top center",
            name="Eval macro-F1",
            line={"color": ACCENT, "width": 2},
            marker={
                "size": 9,
                "color": ACCENT,
                "symbol": ["circle-open" if p.get("automatic") else "circle" for p in points],
                "line": {"width": 2, "color": ACCENT},
            },
            error_y={"type": "data", "symmetric": False, "array": upper, "arrayminus": lower, "color": GREY},
            hovertemplate=(
                "%{text}<br>%{x} gold labels<br>macro-F1 %{y:.3f}"
                "<br>95% CI [%{customdata[0]:.3f}, %{customdata[1]:.3f}]<extra></extra>"
            ),
        )
    )
    fig = _layout(fig, x_title="Gold training labels", y_title="Eval macro-F1", height=360)
    fig.update_layout(hovermode="closest", showlegend=False)
    fig.update_yaxes(range=[0, 1.05])
    return fig


def stability_curve(pairs: Sequence[Mapping[str, Any]], *, threshold: float, window: int) -> go.Figure:
    """Return Cohen's kappa between successive versions on the stop set, the window mean and the threshold.

    `pairs` are the learning-curve API's pairs (from_version, to_version, kappa or None, items); an
    undefined kappa leaves a gap. The mean over the last `window` pairs is drawn where it exists.
    """
    names = [f"v{p['from_version']}→v{p['to_version']}" for p in pairs]
    kappas = [p["kappa"] for p in pairs]
    means: list[float | None] = []
    for end in range(1, len(kappas) + 1):
        recent = kappas[max(0, end - window) : end]
        full = end >= window and all(k is not None for k in recent)
        means.append(sum(k for k in recent if k is not None) / window if full else None)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=names,
            y=kappas,
            customdata=[p["items"] for p in pairs],
            mode="lines+markers",
            name="Kappa, successive versions",
            line={"color": ACCENT, "width": 2},
            hovertemplate="%{x}<br>kappa %{y:.4f}<br>%{customdata} stop-set items<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=names,
            y=means,
            mode="lines",
            name=f"Mean of the last {window}",
            line={"color": GREEN, "width": 2, "dash": "dot"},
            hovertemplate=f"mean of the last {window} %{{y:.4f}}<extra></extra>",
        )
    )
    # A shape across the whole plot width: visible even with one pair on a category axis.
    fig.add_hline(
        y=threshold,
        line={"color": ORANGE, "width": 1.5, "dash": "dash"},
        annotation_text=f"threshold {threshold:g}",
        annotation_position="bottom right",
    )
    fig = _layout(fig, x_title="Successive scored versions", y_title="Cohen's kappa on the stop set", height=340)
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(type="category")
    defined = [k for k in kappas if k is not None]
    fig.update_yaxes(range=[min([0.0, *defined]) - 0.02, 1.02])
    return fig

"""The model version figures: the traces carry the data they were given, nothing dropped or reordered."""

from __future__ import annotations

import json

import pytest

from modeling import charts

HISTORY = [
    {"step": 10, "epoch": 0.25, "loss": 1.08, "lr": 1e-5, "eval": None, "t": 1.0},
    {"step": 20, "epoch": 0.5, "loss": 0.91, "lr": 2e-5, "eval": None, "t": 2.0},
    {"step": 40, "epoch": 1.0, "loss": 0.62, "lr": 3e-5, "eval": {"accuracy": 0.71, "macro_f1": 0.66}, "t": 4.0},
    {"step": 50, "epoch": 1.25, "loss": None, "lr": 3e-5, "eval": None, "t": 5.0},
    {"step": 80, "epoch": 2.0, "loss": 0.41, "lr": 1e-5, "eval": {"accuracy": 0.8, "macro_f1": 0.77}, "t": 8.0},
]


def _bins(pairs: list[tuple[float, float, int]]) -> list[dict[str, float]]:
    width = 1 / len(pairs)
    return [
        {"lower": i * width, "upper": (i + 1) * width, "confidence": conf, "accuracy": acc, "count": count}
        for i, (conf, acc, count) in enumerate(pairs)
    ]


def test_loss_curve_plots_every_step_with_a_loss_in_order():
    fig = charts.loss_curve(HISTORY)
    (trace,) = fig.data
    assert list(trace.x) == [10, 20, 40, 80]
    assert list(trace.y) == [1.08, 0.91, 0.62, 0.41]
    assert trace.name == "Training loss"
    assert fig.layout.xaxis.title.text == "Step"


def test_loss_curve_of_an_empty_history_is_an_empty_trace():
    (trace,) = charts.loss_curve([]).data
    assert list(trace.x) == []


def test_eval_curve_has_macro_f1_and_accuracy_at_evaluated_steps_only():
    fig = charts.eval_curve(HISTORY)
    traces = {trace.name: trace for trace in fig.data}
    assert set(traces) == {"Macro-F1", "Accuracy"}
    assert list(traces["Macro-F1"].x) == [40, 80]
    assert list(traces["Macro-F1"].y) == [0.66, 0.77]
    assert list(traces["Accuracy"].y) == [0.71, 0.8]


def test_confusion_heatmap_annotates_counts_and_colours_by_row_share():
    matrix = [[8, 2, 0], [1, 3, 0], [0, 0, 0]]
    fig = charts.confusion_heatmap(matrix, ["negative", "neutral", "positive"])
    (trace,) = fig.data
    assert trace.type == "heatmap"
    assert [list(row) for row in trace.text] == [["8", "2", "0"], ["1", "3", "0"], ["0", "0", "0"]]
    assert trace.z[0] == pytest.approx([0.8, 0.2, 0.0])
    assert trace.z[1] == pytest.approx([0.25, 0.75, 0.0])
    assert list(trace.z[2]) == [0.0, 0.0, 0.0]  # a class with no eval examples: no division by zero
    assert list(trace.x) == ["negative", "neutral", "positive"]
    assert list(trace.y) == ["negative", "neutral", "positive"]
    assert trace.texttemplate == "%{text}"
    assert fig.layout.yaxis.autorange == "reversed"


def test_reliability_diagram_has_the_diagonal_and_both_curves_without_empty_bins():
    before = _bins([(0.1, 0.0, 0), (0.5, 0.3, 4), (0.9, 0.6, 10)])
    after = _bins([(0.15, 0.1, 2), (0.55, 0.5, 5), (0.8, 0.75, 7)])
    fig = charts.reliability_diagram(before, after)
    traces = {trace.name: trace for trace in fig.data}
    assert set(traces) == {"Perfect calibration", "Before calibration", "After calibration"}
    assert list(traces["Perfect calibration"].x) == [0, 1]
    assert list(traces["Perfect calibration"].y) == [0, 1]
    assert list(traces["Before calibration"].x) == [0.5, 0.9]
    assert list(traces["Before calibration"].y) == [0.3, 0.6]
    assert list(traces["After calibration"].x) == [0.15, 0.55, 0.8]
    assert [row[0] for row in traces["After calibration"].customdata] == [2, 5, 7]


def test_per_class_bars_group_precision_recall_and_f1_by_label():
    per_class = [
        {"label": "neg", "precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 10},
        {"label": "pos", "precision": 0.5, "recall": 0.6, "f1": 0.55, "support": 4},
    ]
    fig = charts.per_class_bars(per_class)
    traces = {trace.name: trace for trace in fig.data}
    assert list(traces["Recall"].y) == [0.8, 0.6]
    assert list(traces["F1"].x) == ["neg", "pos"]
    assert fig.layout.barmode == "group"


def test_figures_serialise_to_json_that_plotly_js_reads():
    data = json.loads(charts.loss_curve(HISTORY).to_json())
    assert data["data"][0]["y"] == [1.08, 0.91, 0.62, 0.41]
    assert data["layout"]["yaxis"]["title"]["text"] == "Loss"

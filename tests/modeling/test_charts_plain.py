"""Plain dict figures (the monitoring pages'): the JSON they give is the JSON plotly's own encoder gives."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import plotly.graph_objects as go
from plotly.io.json import to_json_plotly

from modeling import charts

TIMES = [datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 1, 0, 1, 30, 250000, tzinfo=timezone(timedelta(hours=2)))]


def test_a_plain_figure_becomes_the_json_plotlys_encoder_writes():
    trace = {
        "type": "scatter",
        "x": TIMES,
        "y": [1.5, math.nan],
        "customdata": np.array([1, 2]),
        "text": [Decimal("0.5"), math.inf, np.int64(3)],
    }
    figure = {"data": [trace], "layout": {"title": {"text": "</script> ünïcode"}}}
    plain = charts.figure_json(figure)
    assert plain == json.loads(to_json_plotly(figure))
    (drawn,) = plain["data"]
    assert drawn["x"] == ["2025-03-01T00:00:00+00:00", "2025-03-01T00:01:30.250000+02:00"]  # offsets kept
    assert drawn["y"] == [1.5, None] and drawn["text"] == [0.5, None, 3]  # NaN and infinities: gaps
    assert drawn["customdata"] == [1, 2] and plain["layout"]["title"]["text"] == "</script> ünïcode"


def test_iso_times_match_the_encoder_so_preformatted_and_raw_datetimes_draw_alike():
    assert charts.iso_times(TIMES) == charts.figure_json({"data": [{"x": TIMES}], "layout": {}})["data"][0]["x"]


def test_figure_json_keeps_none_and_still_takes_a_graph_objects_figure():
    assert charts.figure_json(None) is None
    drawn = charts.figure_json(go.Figure(go.Scatter(x=TIMES, y=[1, math.nan])))
    assert drawn["data"][0]["x"][0] == "2025-03-01T00:00:00+00:00" and drawn["data"][0]["y"] == [1, None]


def test_plain_figure_merges_axis_and_layout_overrides_into_the_common_look():
    figure = charts.plain_figure([], x_title="time", yaxis={"type": "log"}, height=200, hovermode="closest")
    layout = figure["layout"]
    assert layout["xaxis"] == {"gridcolor": charts.GRID, "zeroline": False, "title": {"text": "time"}}
    assert layout["yaxis"] == {"gridcolor": charts.GRID, "zeroline": False, "type": "log"}  # no title: none drawn
    assert (layout["height"], layout["hovermode"], layout["plot_bgcolor"]) == (200, "closest", "white")
    assert "template" not in layout and figure["data"] == []


def test_blues_is_the_scale_graph_objects_expand_the_name_to():
    heatmap = json.loads(go.Figure(go.Heatmap(z=[[1]], colorscale="Blues")).to_json())["data"][0]
    assert heatmap["colorscale"] == charts.BLUES

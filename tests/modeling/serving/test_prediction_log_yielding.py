"""The prediction log's writer hands the GIL over between rows (see ``prediction_log._yielding``)."""

from __future__ import annotations

from modeling.services.serving import prediction_log


def test_yielding_passes_every_item_in_order_and_sleeps_zero_after_each_full_stretch(monkeypatch):
    sleeps: list[tuple[float, int]] = []
    seen: list[int] = []
    monkeypatch.setattr(prediction_log.time, "sleep", lambda seconds: sleeps.append((seconds, len(seen))))
    for item in prediction_log._yielding(range(10), every=4):
        seen.append(item)
    assert seen == list(range(10))
    assert sleeps == [(0, 4), (0, 8)]  # after the 4th and the 8th item, none for the last two

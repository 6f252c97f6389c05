"""The stabilizing-predictions stopping rule against hand-computed means."""

from __future__ import annotations

import pytest

from modeling.ml.stopping import stabilizing_predictions


def test_fewer_pairs_than_the_window_never_stop_and_say_how_many_there_are():
    decision = stabilizing_predictions([1.0, 1.0], threshold=0.99, window=3)
    assert (decision.stop, decision.mean_kappa) == (False, None)
    assert "needs 3 comparisons" in decision.reason and "there are 2 so far" in decision.reason
    assert "there is 1 so far" in stabilizing_predictions([1.0]).reason


def test_the_mean_of_the_last_window_pairs_decides():
    # Only the last three count: (0.98 + 1.0 + 0.995) / 3 = 0.991666...
    decision = stabilizing_predictions([0.2, 0.5, 0.98, 1.0, 0.995], threshold=0.99, window=3)
    assert decision.stop is True and decision.mean_kappa == pytest.approx(0.9916666666666667)
    assert "reached the threshold 0.99" in decision.reason
    # (0.8 + 1.0 + 0.7826087) / 3 = 0.8608696: below the threshold.
    below = stabilizing_predictions([0.8, 1.0, 0.36 / 0.46])
    assert below.stop is False and below.mean_kappa == pytest.approx(0.8608695652173913)
    assert "is below the threshold 0.99" in below.reason


def test_a_mean_exactly_at_the_threshold_stops_despite_float_rounding():
    # 0.99 * 3 / 3 is 0.9899999999999999 in binary floating point.
    assert stabilizing_predictions([0.99, 0.99, 0.99], threshold=0.99, window=3).stop is True


def test_an_undefined_kappa_in_the_window_keeps_labeling_and_an_old_one_does_not_matter():
    assert stabilizing_predictions([1.0, None, 1.0]).stop is False
    assert "undefined" in stabilizing_predictions([1.0, None, 1.0]).reason
    assert stabilizing_predictions([None, 1.0, 1.0, 1.0]).stop is True


def test_the_window_and_threshold_are_settings():
    assert stabilizing_predictions([0.9], threshold=0.9, window=1).stop is True
    assert stabilizing_predictions([0.95, 0.97], threshold=0.97, window=2).stop is False
    with pytest.raises(ValueError, match="window"):
        stabilizing_predictions([1.0], window=0)
    with pytest.raises(ValueError, match="threshold"):
        stabilizing_predictions([1.0], threshold=1.5)

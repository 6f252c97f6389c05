"""When to stop labeling: the "stabilizing predictions" rule, in pure Python.

Bloodgood & Vijay-Shanker (2009), "A method for stopping active learning based on stabilizing
predictions and the need for user-adjustable stopping" (CoNLL): keep a fixed stop set of unlabeled
examples, measure Cohen's kappa between each model's predictions on it and the previous model's, and
stop once the mean kappa over the last `window` pairs (3 in the paper) reaches `threshold` (0.99).
Kappa itself is computed by the caller (``labeling.stats.agreement.cohen_kappa``); this module
decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_THRESHOLD = 0.99
DEFAULT_WINDOW = 3


@dataclass(frozen=True)
class StopDecision:
    """Whether to stop, the mean kappa behind it (None when it cannot be computed yet) and why, in words."""

    stop: bool
    mean_kappa: float | None
    threshold: float
    window: int
    reason: str


def stabilizing_predictions(
    kappas: Sequence[float | None], *, threshold: float = DEFAULT_THRESHOLD, window: int = DEFAULT_WINDOW
) -> StopDecision:
    """Return the stopping decision for the kappas of successive model pairs, oldest first.

    A kappa of None (undefined: both models predicted one and the same class for every stop-set item)
    inside the window means the signal cannot say the predictions stabilised, so labeling goes on.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    if not -1.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (-1, 1], got {threshold}")
    if len(kappas) < window:
        return StopDecision(
            stop=False,
            mean_kappa=None,
            threshold=threshold,
            window=window,
            reason=(
                f"the signal needs {window} comparisons of successive versions on the stop set; "
                f"there {'is' if len(kappas) == 1 else 'are'} {len(kappas)} so far"
            ),
        )
    recent = list(kappas[-window:])
    if any(kappa is None for kappa in recent):
        return StopDecision(
            stop=False,
            mean_kappa=None,
            threshold=threshold,
            window=window,
            reason="kappa is undefined for a recent pair: both versions predicted one class for every stop-set item",
        )
    mean = sum(kappa for kappa in recent if kappa is not None) / window
    # A tolerance for the sum's rounding: three kappas of exactly 0.99 average to 0.9899999999999999.
    stop = mean >= threshold - 1e-12
    relation = "reached" if stop else "is below"
    return StopDecision(
        stop=stop,
        mean_kappa=mean,
        threshold=threshold,
        window=window,
        reason=f"the mean kappa over the last {window} pairs, {mean:.4f}, {relation} the threshold {threshold:g}",
    )

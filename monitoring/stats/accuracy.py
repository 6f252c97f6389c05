"""Accuracy of served predictions from ground truth, and estimated accuracy without it (pure; no Django).

Inputs are counts, never rows: a confusion matrix (true label x predicted label) folded from the
outcome rollups, or the sum of max-probabilities over served predictions. Outputs are dataclasses.

- ``wilson_interval``: the Wilson score interval of a binomial proportion (Wilson 1927). Unlike the
  Wald interval it stays inside [0, 1] and keeps close to its nominal coverage at small n or at
  accuracies near 0 or 1, which is where monitoring lives (a few dozen audited predictions an hour,
  accuracy around 0.9).
- ``macro_f1_interval``: macro-F1 with a percentile bootstrap interval, resampling the confusion cells
  from a multinomial (see the function for why that is the item bootstrap).
- ``class_metrics``: per-class precision and recall with their Wilson intervals.
- ``estimated_accuracy``: the mean calibrated max-probability ("average confidence", the simplest
  confidence-based performance estimate, cf. CBPE in NannyML and Guillory et al. 2021, "Predicting with
  confidence on unseen distribution shifts"). It equals the expected accuracy only when (1) the
  probabilities are calibrated on the traffic being served, i.e. the temperature fitted on the eval split
  still holds, and (2) the shift, if any, is a covariate shift that keeps P(label | text) fixed. A concept
  shift (the same texts now mean another label) leaves confidence unchanged and is invisible to it: that
  is why the pages show it beside the measured accuracy, never instead of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile
BOOTSTRAP_SAMPLES = 1_000


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class Proportion:
    """A measured share (successes / n) with its interval; ``value`` is None when n is 0."""

    successes: int
    n: int
    value: float | None
    interval: Interval | None


@dataclass(frozen=True)
class ClassMetrics:
    label: str
    support: int  # true instances of the class
    predicted: int  # predictions of the class
    precision: Proportion  # of the predictions of this class, the share that were right
    recall: Proportion  # of the true instances of this class, the share found


@dataclass(frozen=True)
class MacroF1:
    value: float | None
    interval: Interval | None
    n: int
    classes: int  # classes the mean is over (those seen as truth or prediction)


@dataclass(frozen=True)
class Estimate:
    """Estimated accuracy from calibrated confidence over ``n`` served predictions."""

    value: float | None
    n: int


Confusion = Mapping[tuple[str, str], int]  # (true label, predicted label) -> count


def wilson_interval(successes: int, n: int, *, z: float = Z_95) -> Proportion:
    """Return the proportion successes/n with its Wilson score interval (None values when n is 0)."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return Proportion(0, 0, None, None)
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    # Clamp rounding only: mathematically the interval is inside [0, 1] already.
    return Proportion(successes, n, p, Interval(max(0.0, centre - half), min(1.0, centre + half)))


def accuracy(confusion: Confusion) -> Proportion:
    """Return the share of correct predictions (the diagonal) with its Wilson interval."""
    n = sum(confusion.values())
    correct = sum(count for (true, predicted), count in confusion.items() if true == predicted)
    return wilson_interval(correct, n)


def _labels(confusion: Confusion, labels: Sequence[str] | None) -> list[str]:
    seen = {label for pair in confusion for label in pair}
    ordered = list(labels or [])
    return ordered + sorted(seen - set(ordered))


def confusion_matrix(confusion: Confusion, labels: Sequence[str] | None = None) -> tuple[list[str], list[list[int]]]:
    """Return (labels, rows of counts): row = true label, column = predicted label."""
    names = _labels(confusion, labels)
    return names, [[int(confusion.get((true, predicted), 0)) for predicted in names] for true in names]


def _macro_f1_of(matrices: np.ndarray) -> tuple[np.ndarray, int]:
    """Macro-F1 of each k x k matrix in a (B, k, k) stack, over the classes seen in the observed matrix.

    F1 of a class is 2TP / (2TP + FP + FN); a class that is neither true nor predicted anywhere in the
    observed data has no F1 and stays out of the mean (scikit-learn would count it as 0 and warn).
    """
    tp = np.diagonal(matrices, axis1=1, axis2=2).astype(np.float64)
    predicted = matrices.sum(axis=1)
    actual = matrices.sum(axis=2)
    denominator = predicted + actual  # = 2TP + FP + FN
    present = denominator[0] > 0
    f1 = np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
    return f1[:, present].mean(axis=1), int(present.sum())


def macro_f1_interval(
    confusion: Confusion, *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0, level: float = 0.95
) -> MacroF1:
    """Return macro-F1 with a percentile bootstrap interval.

    Resampling n labeled predictions with replacement and rebuilding their confusion matrix is the
    same as drawing the k*k cell counts from Multinomial(n, observed cell shares): macro-F1 depends on
    the items only through those counts, so the multinomial draw is the item bootstrap, exact, in
    O(B * k^2) instead of O(B * n) and without the items themselves (the rollups keep only counts).
    """
    names, rows = confusion_matrix(confusion)
    observed = np.asarray(rows, dtype=np.int64)
    n = int(observed.sum())
    if n == 0:
        return MacroF1(None, None, 0, 0)
    value, classes = _macro_f1_of(observed[None, :, :])
    rng = np.random.default_rng(seed)
    cells = rng.multinomial(n, observed.ravel() / n, size=samples).reshape(samples, len(names), len(names))
    present = (observed.sum(axis=0) + observed.sum(axis=1)) > 0
    boot_tp = np.diagonal(cells, axis1=1, axis2=2).astype(np.float64)
    boot_den = cells.sum(axis=1) + cells.sum(axis=2)
    # A class seen in the data but absent from a resample scores 0 there (it was missed entirely).
    boot_f1 = np.where(boot_den > 0, 2 * boot_tp / np.maximum(boot_den, 1), 0.0)[:, present].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(boot_f1, [tail, 100 - tail])
    return MacroF1(float(value[0]), Interval(float(low), float(high)), n, classes)


def class_metrics(confusion: Confusion, labels: Sequence[str] | None = None) -> list[ClassMetrics]:
    """Return precision and recall per class (labels in the given order, then any others seen)."""
    names, rows = confusion_matrix(confusion, labels)
    out = []
    for index, name in enumerate(names):
        tp = rows[index][index]
        support = sum(rows[index])
        predicted = sum(row[index] for row in rows)
        out.append(ClassMetrics(name, support, predicted, wilson_interval(tp, predicted), wilson_interval(tp, support)))
    return out


def estimated_accuracy(confidence_sum: float, n: int) -> Estimate:
    """Return the expected accuracy under calibration: the mean max-probability over n predictions."""
    if n < 0 or confidence_sum < 0 or confidence_sum > n + 1e-6 * max(n, 1):
        raise ValueError(f"a sum of {confidence_sum} cannot come from {n} probabilities")
    return Estimate(min(1.0, confidence_sum / n) if n else None, n)

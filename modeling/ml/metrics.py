"""Classification metrics in pure NumPy: F1, confusion, per-language scores, bootstrap CIs, calibration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

ECE_BINS = 15


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall, F1 and support of one class."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap confidence interval."""

    low: float
    high: float


@dataclass(frozen=True)
class CalibrationMetrics:
    """Expected calibration error (15 equal-width bins on max prob) and multi-class Brier score."""

    ece: float
    brier: float


@dataclass(frozen=True)
class GroupMetrics:
    """Headline scores of one slice of the eval set (e.g. one language)."""

    n: int
    accuracy: float
    macro_f1: float


@dataclass(frozen=True)
class Evaluation:
    """Everything measured on one eval set; `to_dict` gives the JSON stored in a manifest."""

    n: int
    accuracy: float
    macro_f1: float
    accuracy_ci: Interval
    macro_f1_ci: Interval
    per_class: list[ClassMetrics]
    confusion: list[list[int]]
    calibration_before: CalibrationMetrics
    calibration_after: CalibrationMetrics
    temperature: float
    per_language: dict[str, GroupMetrics] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the evaluation as JSON-ready plain data."""
        return asdict(self)


def confusion_matrix(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, num_classes: int) -> IntArray:
    """Return the (true, predicted) count matrix: rows are true classes, columns predictions."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def _safe_divide(num: FloatArray, den: FloatArray) -> FloatArray:
    """Divide elementwise, giving 0 where the denominator is 0 (sklearn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def _prf_from_confusion(cm: npt.NDArray[Any]) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return per-class precision, recall and F1 from one or a stack (…, k, k) of confusion matrices."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float64)
    predicted = cm.sum(axis=-2).astype(np.float64)
    actual = cm.sum(axis=-1).astype(np.float64)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, actual)
    f1 = _safe_divide(2 * tp, predicted + actual)
    return precision, recall, f1


def _macro_f1_from_confusion(cm: npt.NDArray[Any]) -> FloatArray:
    """Return macro-F1 over the classes that occur as truth or prediction, per confusion matrix."""
    _, _, f1 = _prf_from_confusion(cm)
    # Like sklearn without `labels=`: a class absent from both truth and predictions is not averaged in.
    present = (cm.sum(axis=-1) + cm.sum(axis=-2)) > 0
    counted = np.maximum(present.sum(axis=-1), 1)
    result: FloatArray = (f1 * present).sum(axis=-1) / counted
    return result


def accuracy(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Return the share of exact matches (0.0 for empty input)."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    return float((t == p).mean()) if t.size else 0.0


def macro_f1(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, num_classes: int) -> float:
    """Return the unweighted mean F1 over classes present in truth or predictions."""
    return float(_macro_f1_from_confusion(confusion_matrix(y_true, y_pred, num_classes)))


def per_class_metrics(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, labels: Sequence[str]) -> list[ClassMetrics]:
    """Return precision/recall/F1/support for every class in `labels` (index = class id)."""
    cm = confusion_matrix(y_true, y_pred, len(labels))
    precision, recall, f1 = _prf_from_confusion(cm)
    support = cm.sum(axis=1)
    return [
        ClassMetrics(label, float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
        for i, label in enumerate(labels)
    ]


def bootstrap_ci(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    num_classes: int,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    chunk: int = 200,
) -> tuple[Interval, Interval]:
    """Return percentile bootstrap CIs for (accuracy, macro-F1), vectorised over resamples.

    Each example is coded as one (true, pred) cell of the confusion matrix; offsetting the codes of
    resample r by r*k*k lets a single bincount build every resample's confusion matrix at once.
    """
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    n, cells = t.size, num_classes * num_classes
    if n == 0:
        return Interval(0.0, 0.0), Interval(0.0, 0.0)
    codes = t * num_classes + p
    rng = np.random.default_rng(seed)
    accs, f1s = [], []
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        drawn = codes[rng.integers(0, n, size=(size, n))] + np.arange(size)[:, None] * cells
        cms = np.bincount(drawn.ravel(), minlength=size * cells).reshape(size, num_classes, num_classes)
        accs.append(np.trace(cms, axis1=1, axis2=2) / n)
        f1s.append(_macro_f1_from_confusion(cms))
    tail = (1 - level) / 2 * 100
    return _interval(np.concatenate(accs), tail), _interval(np.concatenate(f1s), tail)


def _interval(values: FloatArray, tail: float) -> Interval:
    """Return the central percentile interval leaving `tail` percent on each side."""
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high))


def softmax(logits: npt.ArrayLike, temperature: float = 1.0) -> FloatArray:
    """Return row-wise softmax of logits / temperature, computed stably in float64."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    result: FloatArray = e / e.sum(axis=-1, keepdims=True)
    return result


def expected_calibration_error(probs: npt.ArrayLike, y_true: npt.ArrayLike, n_bins: int = ECE_BINS) -> float:
    """Return ECE: the support-weighted mean |accuracy - confidence| over equal-width max-prob bins.

    Bins are right-closed, (0, 1/15], …, (14/15, 1] (Guo et al. 2017); a confidence of exactly 0 goes to the first.
    """
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.int64)
    if t.size == 0:
        return 0.0
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == t).astype(np.float64)
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins).astype(np.float64)
    gap = np.bincount(bins, weights=correct - confidence, minlength=n_bins)
    # |sum(correct - conf)| / N per bin equals (n_b / N) * |acc_b - conf_b|.
    return float(np.abs(gap).sum() / counts.sum())


def brier_score(probs: npt.ArrayLike, y_true: npt.ArrayLike) -> float:
    """Return the multi-class Brier score: mean over examples of the squared error to the one-hot label."""
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.int64)
    if t.size == 0:
        return 0.0
    onehot = np.zeros_like(p)
    onehot[np.arange(t.size), t] = 1.0
    return float(((p - onehot) ** 2).sum(axis=1).mean())


def calibration_metrics(probs: npt.ArrayLike, y_true: npt.ArrayLike) -> CalibrationMetrics:
    """Return ECE and Brier score of the given probabilities."""
    return CalibrationMetrics(ece=expected_calibration_error(probs, y_true), brier=brier_score(probs, y_true))


def per_group_metrics(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, groups: Sequence[str], num_classes: int
) -> dict[str, GroupMetrics]:
    """Return accuracy and macro-F1 for each distinct group value (e.g. language code)."""
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    g = np.asarray(groups, dtype=object)
    result: dict[str, GroupMetrics] = {}
    for name in sorted(set(groups)):
        mask = g == name
        result[name] = GroupMetrics(
            n=int(mask.sum()), accuracy=accuracy(t[mask], p[mask]), macro_f1=macro_f1(t[mask], p[mask], num_classes)
        )
    return result


def evaluate(
    logits: npt.ArrayLike,
    y_true: npt.ArrayLike,
    labels: Sequence[str],
    *,
    languages: Sequence[str] | None = None,
    temperature: float = 1.0,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Evaluation:
    """Return every eval metric for raw logits; calibration is reported at T=1 and at `temperature`."""
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.int64)
    if languages is not None and len(languages) != t.size:
        raise ValueError(f"got {len(languages)} languages for {t.size} examples")
    k = len(labels)
    pred = z.argmax(axis=1) if t.size else np.zeros(0, dtype=np.int64)
    acc_ci, f1_ci = bootstrap_ci(t, pred, k, n_resamples=n_resamples, seed=seed)
    return Evaluation(
        n=int(t.size),
        accuracy=accuracy(t, pred),
        macro_f1=macro_f1(t, pred, k),
        accuracy_ci=acc_ci,
        macro_f1_ci=f1_ci,
        per_class=per_class_metrics(t, pred, labels),
        confusion=confusion_matrix(t, pred, k).tolist(),
        calibration_before=calibration_metrics(softmax(z), t),
        calibration_after=calibration_metrics(softmax(z, temperature), t),
        temperature=float(temperature),
        per_language=per_group_metrics(t, pred, languages, k) if languages is not None else {},
    )


@dataclass(frozen=True)
class ReliabilityBin:
    """One bar of a reliability diagram: a confidence interval, its mean confidence and accuracy, and size."""

    lower: float
    upper: float
    # None for an empty bin: there is no confidence or accuracy to draw.
    confidence: float | None
    accuracy: float | None
    count: int


def reliability_bins(probs: npt.ArrayLike, y_true: npt.ArrayLike, n_bins: int = ECE_BINS) -> list[ReliabilityBin]:
    """Return the reliability diagram of max-prob confidence vs accuracy, binned exactly as ECE bins them.

    The count-weighted mean of |accuracy - confidence| over the bins equals `expected_calibration_error`.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.int64)
    if p.ndim != 2 or p.shape[0] != t.size:
        raise ValueError(f"probs must be (n, k) with n = {t.size} labels, got shape {p.shape}")
    confidence = p.max(axis=1) if t.size else np.zeros(0)
    correct = (p.argmax(axis=1) == t).astype(np.float64) if t.size else np.zeros(0)
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    conf_sums = np.bincount(bins, weights=confidence, minlength=n_bins)
    correct_sums = np.bincount(bins, weights=correct, minlength=n_bins)
    return [
        ReliabilityBin(
            lower=i / n_bins,
            upper=(i + 1) / n_bins,
            confidence=float(conf_sums[i] / counts[i]) if counts[i] else None,
            accuracy=float(correct_sums[i] / counts[i]) if counts[i] else None,
            count=int(counts[i]),
        )
        for i in range(n_bins)
    ]

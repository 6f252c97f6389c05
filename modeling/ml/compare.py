"""Candidate vs production on the same eval items: paired statistics for the release comparison page.

Both models are scored on the *same* frozen eval split, so their errors are paired: the right tests
are paired ones. McNemar's test asks whether the two error rates differ, using only the items where
exactly one model is right (McNemar 1947; the exact binomial form, as Dietterich 1998 recommends for
comparing classifiers). The deltas' confidence intervals come from a paired bootstrap: each resample
draws one set of item indices and scores both models on it, so the item-to-item variation common to
both cancels out of the difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import binomtest

from modeling.ml.metrics import Interval, _macro_f1_from_confusion, accuracy, macro_f1

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on paired predictions.

    ``candidate_only`` counts items only the candidate gets right, ``production_only`` those only
    production gets right; ``p_value`` is the exact two-sided binomial p on those discordant pairs
    (1.0 when there are none) and ``statistic`` the continuity-corrected chi-square, for reference.
    """

    candidate_only: int
    production_only: int
    both_right: int
    both_wrong: int
    statistic: float
    p_value: float


@dataclass(frozen=True)
class PairedDelta:
    """One metric for both models and candidate minus production, with its paired bootstrap interval."""

    candidate: float
    production: float
    delta: float
    delta_ci: Interval


@dataclass(frozen=True)
class GroupDelta:
    """One slice (a class or a language): its size and each model's score on it."""

    n: int
    candidate: float
    production: float

    @property
    def delta(self) -> float:
        return self.candidate - self.production


def _paired(y_true: npt.ArrayLike, candidate: npt.ArrayLike, production: npt.ArrayLike) -> tuple[IntArray, ...]:
    t, c, p = (np.asarray(a, dtype=np.int64) for a in (y_true, candidate, production))
    if not (t.shape == c.shape == p.shape) or t.ndim != 1:
        raise ValueError(
            f"y_true, candidate and production must be equal-length vectors: {t.shape} {c.shape} {p.shape}"
        )
    return t, c, p


def mcnemar(y_true: npt.ArrayLike, candidate: npt.ArrayLike, production: npt.ArrayLike) -> McNemar:
    """Return McNemar's exact test of the two models' error rates on the same items."""
    t, c, p = _paired(y_true, candidate, production)
    c_right, p_right = c == t, p == t
    b = int(np.sum(c_right & ~p_right))
    d = int(np.sum(~c_right & p_right))
    discordant = b + d
    statistic = (abs(b - d) - 1) ** 2 / discordant if discordant else 0.0
    p_value = float(binomtest(b, discordant, 0.5).pvalue) if discordant else 1.0
    return McNemar(
        candidate_only=b,
        production_only=d,
        both_right=int(np.sum(c_right & p_right)),
        both_wrong=int(np.sum(~c_right & ~p_right)),
        statistic=float(statistic),
        p_value=min(1.0, p_value),
    )


def paired_bootstrap(
    y_true: npt.ArrayLike,
    candidate: npt.ArrayLike,
    production: npt.ArrayLike,
    num_classes: int,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    chunk: int = 200,
) -> dict[str, PairedDelta]:
    """Return accuracy and macro-F1 of both models and their difference with a paired bootstrap CI.

    Vectorised like ``metrics.bootstrap_ci``: every resample's confusion matrices come from one
    ``bincount`` per model, with the resample's index offset folded into the cell code.
    """
    t, c, p = _paired(y_true, candidate, production)
    n, cells = t.size, num_classes * num_classes
    if n == 0:
        raise ValueError("the comparison needs at least one eval item")
    rng = np.random.default_rng(seed)
    acc_deltas, f1_deltas = [], []
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        drawn = rng.integers(0, n, size=(size, n))
        offset = np.arange(size)[:, None] * cells
        cms = [
            np.bincount((t[drawn] * num_classes + pred[drawn] + offset).ravel(), minlength=size * cells).reshape(
                size, num_classes, num_classes
            )
            for pred in (c, p)
        ]
        acc_deltas.append((np.trace(cms[0], axis1=1, axis2=2) - np.trace(cms[1], axis1=1, axis2=2)) / n)
        f1_deltas.append(_macro_f1_from_confusion(cms[0]) - _macro_f1_from_confusion(cms[1]))
    tail = (1 - level) / 2 * 100
    return {
        "accuracy": _delta(accuracy(t, c), accuracy(t, p), np.concatenate(acc_deltas), tail),
        "macro_f1": _delta(macro_f1(t, c, num_classes), macro_f1(t, p, num_classes), np.concatenate(f1_deltas), tail),
    }


def _delta(candidate: float, production: float, deltas: npt.NDArray[np.float64], tail: float) -> PairedDelta:
    low, high = np.percentile(deltas, [tail, 100 - tail])
    return PairedDelta(candidate, production, candidate - production, Interval(float(low), float(high)))


def per_class_f1(
    y_true: npt.ArrayLike, candidate: npt.ArrayLike, production: npt.ArrayLike, labels: Sequence[str]
) -> dict[str, GroupDelta]:
    """Return each class's F1 for both models (n = the class's support in the eval split)."""
    t, c, p = _paired(y_true, candidate, production)
    return {
        label: GroupDelta(n=int(np.sum(t == k)), candidate=_class_f1(t, c, k), production=_class_f1(t, p, k))
        for k, label in enumerate(labels)
    }


def _class_f1(t: IntArray, pred: IntArray, k: int) -> float:
    tp = float(np.sum((pred == k) & (t == k)))
    predicted, actual = float(np.sum(pred == k)), float(np.sum(t == k))
    return 2 * tp / (predicted + actual) if predicted + actual else 0.0


def per_group_macro_f1(
    y_true: npt.ArrayLike,
    candidate: npt.ArrayLike,
    production: npt.ArrayLike,
    groups: Sequence[str],
    num_classes: int,
) -> dict[str, GroupDelta]:
    """Return each group's (e.g. language's) macro-F1 for both models."""
    t, c, p = _paired(y_true, candidate, production)
    if len(groups) != t.size:
        raise ValueError(f"got {len(groups)} groups for {t.size} items")
    g = np.asarray(groups, dtype=object)
    result: dict[str, GroupDelta] = {}
    for name in sorted(set(groups)):
        mask = g == name
        result[name] = GroupDelta(
            n=int(mask.sum()),
            candidate=macro_f1(t[mask], c[mask], num_classes),
            production=macro_f1(t[mask], p[mask], num_classes),
        )
    return result


def disagreements(candidate: npt.ArrayLike, production: npt.ArrayLike) -> IntArray:
    """Return the indices of the items on which the two models predict different labels."""
    c, p = np.asarray(candidate, dtype=np.int64), np.asarray(production, dtype=np.int64)
    if c.shape != p.shape:
        raise ValueError(f"candidate and production must have the same shape: {c.shape} vs {p.shape}")
    return np.flatnonzero(c != p).astype(np.int64)


@dataclass(frozen=True)
class QuantizationDelta:
    """The same model served int8 versus fp32 on the same eval items; every delta is int8 minus fp32.

    ``int8_only`` counts items only the int8 copy gets right, ``fp32_only`` those only fp32 gets right;
    ``mcnemar_p`` is McNemar's exact test on those discordant pairs (as for candidate vs production).
    ``changed`` is how many items int8 labels differently, right or wrong.
    """

    n: int
    accuracy_fp32: float
    accuracy_int8: float
    accuracy_delta: float
    accuracy_delta_ci: Interval
    macro_f1_fp32: float
    macro_f1_int8: float
    macro_f1_delta: float
    macro_f1_delta_ci: Interval
    agreement: float
    changed: int
    max_probability_change: float
    int8_only: int
    fp32_only: int
    both_right: int
    both_wrong: int
    mcnemar_statistic: float
    mcnemar_p: float


def quantization_compare(
    y_true: npt.ArrayLike,
    fp32_probabilities: npt.ArrayLike,
    int8_probabilities: npt.ArrayLike,
    num_classes: int,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> QuantizationDelta:
    """Return what int8 dynamic quantization changes on paired eval predictions (int8 minus fp32).

    The two probability matrices are one model's outputs on the same items in the same order, so the
    paired statistics apply exactly as between two versions: the paired bootstrap for the deltas'
    intervals and McNemar's exact test for whether the error rates differ.
    """
    full = np.asarray(fp32_probabilities, dtype=np.float64)
    small = np.asarray(int8_probabilities, dtype=np.float64)
    if full.shape != small.shape or full.ndim != 2:
        raise ValueError(
            f"fp32 and int8 probabilities must be equal (items, classes) matrices: {full.shape} {small.shape}"
        )
    t, f, q = _paired(y_true, full.argmax(axis=1), small.argmax(axis=1))
    deltas = paired_bootstrap(t, q, f, num_classes, n_resamples=n_resamples, seed=seed)
    test = mcnemar(t, q, f)
    acc, f1 = deltas["accuracy"], deltas["macro_f1"]
    return QuantizationDelta(
        n=int(t.size),
        accuracy_fp32=acc.production,
        accuracy_int8=acc.candidate,
        accuracy_delta=acc.delta,
        accuracy_delta_ci=acc.delta_ci,
        macro_f1_fp32=f1.production,
        macro_f1_int8=f1.candidate,
        macro_f1_delta=f1.delta,
        macro_f1_delta_ci=f1.delta_ci,
        agreement=float((f == q).mean()),
        changed=int(np.sum(f != q)),
        max_probability_change=float(np.abs(full - small).max()),
        int8_only=test.candidate_only,
        fp32_only=test.production_only,
        both_right=test.both_right,
        both_wrong=test.both_wrong,
        mcnemar_statistic=test.statistic,
        mcnemar_p=test.p_value,
    )

"""Inter-annotator agreement in pure NumPy: Cohen's kappa, Krippendorff's alpha, per label, per reviewer.

Labels are any hashable values (label names or ids); `None` marks a missing rating. Every figure
comes with the number of items behind it, so a page can say "kappa 0.62 on 41 items".

Undefined figures are `None`, never NaN: a chance-corrected coefficient divides by the disagreement
expected by chance, which is 0 when every rating is the same category. Then the data hold no
variation to agree or disagree about: agreement is perfect but says nothing beyond chance, and the
coefficient is 0/0. Raw agreement (`observed`, `accuracy`) is still reported. The same holds for no
items at all.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Label = Hashable
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Kappa:
    """Cohen's kappa of two raters: (observed - expected) / (1 - expected) agreement, on `n_items` items."""

    value: float | None
    observed: float
    expected: float
    n_items: int


@dataclass(frozen=True)
class Alpha:
    """Krippendorff's alpha (nominal): 1 - observed / expected disagreement, over pairable units.

    `n_items` counts units with at least two ratings (the only ones that can be compared); `n_values`
    counts the ratings in them.
    """

    value: float | None
    observed_disagreement: float
    expected_disagreement: float
    n_items: int
    n_values: int


@dataclass(frozen=True)
class ReviewerAgreement:
    """How one reviewer's labels match the gold labels on the `n_items` gold items they labeled."""

    reviewer: Hashable
    n_items: int
    accuracy: float | None
    kappa: float | None


def cohen_kappa(rater_a: Sequence[Label | None], rater_b: Sequence[Label | None]) -> Kappa:
    """Return Cohen's kappa (Cohen 1960) over the items both raters labeled.

    Items where either rating is None are left out. Expected agreement uses each rater's own label
    distribution, as in Cohen's definition (not a pooled one, which would be Scott's pi).
    """
    if len(rater_a) != len(rater_b):
        raise ValueError(f"the raters rated different numbers of items: {len(rater_a)} and {len(rater_b)}")
    pairs = [(a, b) for a, b in zip(rater_a, rater_b, strict=True) if a is not None and b is not None]
    if not pairs:
        return Kappa(value=None, observed=0.0, expected=0.0, n_items=0)
    codes = _codes([label for pair in pairs for label in pair]).reshape(-1, 2)
    k = int(codes.max()) + 1
    table = np.bincount(codes[:, 0] * k + codes[:, 1], minlength=k * k).reshape(k, k) / len(pairs)
    observed = float(np.trace(table))
    expected = float(table.sum(axis=1) @ table.sum(axis=0))
    return Kappa(value=_chance_corrected(observed, expected), observed=observed, expected=expected, n_items=len(pairs))


def krippendorff_alpha(ratings: Sequence[Sequence[Label | None]]) -> Alpha:
    """Return Krippendorff's alpha for nominal data from a (raters x items) matrix with None for missing.

    Follows Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": values are paired
    within each unit, each pair weighted 1 / (m_u - 1) for a unit with m_u values, into a coincidence
    matrix o_ck; alpha = 1 - (n - 1) * sum_{c != k} o_ck / sum_{c != k} n_c n_k. Units with fewer than
    two values are not pairable and are left out.
    """
    counts = _unit_counts(ratings)
    m = counts.sum(axis=1)
    counts = counts[m >= 2]
    m = m[m >= 2]
    n = float(m.sum())
    if counts.shape[0] == 0:
        return Alpha(value=None, observed_disagreement=0.0, expected_disagreement=0.0, n_items=0, n_values=0)
    weights = 1.0 / (m - 1)
    # o_cc: ordered pairs of equal values inside a unit, n_uc (n_uc - 1), weighted per unit.
    agreeing = float((weights[:, None] * counts * (counts - 1)).sum())
    totals = counts.sum(axis=0)
    observed = (n - agreeing) / n
    expected = (n * n - float((totals * totals).sum())) / (n * (n - 1))
    value = None if expected == 0 else 1.0 - observed / expected
    return Alpha(
        value=value,
        observed_disagreement=observed,
        expected_disagreement=expected,
        n_items=int(counts.shape[0]),
        n_values=int(n),
    )


def per_label_kappa(
    rater_a: Sequence[Label | None], rater_b: Sequence[Label | None], labels: Iterable[Label] | None = None
) -> dict[Label, Kappa]:
    """Return one-vs-rest Cohen's kappa per label: do the raters agree on "this label or not"?

    `labels` defaults to every label either rater used, in first-seen order.
    """
    names = list(labels) if labels is not None else _labels_in(rater_a, rater_b)
    return {name: cohen_kappa(_one_vs_rest(rater_a, name), _one_vs_rest(rater_b, name)) for name in names}


def per_label_alpha(
    ratings: Sequence[Sequence[Label | None]], labels: Iterable[Label] | None = None
) -> dict[Label, Alpha]:
    """Return one-vs-rest Krippendorff's alpha per label, for any number of raters with missing ratings."""
    names = list(labels) if labels is not None else _labels_in(*ratings)
    return {name: krippendorff_alpha([_one_vs_rest(row, name) for row in ratings]) for name in names}


def reviewer_agreement(
    annotations: Iterable[tuple[Hashable, Hashable, Label]], gold: Mapping[Hashable, Label]
) -> dict[Hashable, ReviewerAgreement]:
    """Return each reviewer's accuracy and Cohen's kappa against the gold labels.

    `annotations` are (reviewer, item, label) in the order given; when a reviewer labeled an item more
    than once the last annotation counts (the append-only history's current answer). Items without a
    gold label are ignored. Reviewers come back in first-seen order.
    """
    latest: dict[Hashable, dict[Hashable, Label]] = {}
    for reviewer, item, label in annotations:
        latest.setdefault(reviewer, {})[item] = label
    result: dict[Hashable, ReviewerAgreement] = {}
    for reviewer, labels in latest.items():
        items = [item for item in labels if item in gold]
        theirs = [labels[item] for item in items]
        truth = [gold[item] for item in items]
        hits = sum(a == b for a, b in zip(theirs, truth, strict=True))
        result[reviewer] = ReviewerAgreement(
            reviewer=reviewer,
            n_items=len(items),
            accuracy=hits / len(items) if items else None,
            kappa=cohen_kappa(theirs, truth).value,
        )
    return result


def _chance_corrected(observed: float, expected: float) -> float | None:
    """Return (observed - expected) / (1 - expected), or None when chance already explains everything."""
    # expected == 1 only when both raters used one and the same category for every item.
    if expected >= 1.0 - 1e-12:
        return None
    return (observed - expected) / (1.0 - expected)


def _codes(labels: Sequence[Label]) -> IntArray:
    """Return dense integer codes for labels, in first-seen order."""
    index: dict[Label, int] = {}
    return np.array([index.setdefault(label, len(index)) for label in labels], dtype=np.int64)


def _unit_counts(ratings: Sequence[Sequence[Label | None]]) -> FloatArray:
    """Return the (units x categories) count of values per unit from a (raters x units) matrix."""
    if not ratings:
        return np.zeros((0, 0), dtype=np.float64)
    n_units = len(ratings[0])
    if any(len(row) != n_units for row in ratings):
        raise ValueError("every rater's row must have one entry (or None) per item")
    present = [(unit, label) for row in ratings for unit, label in enumerate(row) if label is not None]
    counts = np.zeros((n_units, 0), dtype=np.float64)
    if present:
        codes = _codes([label for _, label in present])
        counts = np.zeros((n_units, int(codes.max()) + 1), dtype=np.float64)
        np.add.at(counts, (np.array([unit for unit, _ in present], dtype=np.int64), codes), 1.0)
    return counts


def _one_vs_rest(ratings: Sequence[Label | None], label: Label) -> list[bool | None]:
    """Return True where a rating is `label`, False where it is another, None where it is missing."""
    return [None if rating is None else rating == label for rating in ratings]


def _labels_in(*rows: Sequence[Label | None]) -> list[Label]:
    """Return the distinct non-missing labels of the rows, in first-seen order."""
    return list(dict.fromkeys(label for row in rows for label in row if label is not None))

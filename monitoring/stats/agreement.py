"""Agreement between production and a canary or shadow version on served traffic (pure; no Django).

Two ways a second version sees traffic, and what each allows:

- Shadow: the model server copies every production request to the shadow model after answering it, so
  each shadow prediction has a production twin: the same text (its sha256), scored a moment earlier.
  Pairing the twins gives agreement on exactly the production traffic, with no selection effect.
- Canary: a fixed share of *callers* is answered by the canary instead of production, so most texts are
  seen by one version only, and the two populations can differ (other callers, other texts). Agreement
  exists only where the same text reached both (``pair_by_text`` without a gap limit); beyond that the
  versions are compared by their label distributions (``label_shift``) and their confidence
  (``mean_with_interval``, ``mean_difference``), which mixes a model difference with a caller difference:
  the page says so.

Agreement rates carry Wilson score intervals (``monitoring.stats.accuracy.wilson_interval``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from scipy.stats import chi2

from monitoring.stats.accuracy import Z_95, Interval, Proportion, wilson_interval


@dataclass(frozen=True)
class Served:
    """One logged prediction, as the comparison needs it (``at``: epoch seconds; ``group``: its language)."""

    key: str
    at: float
    text_sha256: str
    label: str
    confidence: float
    group: str


@dataclass(frozen=True)
class Pair:
    """The same text scored by production and by the other version."""

    production: Served
    other: Served

    @property
    def agree(self) -> bool:
        return self.production.label == self.other.label


def pair_by_text(
    production: Sequence[Served], other: Sequence[Served], *, max_gap_s: float | None, after_only: bool
) -> list[Pair]:
    """Pair each ``other`` prediction with a production prediction of the same text, by time.

    ``after_only`` (shadow copies): the production twin must not be later than the copy (a shadow copy
    is scored after production answered), and copies take twins first in, first out: the earliest
    unpaired twin within the gap, in the order the copies were made. Otherwise (canary rows): the
    nearest twin on either side. ``max_gap_s``: the largest time between the two (None: any). Each
    production prediction pairs at most once, so a text sent twice pairs twice, each with its own twin.
    Unpaired rows are left out.

    One pass per text in time order, with a pointer into that text's production rows: a production
    row passed over for a nearer one is never revisited (a later ``other`` row is farther from it
    still), which keeps a text repeated thousands of times (a health check) linear, not quadratic.
    """
    by_text: dict[str, list[Served]] = defaultdict(list)
    for row in production:
        by_text[row.text_sha256].append(row)
    for rows in by_text.values():
        rows.sort(key=lambda row: row.at)
    pointer: dict[str, int] = defaultdict(int)
    pairs = []
    for row in sorted(other, key=lambda row: row.at):
        twins = by_text.get(row.text_sha256)
        if not twins or pointer[row.text_sha256] >= len(twins):
            continue
        i = pointer[row.text_sha256]
        if after_only:
            # Shadow copies are scored in the order production answered: each takes the earliest unpaired
            # twin not later than it and within the gap. "Nearest" let a copy scored after a second request
            # of the same text take that request's twin and leave the second copy unpaired.
            while i < len(twins) and max_gap_s is not None and row.at - twins[i].at > max_gap_s:
                i += 1
            if i < len(twins) and twins[i].at <= row.at:
                pairs.append(Pair(twins[i], row))
                i += 1
            pointer[row.text_sha256] = i
            continue
        # Advance to the nearest twin; rows at one instant (a request holding the same text twice) stay
        # available together, so the walk steps over such a group only to a strictly later time.
        while (j := _next_time(twins, i)) < len(twins) and abs(twins[j].at - row.at) <= abs(twins[i].at - row.at):
            i = j
        twin = twins[i]
        if max_gap_s is not None and abs(twin.at - row.at) > max_gap_s:
            pointer[row.text_sha256] = i
            continue
        pointer[row.text_sha256] = i + 1
        pairs.append(Pair(twin, row))
    return pairs


def _next_time(rows: list[Served], i: int) -> int:
    j = i + 1
    while j < len(rows) and rows[j].at == rows[i].at:
        j += 1
    return j


def agreement(pairs: Iterable[Pair]) -> Proportion:
    """Return the share of pairs with the same label, with its Wilson interval."""
    flags = [pair.agree for pair in pairs]
    return wilson_interval(sum(flags), len(flags))


@dataclass(frozen=True)
class Transitions:
    """Counts of production label (row) -> other label (column) over paired predictions."""

    labels: list[str]
    counts: list[list[int]]

    @property
    def total(self) -> int:
        return sum(map(sum, self.counts))


def transitions(pairs: Iterable[Pair], labels: Sequence[str] = ()) -> Transitions:
    """Return the label-transition matrix over ``labels`` (in that order) and any other label seen in pairs."""
    counts = Counter((pair.production.label, pair.other.label) for pair in pairs)
    seen = {label for key in counts for label in key}
    ordered = list(labels) + sorted(seen - set(labels))
    return Transitions(ordered, [[counts[(row, column)] for column in ordered] for row in ordered])


@dataclass(frozen=True)
class GroupAgreement:
    group: str
    agreement: Proportion


def agreement_by_group(pairs: Iterable[Pair]) -> list[GroupAgreement]:
    """Return agreement per production group (language), largest group first."""
    by_group: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        by_group[pair.production.group].append(pair)
    rows = [GroupAgreement(group, agreement(members)) for group, members in by_group.items()]
    return sorted(rows, key=lambda row: (-row.agreement.n, row.group))


@dataclass(frozen=True)
class SeriesPoint:
    start: float  # epoch seconds: the bucket is [start, start + step)
    agreement: Proportion


def agreement_series(pairs: Iterable[Pair], *, start: float, end: float, step: float) -> list[SeriesPoint]:
    """Return agreement per time bucket of ``step`` seconds over [start, end), by the other row's time.

    Every bucket is returned, empty ones with n = 0, so a gap in traffic shows as a gap, not a line.
    """
    if step <= 0 or end <= start:
        raise ValueError(f"need step > 0 and end > start, got step={step}, [{start}, {end})")
    count = math.ceil((end - start) / step)
    agreed, seen = [0] * count, [0] * count
    for pair in pairs:
        index = int((pair.other.at - start) // step)
        if 0 <= index < count:
            seen[index] += 1
            agreed[index] += pair.agree
    return [SeriesPoint(start + i * step, wilson_interval(agreed[i], seen[i])) for i in range(count)]


@dataclass(frozen=True)
class LabelShare:
    label: str
    production: Proportion
    other: Proportion


@dataclass(frozen=True)
class LabelShift:
    """How the other version's label mix differs from production's.

    ``total_variation``: half the sum of absolute share differences (0 same mix, 1 disjoint).
    ``chi2``/``p_value``: Pearson's chi-square test of homogeneity on the 2 x k table (None when either
    side has no predictions or only one label occurs). ``sparse``: some expected count is under 5, where
    the chi-square approximation is rough.
    """

    shares: list[LabelShare]
    total_variation: float | None
    chi2: float | None
    dof: int
    p_value: float | None
    sparse: bool


def label_shift(production: Mapping[str, int], other: Mapping[str, int], labels: Sequence[str] = ()) -> LabelShift:
    """Return both label distributions with Wilson intervals, their total variation and a chi-square test."""
    names = list(labels) + sorted((set(production) | set(other)) - set(labels))
    n_prod, n_other = sum(production.values()), sum(other.values())
    shares = [
        LabelShare(name, wilson_interval(production.get(name, 0), n_prod), wilson_interval(other.get(name, 0), n_other))
        for name in names
    ]
    if not n_prod or not n_other:
        return LabelShift(shares, None, None, 0, None, False)
    tv = 0.5 * sum(abs(production.get(name, 0) / n_prod - other.get(name, 0) / n_other) for name in names)
    occurring = [name for name in names if production.get(name, 0) + other.get(name, 0) > 0]
    if len(occurring) < 2:
        return LabelShift(shares, tv, None, 0, None, False)
    total = n_prod + n_other
    statistic, sparse = 0.0, False
    for name in occurring:
        column = production.get(name, 0) + other.get(name, 0)
        for observed, row in ((production.get(name, 0), n_prod), (other.get(name, 0), n_other)):
            expected = row * column / total
            sparse = sparse or expected < 5
            statistic += (observed - expected) ** 2 / expected
    dof = len(occurring) - 1
    return LabelShift(shares, tv, statistic, dof, float(chi2.sf(statistic, dof)), sparse)


@dataclass(frozen=True)
class Mean:
    """A sample mean with its normal-approximation 95% interval (None values when n is 0)."""

    n: int
    value: float | None
    interval: Interval | None


def mean_with_interval(values: Sequence[float], *, z: float = Z_95) -> Mean:
    """Return the mean and mean ± z·s/√n (the sample standard deviation; a single value has width 0)."""
    n = len(values)
    if n == 0:
        return Mean(0, None, None)
    mean = math.fsum(values) / n
    half = z * _sd(values, mean) / math.sqrt(n) if n > 1 else 0.0
    return Mean(n, mean, Interval(mean - half, mean + half))


def mean_difference(other: Sequence[float], production: Sequence[float], *, z: float = Z_95) -> Mean:
    """Return mean(other) - mean(production) with Welch's normal-approximation interval.

    ``n`` is the smaller sample; None values when either side has fewer than two values.
    """
    if len(other) < 2 or len(production) < 2:
        return Mean(min(len(other), len(production)), None, None)
    m_other, m_prod = math.fsum(other) / len(other), math.fsum(production) / len(production)
    se = math.sqrt(_sd(other, m_other) ** 2 / len(other) + _sd(production, m_prod) ** 2 / len(production))
    delta = m_other - m_prod
    return Mean(min(len(other), len(production)), delta, Interval(delta - z * se, delta + z * se))


def _sd(values: Sequence[float], mean: float) -> float:
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def histogram(values: Iterable[float], *, bins: int = 20, low: float = 0.0, high: float = 1.0) -> list[int]:
    """Return counts in ``bins`` equal-width bins over [low, high]; the top edge belongs to the last bin."""
    if bins < 1 or high <= low:
        raise ValueError(f"need bins >= 1 and high > low, got {bins}, [{low}, {high}]")
    counts = [0] * bins
    width = (high - low) / bins
    for value in values:
        if low <= value <= high:
            counts[min(bins - 1, int((value - low) / width))] += 1
    return counts

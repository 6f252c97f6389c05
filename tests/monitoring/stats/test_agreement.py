"""Production vs canary/shadow agreement statistics against hand-computed values (no database)."""

from __future__ import annotations

import math

import pytest
from scipy.stats import chi2_contingency

from monitoring.stats.agreement import (
    Pair,
    Served,
    agreement,
    agreement_by_group,
    agreement_series,
    histogram,
    label_shift,
    mean_difference,
    mean_with_interval,
    pair_by_text,
    transitions,
)


def served(key: str, at: float, sha: str, label: str = "pos", confidence: float = 0.9, group: str = "en") -> Served:
    return Served(key=key, at=at, text_sha256=sha, label=label, confidence=confidence, group=group)


def keys(pairs: list[Pair]) -> list[tuple[str, str]]:
    return [(pair.production.key, pair.other.key) for pair in pairs]


def test_a_shadow_row_pairs_with_the_production_twin_just_before_it():
    production = [served("p1", 100.0, "a"), served("p2", 160.0, "a"), served("p3", 100.0, "b")]
    shadow = [served("s1", 100.02, "a"), served("s2", 160.03, "a"), served("s3", 100.01, "b")]
    assert sorted(keys(pair_by_text(production, shadow, max_gap_s=30, after_only=True))) == [
        ("p1", "s1"),
        ("p2", "s2"),
        ("p3", "s3"),
    ]


def test_a_shadow_row_never_pairs_with_a_later_or_too_distant_production_row():
    production = [served("p1", 200.0, "a"), served("p2", 10.0, "b")]
    shadow = [served("s1", 199.0, "a"), served("s2", 100.0, "b"), served("s3", 50.0, "unknown")]
    assert pair_by_text(production, shadow, max_gap_s=30, after_only=True) == []


def test_the_same_text_twice_in_one_request_pairs_twice_each_with_its_own_twin():
    production = [served("p1", 5.0, "a"), served("p2", 5.0, "a"), served("p3", 50.0, "a")]
    shadow = [served("s1", 5.1, "a"), served("s2", 5.1, "a"), served("s3", 50.2, "a")]
    assert keys(pair_by_text(production, shadow, max_gap_s=30, after_only=True)) == [
        ("p1", "s1"),
        ("p2", "s2"),
        ("p3", "s3"),
    ]
    # A later repeat of the text is nearer than an earlier request's group, which is skipped.
    late = pair_by_text(production, [served("s9", 50.5, "a")], max_gap_s=30, after_only=True)
    assert keys(late) == [("p3", "s9")]


def test_shadow_copies_of_a_text_repeated_within_the_copy_delay_all_pair():
    # Two requests of one text 10 ms apart; the second's copy is scored before the first's (CI, 2026-11-22:
    # "nearest" paired the first copy with the second request and left the other copy unpaired).
    production = [served("p1", 10.000, "a"), served("p2", 10.010, "a")]
    shadow = [served("s1", 10.040, "a"), served("s2", 10.030, "a")]
    assert keys(pair_by_text(production, shadow, max_gap_s=30, after_only=True)) == [("p1", "s2"), ("p2", "s1")]


def test_a_canary_row_pairs_with_the_nearest_production_row_on_either_side():
    production = [served("p1", 10.0, "a"), served("p2", 95.0, "a"), served("p3", 400.0, "a")]
    canary = [served("c1", 100.0, "a"), served("c2", 390.0, "a"), served("c3", 500.0, "a")]
    # c1 nearest p2 (5 s before), c2 nearest p3 (10 s after), c3 finds only used or passed-over rows.
    assert keys(pair_by_text(production, canary, max_gap_s=None, after_only=False)) == [("p2", "c1"), ("p3", "c2")]


def test_agreement_is_a_wilson_interval_over_pairs():
    pairs = [Pair(served("p", 0, "x", "pos"), served("o", 0, "x", label)) for label in ["pos"] * 8 + ["neg"] * 2]
    rate = agreement(pairs)
    assert (rate.successes, rate.n, rate.value) == (8, 10, 0.8)
    # Wilson 95% for 8/10: 0.4902 to 0.9433 (Newcombe 1998's formula, hand-computed).
    assert rate.interval is not None
    assert (round(rate.interval.low, 4), round(rate.interval.high, 4)) == (0.4902, 0.9433)
    assert agreement([]).value is None


def test_the_transition_matrix_counts_production_label_to_other_label():
    rows = [("pos", "pos"), ("pos", "neg"), ("neg", "neg"), ("pos", "neg"), ("neu", "pos")]
    pairs = [Pair(served("p", 0, "x", a), served("o", 0, "x", b)) for a, b in rows]
    matrix = transitions(pairs, ["neg", "pos"])
    assert matrix.labels == ["neg", "pos", "neu"]
    assert matrix.counts == [[1, 0, 0], [2, 1, 0], [0, 1, 0]]
    assert matrix.total == 5
    assert transitions([], ["neg", "pos"]).counts == [[0, 0], [0, 0]]


def test_agreement_per_language_lists_the_largest_group_first():
    def pair(group: str, agree: bool) -> Pair:
        return Pair(served("p", 0, "x", "pos", group=group), served("o", 0, "x", "pos" if agree else "neg"))

    groups = agreement_by_group([pair("de", True), pair("en", True), pair("en", False), pair("en", True)])
    assert [(g.group, g.agreement.successes, g.agreement.n) for g in groups] == [("en", 2, 3), ("de", 1, 1)]


def test_the_agreement_series_buckets_by_the_other_rows_time_and_keeps_empty_buckets():
    def pair(at: float, agree: bool) -> Pair:
        return Pair(served("p", at, "x", "pos"), served("o", at, "x", "pos" if agree else "neg"))

    series = agreement_series(
        [pair(0, True), pair(59, False), pair(130, True), pair(180, True)], start=0, end=180, step=60
    )
    assert [(p.start, p.agreement.successes, p.agreement.n) for p in series] == [(0, 1, 2), (60, 0, 0), (120, 1, 1)]
    with pytest.raises(ValueError):
        agreement_series([], start=10, end=10, step=60)


def test_label_shift_matches_scipys_chi_square_test_of_homogeneity():
    production = {"pos": 60, "neg": 30, "neu": 10}
    canary = {"pos": 20, "neg": 25, "neu": 5}
    shift = label_shift(production, canary, ["neg", "neu", "pos"])
    expected = chi2_contingency([[30, 10, 60], [25, 5, 20]], correction=False)
    assert shift.chi2 == pytest.approx(expected.statistic) and shift.p_value == pytest.approx(expected.pvalue)
    assert shift.dof == 2 and not shift.sparse
    # |0.3-0.5| + |0.1-0.1| + |0.6-0.4| = 0.4, halved.
    assert shift.total_variation == pytest.approx(0.2)
    assert [(s.label, s.production.value, s.other.value) for s in shift.shares] == [
        ("neg", 0.3, 0.5),
        ("neu", 0.1, 0.1),
        ("pos", 0.6, 0.4),
    ]


def test_label_shift_without_traffic_on_one_side_has_no_test():
    shift = label_shift({"pos": 3}, {}, ["pos", "neg"])
    assert (shift.total_variation, shift.chi2, shift.p_value) == (None, None, None)
    assert shift.shares[0].production.value == 1.0 and shift.shares[0].other.value is None
    small = label_shift({"pos": 3, "neg": 1}, {"pos": 1, "neg": 2})
    assert small.sparse and small.p_value is not None


def test_mean_confidence_and_the_welch_difference():
    mean = mean_with_interval([0.6, 0.8, 1.0])
    # s = 0.2, half-width = 1.96 * 0.2 / sqrt(3).
    assert mean.value == pytest.approx(0.8) and mean.interval is not None
    assert mean.interval.high - mean.value == pytest.approx(1.959963984540054 * 0.2 / math.sqrt(3))
    assert mean_with_interval([]).value is None and mean_with_interval([0.5]).interval.low == 0.5
    diff = mean_difference([0.6, 0.8, 1.0], [0.5, 0.7])
    se = math.sqrt(0.04 / 3 + 0.02 / 2)
    assert diff.value == pytest.approx(0.2) and diff.interval.low == pytest.approx(0.2 - 1.959963984540054 * se)
    assert mean_difference([0.5], [0.5, 0.6]).value is None


def test_histogram_puts_one_in_the_last_bin():
    assert histogram([0.0, 0.05, 0.5, 0.99, 1.0, 1.5], bins=4) == [2, 0, 1, 2]

"""Agreement statistics against published worked examples and hand computation (no database)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from labeling.stats import (
    cohen_kappa,
    krippendorff_alpha,
    per_label_alpha,
    per_label_kappa,
    reviewer_agreement,
)

ROOT = Path(__file__).resolve().parents[2]
M = None
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x 12 units,
# nominal values 1-5, missing values marked. Published alpha = 0.743.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, M, M, M],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, M, 3],
    [M, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, M],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, M],
]
# Same paper, section A: two observers, binary data, 10 units. Published alpha = 0.095.
KRIPPENDORFF_BINARY = [
    [0, 1, 0, 0, 0, 0, 0, 0, 1, 0],
    [1, 1, 1, 0, 0, 1, 0, 0, 0, 0],
]
# Wikipedia "Cohen's kappa", simple example: 50 proposals, 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no.
WIKI_A = ["yes"] * 25 + ["no"] * 25
WIKI_B = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15


def test_cohen_kappa_matches_the_wikipedia_fifty_item_example() -> None:
    kappa = cohen_kappa(WIKI_A, WIKI_B)
    # p_o = 35/50 = 0.7; p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5 (Scott's pooled p_e would give 0.394).
    assert kappa.value == pytest.approx(0.4, abs=1e-12)
    assert kappa.observed == pytest.approx(0.7)
    assert kappa.expected == pytest.approx(0.5)
    assert kappa.n_items == 50


def test_cohen_kappa_leaves_out_items_either_rater_skipped() -> None:
    kappa = cohen_kappa([*WIKI_A, "yes", None, None], [*WIKI_B, None, "no", None])
    assert kappa.value == pytest.approx(0.4, abs=1e-12)
    assert kappa.n_items == 50


def test_cohen_kappa_is_one_for_perfect_agreement_and_zero_for_chance_level() -> None:
    assert cohen_kappa(["a", "b", "c", "a"], ["a", "b", "c", "a"]).value == pytest.approx(1.0)
    # Both raters say "a" half the time, independently: p_o = p_e = 0.5.
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "b", "a", "b"]).value == pytest.approx(0.0)


def test_cohen_kappa_is_undefined_when_both_raters_used_one_category_only() -> None:
    kappa = cohen_kappa(["x"] * 6, ["x"] * 6)
    assert kappa.value is None
    assert kappa.observed == 1.0
    assert kappa.n_items == 6
    # One category each but different ones: p_o = p_e = 0, kappa is defined and 0.
    assert cohen_kappa(["x"] * 3, ["y"] * 3).value == pytest.approx(0.0)


def test_cohen_kappa_with_no_shared_items_is_undefined_on_zero_items() -> None:
    kappa = cohen_kappa(["a", None], [None, "b"])
    assert kappa.value is None
    assert kappa.n_items == 0


def test_cohen_kappa_refuses_raters_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="different numbers"):
        cohen_kappa(["a"], ["a", "b"])


def test_krippendorff_alpha_matches_the_published_four_coder_example_with_missing_values() -> None:
    alpha = krippendorff_alpha(KRIPPENDORFF_2011)
    # n_c = 9, 13, 10, 5, 3 over 40 pairable values; 8 of the coincidences disagree.
    assert alpha.value == pytest.approx(1 - 39 * 8 / (40**2 - (81 + 169 + 100 + 25 + 9)))
    assert round(alpha.value, 3) == 0.743
    assert alpha.n_items == 11  # unit 12 has a single value and cannot be paired
    assert alpha.n_values == 40
    assert alpha.observed_disagreement == pytest.approx(8 / 40)


def test_krippendorff_alpha_matches_the_published_binary_example() -> None:
    alpha = krippendorff_alpha(KRIPPENDORFF_BINARY)
    # 4 disagreeing units -> o_01 = o_10 = 4; n_0 = 14, n_1 = 6, n = 20: 1 - 19 * 8 / (2 * 14 * 6).
    assert alpha.value == pytest.approx(1 - 19 * 8 / 168)
    assert round(alpha.value, 3) == 0.095
    assert alpha.n_items == 10


def test_krippendorff_alpha_is_one_for_perfect_agreement_with_gaps() -> None:
    alpha = krippendorff_alpha([["a", "b", None, "c"], ["a", "b", "c", "c"], [None, "b", "c", None]])
    assert alpha.value == pytest.approx(1.0)
    assert alpha.n_items == 4


def test_krippendorff_alpha_is_undefined_for_one_category_or_no_pairable_unit() -> None:
    single = krippendorff_alpha([["a", "a", None], ["a", "a", "a"]])
    assert single.value is None
    assert single.observed_disagreement == 0.0
    assert single.n_items == 2
    unpaired = krippendorff_alpha([["a", None], [None, "b"]])
    assert unpaired.value is None
    assert unpaired.n_items == 0
    assert krippendorff_alpha([]).n_items == 0


def test_krippendorff_alpha_refuses_ragged_rows() -> None:
    with pytest.raises(ValueError, match="one entry"):
        krippendorff_alpha([["a", "b"], ["a"]])


def test_per_label_kappa_is_one_vs_rest_kappa_for_each_label() -> None:
    a = ["x", "x", "y", "z", "z", "y"]
    b = ["x", "y", "y", "z", "x", "y"]
    per_label = per_label_kappa(a, b)
    # x: p_o = 4/6, p_e = 20/36 -> 1/4. y: p_o = 5/6, p_e = 18/36 -> 2/3. z: p_o = 5/6, p_e = 22/36 -> 4/7.
    assert list(per_label) == ["x", "y", "z"]
    assert per_label["x"].value == pytest.approx(0.25)
    assert per_label["y"].value == pytest.approx(2 / 3)
    assert per_label["z"].value == pytest.approx(4 / 7)
    assert per_label["z"].n_items == 6


def test_per_label_kappa_reports_requested_labels_nobody_used_as_undefined() -> None:
    per_label = per_label_kappa(["x", "y"], ["x", "y"], labels=["x", "w"])
    assert per_label["x"].value == pytest.approx(1.0)
    assert per_label["w"].value is None


def test_per_label_alpha_on_binary_data_gives_the_binary_alpha_for_both_labels() -> None:
    per_label = per_label_alpha(KRIPPENDORFF_BINARY)
    assert per_label[0].value == pytest.approx(1 - 19 * 8 / 168)
    assert per_label[1].value == pytest.approx(1 - 19 * 8 / 168)


def test_per_label_alpha_keeps_missing_ratings_missing() -> None:
    per_label = per_label_alpha(KRIPPENDORFF_2011)
    assert set(per_label) == {1, 2, 3, 4, 5}
    assert all(alpha.n_values == 40 for alpha in per_label.values())
    # Label 4: coders agree on unit 7 (4 x "4"); unit 6 has one "4" among 1, 2, 3, 4 -> not perfect.
    assert 0 < per_label[4].value < 1  # type: ignore[operator]


def test_reviewer_agreement_scores_each_reviewer_against_gold_using_their_last_answer() -> None:
    gold = {1: "a", 2: "b", 3: "a", 4: "b"}
    annotations = [
        ("ana", 1, "a"),
        ("ana", 3, "a"),
        ("ben", 5, "a"),
        ("ana", 2, "b"),
        ("ana", 3, "b"),  # ana changed her mind on item 3: the last answer counts
        ("ana", 4, "b"),
        ("ben", 1, "a"),
        ("cy", 9, "b"),
    ]
    result = reviewer_agreement(annotations, gold)
    assert list(result) == ["ana", "ben", "cy"]
    # ana: [a, b, b, b] vs [a, b, a, b]: p_o = 3/4, p_e = 1/4 * 1/2 + 3/4 * 1/2 = 1/2 -> kappa 1/2.
    assert result["ana"].n_items == 4
    assert result["ana"].accuracy == pytest.approx(0.75)
    assert result["ana"].kappa == pytest.approx(0.5)
    # ben: one gold item, right, but a single category: kappa undefined.
    assert (result["ben"].n_items, result["ben"].accuracy, result["ben"].kappa) == (1, 1.0, None)
    assert (result["cy"].n_items, result["cy"].accuracy, result["cy"].kappa) == (0, None, None)


def test_importing_the_stats_package_loads_neither_django_nor_torch() -> None:
    # A fresh interpreter: this test process has Django loaded by pytest-django already.
    code = "import sys, labeling.stats; print(sorted(m for m in ('django', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"

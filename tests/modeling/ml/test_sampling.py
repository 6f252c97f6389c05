"""Query strategies against values and layouts worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from modeling.ml.sampling import (
    STRATEGIES,
    audit_count,
    badge_kmeanspp,
    entropy,
    is_low_budget,
    k_center_greedy,
    least_confidence,
    low_budget_limit,
    margin,
    pool_languages,
    select_batch,
    uncertainty_order,
    weighted_kmeans_representatives,
)

PROBS = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [0.5, 0.3, 0.2]])


def _h(*ps: float) -> float:
    """Entropy in nats, written out term by term."""
    return -sum(p * math.log(p) for p in ps if p > 0)


def _softmax_rows(n: int, k: int, seed: int) -> np.ndarray:
    z = np.random.default_rng(seed).standard_normal((n, k)) * 2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_least_confidence_is_one_minus_the_top_probability() -> None:
    assert least_confidence(PROBS) == pytest.approx([0.3, 0.6, 0.5])


def test_margin_is_the_gap_between_the_two_top_probabilities() -> None:
    assert margin(PROBS) == pytest.approx([0.5, 0.0, 0.2])


def test_entropy_is_in_nats_and_zero_probabilities_contribute_nothing() -> None:
    assert entropy(PROBS) == pytest.approx([_h(0.7, 0.2, 0.1), _h(0.4, 0.4, 0.2), _h(0.5, 0.3, 0.2)])
    assert entropy([[1.0, 0.0], [0.5, 0.5]]) == pytest.approx([0.0, math.log(2)])


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("least_confidence", [1, 2, 0]), ("margin", [1, 2, 0]), ("entropy", [1, 2, 0])],
)
def test_each_uncertainty_strategy_puts_the_most_uncertain_row_first(strategy: str, expected: list[int]) -> None:
    assert uncertainty_order(PROBS, strategy).tolist() == expected


def test_margin_ties_go_to_higher_entropy_then_to_the_lower_index() -> None:
    # All four have margin 0. Entropies: ln 2 = 0.693, H(.45,.45,.1) = 0.949, H(.4,.4,.2) = 1.055 (twice).
    probs = [[0.5, 0.5, 0.0], [0.45, 0.45, 0.10], [0.4, 0.4, 0.2], [0.4, 0.2, 0.4]]
    assert margin(probs).tolist() == [0.0, 0.0, 0.0, 0.0]
    assert uncertainty_order(probs, "margin").tolist() == [2, 3, 1, 0]


def test_least_confidence_ties_go_to_higher_entropy() -> None:
    # Both have 1 - max = 0.5; H(.5,.3,.2) = 1.030 < H(.5,.25,.25) = 1.040.
    assert uncertainty_order([[0.5, 0.3, 0.2], [0.5, 0.25, 0.25]], "least_confidence").tolist() == [1, 0]


def test_entropy_ties_go_to_the_lower_index() -> None:
    assert uncertainty_order([[0.8, 0.2], [0.2, 0.8], [0.5, 0.5]], "entropy").tolist() == [2, 0, 1]


def test_margin_batch_reports_one_minus_margin_as_its_score() -> None:
    selection = select_batch(PROBS, strategy="margin", batch_size=2, random_fraction=0.0)
    assert selection.indices.tolist() == [1, 2]
    assert selection.scores == pytest.approx([1.0, 0.8])
    assert selection.is_random.tolist() == [False, False]
    assert selection.strategy == "margin"


# k-center layout: a symmetric tight cluster at the origin and three far corners. The mean of all 7
# points is (0, 2/7), so the first pick is (-10, -10) at distance sqrt(100 + (10 + 2/7)^2) = 14.35.
# Farthest from it: (0, 12) at sqrt(10^2 + 22^2) = 24.17 (beats (10, 0) at 22.36). Then (10, 0), whose
# nearest centre is now (0, 12): sqrt(10^2 + 12^2) = 15.62, while every cluster point is ~12 from (0, 12).
CORNERS = np.array([[0.1, 0.0], [-0.1, 0.0], [0.0, 0.1], [0.0, -0.1], [10.0, 0.0], [0.0, 12.0], [-10.0, -10.0]])


def test_k_center_greedy_picks_the_far_corners_first() -> None:
    picks, scores = k_center_greedy(CORNERS, 3)
    assert picks.tolist() == [6, 5, 4]
    assert scores == pytest.approx([math.sqrt(100 + (10 + 2 / 7) ** 2), math.sqrt(584), math.sqrt(244)], rel=1e-5)


def test_k_center_greedy_scores_never_increase_and_picks_are_unique() -> None:
    points = np.random.default_rng(3).standard_normal((300, 8))
    picks, scores = k_center_greedy(points, 40)
    assert len(set(picks.tolist())) == 40
    # The first score is the distance to the mean; from the second on, each is a covering radius.
    assert np.all(np.diff(scores[1:]) <= 1e-6)
    assert scores[-1] > 0


def test_k_center_greedy_seeded_with_labeled_points_avoids_them() -> None:
    labeled = np.array([[-10.0, -10.0], [0.0, 12.0]])
    picks, scores = k_center_greedy(CORNERS, 2, seeds=labeled)
    assert picks[0] == 4
    assert scores[0] == pytest.approx(math.sqrt(244), rel=1e-5)
    # The next farthest is a cluster point: about 10 from (10, 0), not a labeled corner.
    assert picks[1] in {0, 1, 2, 3}


def test_k_center_greedy_only_picks_eligible_rows() -> None:
    eligible = np.ones(len(CORNERS), dtype=bool)
    eligible[[5, 6]] = False
    picks, _ = k_center_greedy(CORNERS, 2, eligible=eligible)
    assert picks[0] == 4
    assert not set(picks.tolist()) & {5, 6}


@pytest.mark.parametrize("strategy", ["kcenter", "badge", "margin_diversity"])
def test_diversity_on_duplicate_rows_still_returns_distinct_items(strategy: str) -> None:
    points = np.zeros((30, 3))
    for seed in range(5):
        selection = select_batch(
            np.full((30, 2), 0.5),
            points,
            strategy=strategy,  # type: ignore[arg-type]
            batch_size=20,
            random_fraction=0,
            seed=seed,
        )
        assert len(set(selection.indices.tolist())) == 20


def test_badge_first_pick_is_the_longest_gradient_embedding_not_the_longest_embedding() -> None:
    # |g|^2 = |p - e_yhat|^2 |x|^2: row 0 gives 0.5 * 1 = 0.5; row 1 gives 0.02 * 4 = 0.08.
    probs = [[0.5, 0.5], [0.9, 0.1]]
    embeddings = [[1.0, 0.0], [0.0, 2.0]]
    picks, scores = badge_kmeanspp(probs, embeddings, 1, rng=np.random.default_rng(0))
    assert picks.tolist() == [0]
    assert scores == pytest.approx([math.sqrt(0.5)])


def test_badge_distances_match_explicit_gradient_embeddings() -> None:
    probs = _softmax_rows(60, 4, seed=1)
    embeddings = np.random.default_rng(2).standard_normal((60, 5))
    picks, scores = badge_kmeanspp(probs, embeddings, 6, rng=np.random.default_rng(7))
    a = probs.copy()
    a[np.arange(60), probs.argmax(axis=1)] -= 1
    grads = np.einsum("ik,id->ikd", a, embeddings).reshape(60, -1)
    assert picks[0] == np.argmax(np.linalg.norm(grads, axis=1))
    for step in range(1, 6):
        nearest = np.linalg.norm(grads[picks[step]] - grads[picks[:step]], axis=1).min()
        assert scores[step] == pytest.approx(nearest, rel=1e-4)


def test_badge_picks_one_item_from_each_separated_group() -> None:
    # Four groups of exact duplicates: once a group has a centre its members are at distance 0 and
    # cannot be drawn, so whatever the seed, four picks cover four groups.
    centres = np.array([[10.0, 0.0], [0.0, 10.0], [-10.0, 0.0], [0.0, -10.0]])
    embeddings = np.repeat(centres, 5, axis=0)
    probs = np.tile([[0.6, 0.4]], (20, 1))
    for seed in range(20):
        selection = select_batch(probs, embeddings, strategy="badge", batch_size=4, random_fraction=0, seed=seed)
        assert sorted((selection.indices // 5).tolist()) == [0, 1, 2, 3]


# margin + diversity layout: five very uncertain items in a tight cluster at the origin, one slightly
# less uncertain item B at (5, 5), twenty confident items far away. With batch 2 and a candidate factor
# of 3 the candidates are the six most uncertain (margins 0, .01, ..., .05; weights 1 - margin). Weighted
# 2-means splits them into the cluster and B (k-means++ seeds both groups unless its second draw lands in
# the cluster: weight x squared distance 0.95 x 50 for B against at most 4 x 0.0002 for the cluster).
# The cluster's weighted mean is ((.99 - .97) x .01, (.98 - .96) x .01) / 4.9 = (4.1e-5, 4.1e-5), nearest
# to item 0 at the origin; B's cluster is B alone. Most uncertain first: [0, 5], scored 1 - margin.
MD_PROBS = np.array([[0.5 + m / 2, 0.5 - m / 2] for m in (0.0, 0.01, 0.02, 0.03, 0.04, 0.05)] + [[0.95, 0.05]] * 20)
MD_POINTS = np.array(
    [[0.0, 0.0], [0.01, 0.0], [0.0, 0.01], [-0.01, 0.0], [0.0, -0.01], [5.0, 5.0]]
    + [[100.0 + i, 100.0] for i in range(20)]
)


def test_margin_diversity_takes_one_representative_per_cluster_of_uncertain_candidates() -> None:
    for seed in range(5):
        selection = select_batch(
            MD_PROBS,
            MD_POINTS,
            strategy="margin_diversity",
            batch_size=2,
            candidate_factor=3,
            random_fraction=0,
            seed=seed,
        )
        assert selection.indices.tolist() == [0, 5]
        assert selection.scores == pytest.approx([1.0, 0.95])
    # Plain margin takes two near-duplicates from the cluster; kcenter takes a confident far item.
    assert select_batch(MD_PROBS, strategy="margin", batch_size=2, random_fraction=0).indices.tolist() == [0, 1]
    far = select_batch(MD_PROBS, MD_POINTS, strategy="kcenter", batch_size=2, random_fraction=0).indices
    assert set(far.tolist()) & set(range(6, 26))


def test_margin_diversity_only_picks_among_the_least_margin_candidates() -> None:
    # Factor 1 leaves exactly the two least-margin items as candidates, however they are spread.
    selection = select_batch(
        MD_PROBS, MD_POINTS, strategy="margin_diversity", batch_size=2, candidate_factor=1, random_fraction=0
    )
    assert selection.indices.tolist() == [0, 1]


def test_margin_diversity_past_the_low_budget_clusters_the_candidates_alone() -> None:
    # 2 classes x 1 language x 5 = 10 labeled items end the low-budget phase; from then on Zhdanov 2019
    # clusters the candidates only, so 10 labeled items on top of B do not move the batch.
    plain = select_batch(MD_PROBS, MD_POINTS, strategy="margin_diversity", batch_size=2, candidate_factor=3)
    seeded = select_batch(
        MD_PROBS,
        MD_POINTS,
        strategy="margin_diversity",
        batch_size=2,
        candidate_factor=3,
        labeled_embeddings=[[5.0, 5.0]] * 10,
    )
    assert plain.indices.tolist() == [0, 5]
    assert seeded.indices.tolist() == [0, 5]


@pytest.mark.parametrize(
    ("labeled", "classes", "languages", "expected"),
    [(9, 2, 1, True), (10, 2, 1, False), (0, 13, 1, True), (64, 13, 1, True), (65, 13, 1, False),
     (519, 13, 8, True), (520, 13, 8, False), (9, 2, 0, True), (10, 2, 0, False)],
)  # fmt: skip
def test_low_budget_is_fewer_than_five_labels_per_class_and_language(
    labeled: int, classes: int, languages: int, expected: bool
) -> None:
    assert is_low_budget(labeled, classes, languages) is expected
    assert low_budget_limit(classes, languages) == 5 * classes * max(1, languages)


def test_pool_languages_counts_those_holding_five_percent_of_the_pool() -> None:
    # 100 items: en 60, de 30, fr 5 (exactly 5%: counts), sw 4 (below), 1 undetected (no language).
    pool = ["en"] * 60 + ["de"] * 30 + ["fr"] * 5 + ["sw"] * 4 + [""]
    assert pool_languages(pool) == 3
    assert pool_languages({"en": 60, "de": 30, "fr": 5, "sw": 4, "": 1}) == 3
    assert pool_languages(["en"] * 10) == 1
    assert pool_languages(None) == 1
    assert pool_languages([]) == 1  # nothing known: one language
    assert pool_languages([""] * 5) == 1
    # A blank majority still counts toward the size: 4 "de" of 100 is under 5%.
    assert pool_languages([""] * 96 + ["de"] * 4) == 1


# Low-budget layout on a line, 2 classes. Margins 0, .1, .2, .3 for items 0-3 at 0, 1, 4, 10; the confident
# items 4 and 5 (margins .8, .9) lie farther out at 20 and 30. Batch 2 with factor 2: candidates 0-3.
COVER_PROBS = np.array([[0.5 + m / 2, 0.5 - m / 2] for m in (0.0, 0.1, 0.2, 0.3, 0.8, 0.9)])
COVER_POINTS = np.array([[0.0], [1.0], [4.0], [10.0], [20.0], [30.0]])


def _cover(labeled: list[list[float]] | None, languages: list[str] | None = None) -> list[int]:
    selection = select_batch(
        COVER_PROBS,
        COVER_POINTS,
        strategy="margin_diversity",
        batch_size=2,
        candidate_factor=2,
        random_fraction=0,
        labeled_embeddings=labeled,
        languages=languages,
    )
    return selection.indices.tolist()


def test_margin_diversity_in_the_low_budget_covers_the_candidates_away_from_the_labeled() -> None:
    # Labeled at 9: distances 9, 8, 5, 1, so item 0 first; then min(d to 9, d to 0) = 1, 4, 1: item 2.
    assert _cover([[9.0]]) == [0, 2]
    # Labeled at 0: distances 0, 1, 4, 10, so item 3; then min(d to 0, d to 10) = 1, 4: item 2. Most
    # uncertain first: 2 (margin .2) before 3 (margin .3). Items 4 and 5 are farther but not candidates.
    assert _cover([[0.0]]) == [2, 3]
    # 9 labeled at 0 is still below 2 classes x 5 (one language).
    assert _cover([[0.0]] * 9) == [2, 3]


def test_the_low_budget_lasts_longer_in_a_pool_of_several_languages() -> None:
    # 10 labeled at 0 end the low budget of 2 classes in one language: the candidates are clustered as
    # with nothing labeled. With two languages of 3 items each the limit is 2 x 2 x 5 = 20: still a cover.
    clustered = _cover(None)
    assert clustered != [2, 3]
    assert _cover([[0.0]] * 10) == clustered
    assert _cover([[0.0]] * 10, languages=["en", "de"] * 3) == [2, 3]
    assert _cover([[0.0]] * 19, languages=["en", "de"] * 3) == [2, 3]
    assert _cover([[0.0]] * 20, languages=["en", "de"] * 3) == clustered


def test_languages_must_name_one_language_per_pool_item() -> None:
    with pytest.raises(ValueError, match="one language per pool item"):
        _cover([[0.0]], languages=["en"] * 5)


# One labeled item at 0 that the model gives to class 0 for sure; candidates A at 0 (leaning to class 1,
# margin .2) and B at 1 (leaning to class 0, margin .1). Batch 1, both candidates.
JOINT_PROBS = np.array([[0.4, 0.6], [0.55, 0.45]])
JOINT_POINTS = np.array([[0.0], [1.0]])


def _joint(labeled_probs: npt.ArrayLike | None, labeled: npt.ArrayLike = ((0.0,),)) -> list[int]:
    selection = select_batch(
        JOINT_PROBS,
        JOINT_POINTS,
        strategy="margin_diversity",
        batch_size=1,
        candidate_factor=2,
        random_fraction=0,
        labeled_embeddings=labeled,
        labeled_probs=labeled_probs,
    )
    return selection.indices.tolist()


def test_the_cover_weighs_predictions_with_the_labeled_items_probabilities() -> None:
    # Embeddings alone: A lies on the labeled item (0), B at 1: B. Joined with 2 x the probabilities
    # the labeled item is (0, 2, 0), A (0, .8, 1.2) at 1.2^2 + 1.2^2 = 2.88, B (1, 1.1, .9) at
    # 1 + .81 + .81 = 2.62 (squared): A, whose prediction is unlike anything labeled, is the farther.
    assert _joint(None) == [1]
    assert _joint([[1.0, 0.0]]) == [0]
    # A labeled item the model is unsure of sits nearer A: (0, 1, 1) -> A .04 + .04, B 1 + .01 + .01.
    assert _joint([[0.5, 0.5]]) == [1]


def test_labeled_probs_are_checked_against_the_labeled_embeddings() -> None:
    with pytest.raises(ValueError, match="one row per labeled item"):
        _joint([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="sum to 1"):
        _joint([[2.0, 3.0]])
    with pytest.raises(ValueError, match="need the labeled_embeddings"):
        select_batch(JOINT_PROBS, JOINT_POINTS, batch_size=1, labeled_probs=[[1.0, 0.0]])
    # No labeled items at all: an empty pair is accepted and covers from nothing.
    assert len(_joint(np.zeros((0, 2)), labeled=np.zeros((0, 1)))) == 1


def test_margin_diversity_in_the_low_budget_scores_picks_by_one_minus_margin() -> None:
    selection = select_batch(
        COVER_PROBS,
        COVER_POINTS,
        strategy="margin_diversity",
        batch_size=2,
        candidate_factor=2,
        random_fraction=0,
        labeled_embeddings=[[0.0]],
    )
    assert selection.scores == pytest.approx([0.8, 0.7])


def test_weighted_kmeans_pulls_the_representative_towards_heavy_rows() -> None:
    # Clusters {0, 1, 2} and {1000}. Equal weights: the left mean is 1, so row 1. Weights 1, 1, 6: the
    # mean is (0 + 1 + 12) / 8 = 1.625, nearer to 2 (0.375) than to 1 (0.625), so row 2.
    points = np.array([[0.0], [1.0], [2.0], [1000.0]])
    for seed in range(5):
        rng = np.random.default_rng(seed)
        assert sorted(weighted_kmeans_representatives(points, [1, 1, 1, 1], 2, rng=rng).tolist()) == [1, 3]
        assert sorted(weighted_kmeans_representatives(points, [1, 1, 6, 1], 2, rng=rng).tolist()) == [2, 3]


def test_weighted_kmeans_iterates_to_the_cluster_means_whatever_the_seeding() -> None:
    # Groups {0, 1, 2} and {4, 5, 6} are close enough that k-means++ often seeds both centres in one
    # group; Lloyd's iterations still end at centres 1 and 5 (rows 1 and 4). From seeds 0 and 1: clusters
    # {0} and {1..6} (mean 3.5), then {0, 1} and {2, 4, 5, 6} (0.5 and 4.25), then the two groups.
    points = np.array([[0.0], [1.0], [2.0], [4.0], [5.0], [6.0]])
    for seed in range(50):
        picks = weighted_kmeans_representatives(points, np.ones(6), 2, rng=np.random.default_rng(seed))
        assert sorted(picks.tolist()) == [1, 4]


def test_weighted_kmeans_gives_distinct_rows_for_duplicates_lowest_index_first() -> None:
    picks = weighted_kmeans_representatives(np.zeros((5, 2)), np.ones(5), 3, rng=np.random.default_rng(0))
    assert picks.tolist() == [0, 1, 2]


def test_margin_diversity_still_spreads_when_the_model_is_certain_of_every_candidate() -> None:
    # Every margin is 1, so every weight is 0 before the floor: the floor keeps the clustering spatial.
    points = np.array([[0.0, 0.0], [0.0, 0.1], [10.0, 0.0], [10.0, 0.1]])
    for seed in range(5):
        selection = select_batch(
            np.tile([[1.0, 0.0]], (4, 1)),
            points,
            strategy="margin_diversity",
            batch_size=2,
            random_fraction=0,
            seed=seed,
        )
        assert sorted((selection.indices // 2).tolist()) == [0, 1]
        assert selection.scores.tolist() == [0.0, 0.0]


def test_weighted_kmeans_refuses_negative_or_misshapen_weights() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="weights"):
        weighted_kmeans_representatives(np.zeros((3, 2)), [1.0, -1.0, 1.0], 2, rng=rng)
    with pytest.raises(ValueError, match="weights"):
        weighted_kmeans_representatives(np.zeros((3, 2)), [1.0, 1.0], 2, rng=rng)


QUOTA_LANGS = ["en"] * 30 + ["ar"] * 5 + ["es"] * 5
# Margins grow with the index, so every "en" item is more uncertain than every "ar" or "es" one.
QUOTA_PROBS = np.array([[0.5 + i / 100, 0.5 - i / 100] for i in range(40)])


def test_share_quota_reserves_the_most_uncertain_items_of_that_language() -> None:
    selection = select_batch(
        QUOTA_PROBS, strategy="margin", batch_size=10, languages=QUOTA_LANGS, quotas={"ar": 0.2}, random_fraction=0
    )
    assert sorted(selection.indices.tolist()) == [*range(8), 30, 31]


def test_count_quota_and_quota_above_availability_are_honoured() -> None:
    selection = select_batch(
        QUOTA_PROBS,
        strategy="entropy",
        batch_size=12,
        languages=QUOTA_LANGS,
        quotas={"ar": 3, "es": 9, "fr": 2},
        random_fraction=0,
    )
    langs = [QUOTA_LANGS[i] for i in selection.indices]
    # es asks 9 but the pool holds 5; fr has no items; the rest goes to the most uncertain en items.
    assert langs.count("ar") == 3
    assert langs.count("es") == 5
    assert langs.count("en") == 4


def test_quotas_adding_up_to_more_than_the_batch_are_scaled_down() -> None:
    selection = select_batch(
        QUOTA_PROBS,
        strategy="margin",
        batch_size=4,
        languages=QUOTA_LANGS,
        quotas={"ar": 4, "es": 4},
        random_fraction=0,
    )
    langs = [QUOTA_LANGS[i] for i in selection.indices]
    assert langs.count("ar") == 2
    assert langs.count("es") == 2


def test_quotas_hold_for_diversity_strategies_and_count_audit_picks() -> None:
    points = np.random.default_rng(0).standard_normal((40, 4))
    for strategy in ("kcenter", "badge", "margin_diversity", "random"):
        for seed in range(5):
            selection = select_batch(
                QUOTA_PROBS,
                points,
                strategy=strategy,  # type: ignore[arg-type]
                batch_size=10,
                languages=QUOTA_LANGS,
                quotas={"ar": 0.3},
                random_fraction=0.2,
                seed=seed,
            )
            langs = [QUOTA_LANGS[i] for i in selection.indices]
            assert langs.count("ar") >= 3
            assert len(set(selection.indices.tolist())) == 10


def test_quotas_without_languages_are_refused() -> None:
    with pytest.raises(ValueError, match="language"):
        select_batch(QUOTA_PROBS, strategy="margin", batch_size=5, quotas={"ar": 1})


@pytest.mark.parametrize(("batch", "expected"), [(40, 2), (50, 3), (10, 1), (9, 0), (0, 0)])
def test_audit_count_rounds_five_percent_of_the_batch_half_up(batch: int, expected: int) -> None:
    assert audit_count(0.05, batch) == expected


def test_random_audit_picks_are_flagged_and_spread_through_the_order() -> None:
    probs = _softmax_rows(500, 3, seed=4)
    selection = select_batch(probs, strategy="margin", batch_size=50, seed=1)
    assert int(selection.is_random.sum()) == 3
    assert np.flatnonzero(selection.is_random).tolist() == [8, 25, 41]
    assert selection.scores[selection.is_random].tolist() == [0.0, 0.0, 0.0]
    model_picks = selection.indices[~selection.is_random]
    assert (
        model_picks.tolist()
        == [i for i in uncertainty_order(probs, "margin") if i not in selection.indices[selection.is_random]][:47]
    )


def test_random_audit_picks_come_from_the_whole_pool() -> None:
    probs = _softmax_rows(200, 3, seed=5)
    top = set(uncertainty_order(probs, "margin")[:20].tolist())
    audited: set[int] = set()
    for seed in range(40):
        selection = select_batch(probs, strategy="margin", batch_size=20, random_fraction=0.25, seed=seed)
        audited |= set(selection.indices[selection.is_random].tolist())
        assert len(set(selection.indices.tolist())) == 20
    # 40 x 5 uniform draws from 200 items reach well over 100 of them, most outside the top 20.
    assert len(audited) > 100
    assert len(audited - top) > 90


def test_random_strategy_flags_every_pick() -> None:
    selection = select_batch(_softmax_rows(100, 2, seed=6), strategy="random", batch_size=10, seed=3)
    assert selection.is_random.all()
    assert len(set(selection.indices.tolist())) == 10


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_same_seed_same_selection(strategy: str) -> None:
    probs = _softmax_rows(300, 4, seed=8)
    points = np.random.default_rng(9).standard_normal((300, 6))
    first = select_batch(probs, points, strategy=strategy, batch_size=20, seed=11)  # type: ignore[arg-type]
    again = select_batch(probs, points, strategy=strategy, batch_size=20, seed=11)  # type: ignore[arg-type]
    assert first.indices.tolist() == again.indices.tolist()
    assert first.is_random.tolist() == again.is_random.tolist()
    other = select_batch(probs, points, strategy=strategy, batch_size=20, seed=12)  # type: ignore[arg-type]
    # The seed moves the audit picks (and, for random, badge and margin_diversity's seeding, the rest).
    assert other.indices.tolist() != first.indices.tolist()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_pool_smaller_than_the_batch_is_returned_whole(strategy: str) -> None:
    probs = _softmax_rows(7, 3, seed=10)
    points = np.random.default_rng(0).standard_normal((7, 3))
    selection = select_batch(probs, points, strategy=strategy, batch_size=50)  # type: ignore[arg-type]
    assert sorted(selection.indices.tolist()) == list(range(7))
    assert selection.scores.shape == selection.is_random.shape == (7,)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_batch_zero_and_empty_pool_give_empty_selections(strategy: str) -> None:
    probs = _softmax_rows(5, 2, seed=1)
    points = np.ones((5, 2))
    assert len(select_batch(probs, points, strategy=strategy, batch_size=0)) == 0  # type: ignore[arg-type]
    empty = select_batch(np.zeros((0, 2)), np.zeros((0, 2)), strategy=strategy, batch_size=5)  # type: ignore[arg-type]
    assert empty.indices.size == 0


def test_single_class_probabilities_rank_by_index() -> None:
    probs = np.ones((4, 1))
    assert margin(probs).tolist() == [1.0] * 4
    selection = select_batch(probs, strategy="margin", batch_size=3, random_fraction=0)
    assert selection.indices.tolist() == [0, 1, 2]
    assert selection.scores.tolist() == [0.0, 0.0, 0.0]
    spread = select_batch(probs, np.eye(4), strategy="badge", batch_size=3, random_fraction=0)
    assert len(set(spread.indices.tolist())) == 3


def test_logits_and_missing_embeddings_are_refused() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        select_batch([[2.0, -1.0]], strategy="margin", batch_size=1)
    with pytest.raises(ValueError, match="embeddings"):
        select_batch([[0.5, 0.5]], strategy="kcenter", batch_size=1)
    with pytest.raises(ValueError, match="strategy"):
        select_batch([[0.5, 0.5]], strategy="bald", batch_size=1)  # type: ignore[arg-type]

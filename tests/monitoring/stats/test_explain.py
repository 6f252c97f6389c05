"""The drift explanation: cross-fitted domain classifier, DeLong interval, any script."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from monitoring.stats.explain import delong_interval, explain_shift

LATIN = [
    "the",
    "room",
    "was",
    "clean",
    "staff",
    "friendly",
    "breakfast",
    "good",
    "view",
    "small",
    "bed",
    "quiet",
    "location",
    "near",
    "station",
    "price",
    "fair",
]
ARABIC = [
    "الغرفة",
    "نظيفة",
    "الموظفون",
    "ودودون",
    "الإفطار",
    "جيد",
    "المنظر",
    "جميل",
    "السرير",
    "صغير",
    "الموقع",
    "هادئ",
    "قريب",
    "من",
    "المحطة",
    "السعر",
]
CYRILLIC = [
    "номер",
    "чистый",
    "персонал",
    "вежливый",
    "завтрак",
    "хороший",
    "вид",
    "красивый",
    "кровать",
    "маленькая",
    "тихо",
    "рядом",
    "вокзал",
    "цена",
]
CJK = list("房间干净服务员友好早餐很好景色漂亮床小安静位置方便车站价格合理")


def _texts(words: list[str], count: int, seed: int, *, joiner: str = " ", inject: str | None = None) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        chosen = rng.choices(words, k=rng.randint(6, 14))
        if inject is not None:
            chosen.insert(rng.randrange(len(chosen) + 1), inject)
        texts.append(joiner.join(chosen))
    return texts


def _naive_auc_and_variance(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    def psi(x: float, y: float) -> float:
        return 1.0 if x > y else 0.5 if x == y else 0.0

    grid = np.array([[psi(x, y) for y in neg] for x in pos])
    v10, v01 = grid.mean(axis=1), grid.mean(axis=0)
    return float(grid.mean()), float(np.var(v10, ddof=1) / len(pos) + np.var(v01, ddof=1) / len(neg))


def test_delong_interval_equals_the_definition_computed_pairwise():
    rng = np.random.default_rng(0)
    pos = np.round(rng.normal(0.6, 1, 40), 1)  # rounded: ties must count 1/2
    neg = np.round(rng.normal(0.0, 1, 55), 1)
    auc, low, high = delong_interval(pos, neg)
    naive_auc, variance = _naive_auc_and_variance(pos, neg)
    assert auc == pytest.approx(naive_auc, rel=1e-12)
    assert auc == pytest.approx(roc_auc_score([1] * 40 + [0] * 55, np.concatenate([pos, neg])))
    assert (high - low) / 2 == pytest.approx(1.959963985 * variance**0.5, rel=1e-6)
    assert delong_interval(np.array([2.0, 3.0]), np.array([0.0, 1.0]))[2] == 1.0  # clipped


def test_explain_finds_an_injected_token_and_scores_its_texts_higher():
    reference = _texts(LATIN, 300, seed=1)
    current = _texts(LATIN, 100, seed=2) + _texts(LATIN, 100, seed=3, inject="refund")
    result = explain_shift(reference, current)
    assert result.auc > 0.7 and result.auc_low < result.auc < result.auc_high
    assert result.auc_low > 0.5
    assert all(token in " refund " for token, _ in result.top_tokens[:5])  # n-grams of the injected word
    assert all(weight > 0 for _, weight in result.top_tokens)
    scores = np.array(result.current_scores)
    assert len(scores) == 200 and result.n_reference == 300 and result.n_current == 200
    assert scores[100:].mean() > scores[:100].mean() + 0.2
    assert roc_auc_score([0] * 100 + [1] * 100, scores) > 0.95  # the injected texts rank first


@pytest.mark.parametrize(
    ("words", "joiner", "inject", "fragment"),
    [
        (ARABIC, " ", "استرداد", "استر"),
        (CYRILLIC, " ", "возврат", "возв"),
        (CJK, "", "退款", "退款"),
    ],
    ids=["arabic", "cyrillic", "cjk"],
)
def test_explain_works_on_non_latin_scripts(words, joiner, inject, fragment):
    reference = _texts(words, 200, seed=4, joiner=joiner)
    current = _texts(words, 60, seed=5, joiner=joiner) + _texts(words, 60, seed=6, joiner=joiner, inject=inject)
    result = explain_shift(reference, current)
    assert result.auc_low > 0.5
    assert result.top_tokens[0][0] in f" {inject} "  # the strongest n-gram is part of the injected word
    assert any(fragment in token for token, _ in result.top_tokens[:10])
    scores = np.array(result.current_scores)
    assert scores[60:].mean() > scores[:60].mean() + 0.2


def test_no_shift_gives_an_auc_interval_around_one_half():
    result = explain_shift(_texts(LATIN, 200, seed=7), _texts(LATIN, 150, seed=8))
    assert result.auc_low < 0.5 < result.auc_high
    assert abs(result.auc - 0.5) < 0.1


def test_cross_fitting_keeps_memorisable_noise_from_looking_like_a_shift():
    # Random strings from one alphabet: a model scoring its own training texts would separate them almost
    # perfectly (every text has private n-grams); scored out of fold they are indistinguishable.
    rng = random.Random(9)
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    noise = ["".join(rng.choices(alphabet, k=30)) for _ in range(300)]
    result = explain_shift(noise[:150], noise[150:])
    assert result.auc < 0.62


def test_a_small_current_window_against_a_large_reference_is_still_ranked():
    reference = _texts(LATIN, 800, seed=10)
    current = _texts(LATIN, 20, seed=11) + _texts(LATIN, 20, seed=12, inject="cockroach")
    result = explain_shift(reference, current, folds=5)
    scores = np.array(result.current_scores)
    assert scores[20:].mean() > scores[:20].mean()
    assert roc_auc_score([0] * 20 + [1] * 20, scores) > 0.9


def test_embeddings_add_a_shift_the_characters_do_not_show():
    rng = np.random.default_rng(13)
    reference, current = _texts(LATIN, 150, seed=14), _texts(LATIN, 150, seed=15)
    ref_emb, cur_emb = rng.normal(size=(150, 16)), rng.normal(size=(150, 16))
    cur_emb[:, 0] += 1.5
    without = explain_shift(reference, current)
    with_embeddings = explain_shift(reference, current, reference_embeddings=ref_emb, current_embeddings=cur_emb)
    assert without.auc < 0.62
    assert with_embeddings.auc > 0.75
    assert all(not token.startswith("emb") for token, _ in with_embeddings.top_tokens)


def test_explain_refuses_input_it_cannot_use():
    with pytest.raises(ValueError, match="two texts"):
        explain_shift(["a b"], ["c d", "e f"])
    with pytest.raises(ValueError, match="both"):
        explain_shift(["a", "b"], ["c", "d"], reference_embeddings=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="one row per text"):
        explain_shift(
            ["a", "b"], ["c", "d"], reference_embeddings=np.zeros((3, 3)), current_embeddings=np.zeros((2, 3))
        )


def test_explanation_serialises_to_json():
    result = explain_shift(_texts(LATIN, 30, seed=16), _texts(LATIN, 30, seed=17, inject="mould"), top=5)
    payload = json.loads(json.dumps(result.as_dict(), allow_nan=False))
    assert len(payload["top_tokens"]) <= 5 and isinstance(payload["top_tokens"][0][0], str)
    assert len(payload["current_scores"]) == 30

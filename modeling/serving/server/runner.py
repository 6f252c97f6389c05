"""Running a version: ``artifact_runner`` loads a verified artifact and returns its labels and a runner
that scores texts longest-first in chunks (small on a CPU, big on a GPU) and adds the drift
descriptors (unknown-token rate, the embedding projected with the reference's PCA once the version
has one). Torch's intra-op threads are set once to the cores this process owns (``_set_threads``).
"""

from __future__ import annotations

from modeling.ml.config import DeviceRequest
from modeling.serving.projection import ProjectionWatch
from modeling.serving.server.specs import ModelSpec, Runner, TextResult

CPU_FORWARD_BATCH = 8
GPU_FORWARD_BATCH = 64
# On a CPU a forward pass costs the same per token at any batch size, plus a fixed part per pass: the
# demo model in int8 (ONNX Runtime, one thread, AMD EPYC with AVX2) took 2.8 ms for 1 x 8 tokens, 15.2
# for 1 x 64 and 30.9 for 4 x 32, about 1.0 ms + 0.22 ms a token: the fixed part is ~4.5 tokens' worth.
# A request batch is cut where that beats padding (encoding.padding_aware_batches): on that machine
# random batches of 4 and 8 tweets cost 17% and 35% less than one padded chunk (the costs interpolated).
CPU_CHUNK_OVERHEAD_TOKENS = 4.5


def artifact_runner(spec: ModelSpec) -> tuple[list[str], Runner]:
    """Load ``spec``'s artifact (verified against its manifest hash) and return its labels and runner."""
    import torch

    from modeling.ml.artifacts import load_artifact
    from modeling.ml.config import InferenceConfig

    device: DeviceRequest = "cpu" if spec.quantize_int8 else spec.device
    on_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    classifier = load_artifact(spec.path, expected_manifest_sha256=spec.manifest_sha256)
    config = InferenceConfig(
        # The batch is scored longest-first in chunks of this many texts. On a CPU, padding costs as
        # much as real tokens and a bigger matrix buys little: chunks of 8 scored 106 tweets/s (fp32)
        # and 391 (int8) on one core, one padded batch of 64 only 60 and 184. A GPU wants big batches.
        # int8 runs in ONNX Runtime (InferenceConfig.int8_backend): 1.4x torch.ao's int8 per CPU-second
        # in chunks of 4-16, 2x for single texts (see modeling.ml.onnx_int8). The warm-up builds it.
        batch_size=CPU_FORWARD_BATCH if on_cpu else GPU_FORWARD_BATCH,
        chunk_overhead_tokens=CPU_CHUNK_OVERHEAD_TOKENS if on_cpu else None,
        max_length=spec.max_length,
        truncation=spec.truncation,  # type: ignore[arg-type]
        device=device,
        quantize_int8=spec.quantize_int8,
        # The server set the thread count for the cores it owns; None here would reset it per batch.
        num_threads=torch.get_num_threads(),
    )

    labels = list(classifier.labels)
    watch = ProjectionWatch(spec.path, spec.manifest_sha256)
    hidden_size = int(classifier.model.config.hidden_size)

    def run(texts: list[str]) -> list[TextResult]:
        projection = watch.current(hidden_size)
        predictions = classifier.predict(texts, config, return_embeddings=projection is not None, return_unk_rates=True)
        rates = predictions.unk_rates
        assert rates is not None  # asked for above
        codes: list[bytes | None] = [None] * len(texts)
        if projection is not None and predictions.embeddings is not None:
            codes = list(projection.encode(predictions.embeddings))
        return [
            TextResult(
                probs=[round(float(p), 6) for p in row],
                version=spec.version,
                labels=labels,
                unk_rate=round(rate, 4),
                embedding=code,
            )
            for row, rate, code in zip(predictions.probabilities, rates, codes, strict=True)
        ]

    return labels, run


def _set_threads(threads: int | None, workers: int = 1) -> int:
    """Give torch ``threads`` per forward pass (default: this process's cores shared by the workers)."""
    from modeling.ml.runtime import available_cores, set_threads

    return set_threads(threads or max(1, available_cores() // workers))

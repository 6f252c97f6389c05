"""Score texts: length-sorted batches, truncation or sliding windows, calibrated outputs, optional int8."""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear
from transformers import PreTrainedModel
from transformers import PreTrainedTokenizerBase as Tokenizer

from modeling.ml.calibration import apply_temperature
from modeling.ml.config import InferenceConfig, Int8Backend
from modeling.ml.encoding import (
    encode_content,
    encode_content_windows,
    pad_batch,
    padding_aware_batches,
    sorted_batches,
    tokenize,
)
from modeling.ml.errors import ConfigError
from modeling.ml.metrics import FloatArray, IntArray, accuracy
from modeling.ml.onnx_int8 import OnnxInt8Model, export_int8
from modeling.ml.runtime import (
    Runtime,
    autocast,
    available_cores,
    detect_runtime,
    mean_pool,
    set_mode,
    set_threads,
    to_device,
)
from modeling.ml.textinfo import content_unk_rates

Float32Array = npt.NDArray[np.float32]


@dataclass
class Predictions:
    """Per-text outputs, in input order; probabilities are temperature-calibrated."""

    logits: Float32Array
    probabilities: FloatArray
    labels: IntArray
    confidence: FloatArray
    margin: FloatArray
    entropy: FloatArray
    embeddings: Float32Array | None = None
    # Each text's unknown-token rate over the first max_length content tokens (`textinfo.unk_rates`),
    # from the ids the model was fed: asked for with predict(return_unk_rates=True).
    unk_rates: list[float] | None = None


def summarize_logits(logits: npt.ArrayLike, temperature: float = 1.0) -> Predictions:
    """Return calibrated probabilities, argmax labels, confidence, top1-top2 margin and entropy (nats)."""
    raw = np.asarray(logits, dtype=np.float32)
    probs = apply_temperature(raw, temperature)
    ranked = np.sort(probs, axis=1)
    margin = ranked[:, -1] - ranked[:, -2] if probs.shape[1] > 1 else ranked[:, -1]
    # 0 * log 0 is taken as 0: clip only inside the log so exact zeros contribute nothing.
    entropy = -(probs * np.log(np.clip(probs, 1e-300, None))).sum(axis=1)
    return Predictions(
        logits=raw,
        probabilities=probs,
        labels=probs.argmax(axis=1).astype(np.int64),
        confidence=ranked[:, -1],
        margin=margin,
        entropy=entropy,
    )


# What scores a batch: a transformers model (fp32/bf16/fp16, or torch.ao int8) or an ONNX Runtime int8 export.
ScoringModel = PreTrainedModel | OnnxInt8Model


def forward_sequences(
    model: ScoringModel,
    sequences: Sequence[Sequence[int]],
    *,
    pad_id: int,
    batch_size: int,
    runtime: Runtime,
    want_embeddings: bool = False,
    chunk_overhead_tokens: float | None = None,
) -> tuple[Float32Array, Float32Array | None]:
    """Return logits (and mean-pooled last hidden states) for token id sequences, in their input order.

    Batches are formed longest-first so each pads only to lengths near its own: chunks of `batch_size`,
    or with `chunk_overhead_tokens` the padding-aware cut (`encoding.padding_aware_batches`); results
    are scattered back to the caller's order. The model must already be on `runtime`'s device.
    """
    num_labels = int(model.config.num_labels)
    logits = np.zeros((len(sequences), num_labels), dtype=np.float32)
    embeddings = (
        np.zeros((len(sequences), int(model.config.hidden_size)), dtype=np.float32) if want_embeddings else None
    )
    if not isinstance(model, OnnxInt8Model):
        set_mode(model, training=False)
    with torch.inference_mode(), autocast(runtime):
        lengths = [len(seq) for seq in sequences]
        if chunk_overhead_tokens is None:
            batches = sorted_batches(lengths, batch_size)
        else:
            batches = padding_aware_batches(lengths, batch_size, chunk_overhead_tokens)
        for batch in batches:
            seqs = [sequences[i] for i in batch]
            batch_logits, batch_emb = _forward_batch(model, seqs, pad_id, runtime, want_embeddings)
            logits[batch] = batch_logits
            if embeddings is not None and batch_emb is not None:
                embeddings[batch] = batch_emb
    return logits, embeddings


def _forward_batch(
    model: ScoringModel, seqs: list[Sequence[int]], pad_id: int, runtime: Runtime, want_embeddings: bool
) -> tuple[Float32Array, Float32Array | None]:
    """Run one padded batch and return its float32 logits and, when wanted, pooled embeddings."""
    ids, mask = pad_batch(seqs, pad_id)
    if isinstance(model, OnnxInt8Model):
        return model.forward(ids, mask, want_embeddings)
    input_ids = torch.from_numpy(ids).to(runtime.torch_device)
    attention = torch.from_numpy(mask).to(runtime.torch_device)
    out = model(input_ids=input_ids, attention_mask=attention, output_hidden_states=want_embeddings)
    logits = out.logits.float().cpu().numpy()
    if not want_embeddings:
        return logits, None
    return logits, mean_pool(out.hidden_states[-1], attention).cpu().numpy()


def predict(
    model: ScoringModel,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    config: InferenceConfig | None = None,
    *,
    temperature: float = 1.0,
    return_embeddings: bool = False,
    return_unk_rates: bool = False,
) -> Predictions:
    """Score `texts` and return calibrated predictions in input order.

    `return_unk_rates` adds each text's unknown-token rate, counted on the same tokenization (the
    texts are tokenized once: a second pass cost as much again, the whole text for a long one).
    """
    cfg = config or InferenceConfig()
    set_threads(cfg.num_threads)
    if cfg.quantize_int8 and not isinstance(model, OnnxInt8Model) and not is_quantized(model):
        model = quantize_int8(model, backend=cfg.int8_backend, threads=cfg.num_threads)
    runtime = detect_runtime(device="cpu" if is_quantized(model) else cfg.device, precision=cfg.precision)
    if not isinstance(model, OnnxInt8Model):
        to_device(model, runtime.torch_device)
    logits, embeddings, content = _score(model, tokenizer, texts, cfg, runtime, return_embeddings)
    result = summarize_logits(logits, temperature)
    result.embeddings = embeddings
    if return_unk_rates:
        result.unk_rates = content_unk_rates(tokenizer, content, max_tokens=cfg.max_length)
    return result


def _score(
    model: ScoringModel,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    cfg: InferenceConfig,
    runtime: Runtime,
    want_embeddings: bool,
) -> tuple[Float32Array, Float32Array | None, list[list[int]]]:
    """Return per-text logits (and embeddings), averaging over windows in sliding-window mode, and
    each text's content token ids (untruncated, no special tokens)."""
    owners: IntArray | None = None
    content = tokenize(tokenizer, texts)
    if cfg.truncation == "sliding_window":
        seqs, owners = encode_content_windows(tokenizer, content, cfg.max_length, cfg.stride)
    else:
        seqs = encode_content(tokenizer, content, cfg.max_length, cfg.truncation, cfg.head_tokens)
    logits, embeddings = forward_sequences(
        model,
        seqs,
        pad_id=_pad_id(tokenizer),
        batch_size=cfg.batch_size,
        runtime=runtime,
        want_embeddings=want_embeddings,
        chunk_overhead_tokens=cfg.chunk_overhead_tokens,
    )
    if owners is None:
        return logits, embeddings, content
    return (
        _average_by_owner(logits, owners, len(texts)),
        _average_by_owner(embeddings, owners, len(texts)) if embeddings is not None else None,
        content,
    )


def _average_by_owner(values: Float32Array, owners: IntArray, count: int) -> Float32Array:
    """Return the mean of the rows of `values` that belong to each of `count` owners."""
    sums = np.zeros((count, values.shape[1]), dtype=np.float64)
    np.add.at(sums, owners, values)
    per_owner = np.bincount(owners, minlength=count).astype(np.float64)
    return (sums / np.maximum(per_owner, 1)[:, None]).astype(np.float32)


def _pad_id(tokenizer: Tokenizer) -> int:
    """Return the tokenizer's pad id, refusing tokenizers that cannot pad."""
    if tokenizer.pad_token_id is None:
        raise ConfigError("the tokenizer has no pad token; batched inference needs one")
    return int(tokenizer.pad_token_id)


def is_quantized(model: ScoringModel | torch.nn.Module) -> bool:
    """Return whether the model is an int8 one: an ONNX Runtime export or torch.ao quantized linear layers."""
    if isinstance(model, OnnxInt8Model):
        return True
    known = _QUANTIZED.get(model)
    if known is None:
        known = _QUANTIZED[model] = any(isinstance(module, DynamicQuantizedLinear) for module in model.modules())
    return known


# A model's quantized-ness is fixed once it exists (quantize_int8 works on a copy before returning it),
# and serving asks per batch: the walk over every submodule was ~3% of a batch of 4 tweets.
_QUANTIZED: weakref.WeakKeyDictionary[torch.nn.Module, bool] = weakref.WeakKeyDictionary()


def quantize_int8(
    model: PreTrainedModel, *, backend: Int8Backend = "onnxruntime", threads: int | None = None
) -> ScoringModel:
    """Return an int8 CPU copy of the model: weights int8, activations quantized on the fly.

    ``onnxruntime`` (the default) exports the model and runs the quantized graph in ONNX Runtime with
    ``threads`` intra-op threads (None: this process's cores); ``torch`` swaps the linear layers for
    ``torch.ao`` dynamically quantized ones and uses torch's threads.
    """
    if backend == "onnxruntime":
        return export_int8(model, threads=threads or available_cores())
    source = copy.deepcopy(model)
    to_device(source, "cpu")
    set_mode(source, training=False)
    with warnings.catch_warnings():
        # torch marks torch.ao.quantization deprecated in favour of torchao, which is not a dependency;
        # the eager API still works in the pinned torch.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        quantized: PreTrainedModel = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            source, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
        )
    return quantized


@dataclass(frozen=True)
class QuantizationReport:
    """How int8 dynamic quantization changed accuracy, agreement and speed on one eval set."""

    accuracy_fp32: float
    accuracy_int8: float
    accuracy_delta: float
    agreement: float
    max_probability_change: float
    seconds_fp32: float
    seconds_int8: float  # includes building the int8 copy (for onnxruntime: the export and quantization)
    backend: str = "onnxruntime"


def quantization_delta(
    model: PreTrainedModel,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    labels: Sequence[int],
    config: InferenceConfig | None = None,
) -> QuantizationReport:
    """Return the accuracy change (int8 minus fp32) and agreement of int8 quantization on eval data."""
    cfg = dataclasses.replace(config or InferenceConfig(), device="cpu", quantize_int8=False)
    started = time.perf_counter()
    full = predict(model, tokenizer, texts, cfg)
    middle = time.perf_counter()
    small = predict(quantize_int8(model, backend=cfg.int8_backend, threads=cfg.num_threads), tokenizer, texts, cfg)
    ended = time.perf_counter()
    acc_full, acc_small = accuracy(labels, full.labels), accuracy(labels, small.labels)
    return QuantizationReport(
        accuracy_fp32=acc_full,
        accuracy_int8=acc_small,
        accuracy_delta=acc_small - acc_full,
        agreement=float((full.labels == small.labels).mean()) if len(texts) else 1.0,
        max_probability_change=float(np.abs(full.probabilities - small.probabilities).max()) if len(texts) else 0.0,
        seconds_fp32=middle - started,
        seconds_int8=ended - middle,
        backend=cfg.int8_backend,
    )

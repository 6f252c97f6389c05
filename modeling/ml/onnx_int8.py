"""CPU int8 serving through ONNX Runtime: the fp32 classifier exported once, weights quantized per channel.

Why not torch's own dynamic quantization: on this project's 2-core Sapphire Rapids CPU, scoring tweets
(MiniLM, chunks of 8, one thread) went 64 texts/s in fp32, 114-122 with ``torch.ao`` dynamic int8
(its quantized linear layers were 41% of a batch of 4, the attention and the Python around the
modules most of the rest) and 150-195 with ONNX Runtime's dynamic int8 graph, which fuses the
quantize-matmul-dequantize chain and runs the whole forward pass without Python in between.

The default ``Int8Recipe`` (per-channel int8 weights, uint8 activations, attention's activation
matmuls left in float, the session's default ``ORT_ENABLE_ALL`` graph passes) was the cheapest of those
tried on a 2-core AMD EPYC with AVX512-VNNI and AVX512-BF16, measured with another job on the machine.
``benchmarks/int8_backends.py --ort-recipes ...``, two runs, CPU ms per text at 1/4/8/16 texts per
request: the default 5.6/5.4/5.0/4.4 and 4.9/4.6/4.8/4.2; ONNX Runtime's BERT optimizer before
quantizing (QAttention, SkipLayerNormalization, BiasGelu, EmbedLayerNormalization) 2-21% more (13-21%
at 8-16 texts in both runs); ``reduce_range`` -10% to +4% and quantized attention matmuls -10% to +15%,
cheaper at 4 texts in one run only; per-tensor weights -9% to +2% but 97.3% label agreement with fp32
(the default 99.6%). Outside the benchmark, same CPU and path: 8- and 4-bit ``MatMulNBits`` weights
1.4-2.3 times the default; the optimizer's MultiHeadAttention fusion, its Attention fusion without the
bias fusions, or its fusions without Attention 11-17% more at 4 and 16 texts (-11% to +8% at 1);
spinning off, denormals as zero, no memory arena, ``ORT_ENABLE_EXTENDED``: -5% to +9%, noise (one
intra-op thread runs on the caller's thread: there is no pool to spin).

The export wraps the classifier so the graph returns both the logits and the attention-masked mean of
the last hidden states (serving projects that embedding for drift), from ``input_ids`` and
``attention_mask`` with dynamic batch and sequence axes. The exported and quantized files live in a
temporary directory only while the session is built: ONNX Runtime keeps the graph in memory.

``InferenceSession.run`` releases the GIL and may be called from several threads at once; with
``intra_op_num_threads=1`` each call runs on its caller's thread, which is how the model server's
compute slots use it.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from transformers import PreTrainedModel

from modeling.ml.errors import ConfigError
from modeling.ml.runtime import mean_pool, set_mode

Float32Array = npt.NDArray[np.float32]

OPSET = 17


def onnxruntime_available() -> bool:
    """Return whether ONNX Runtime and its quantization tools can be imported here."""
    try:
        import onnxruntime  # noqa: F401
        from onnxruntime.quantization import quantize_dynamic  # noqa: F401
    except ImportError:
        return False
    return True


class _Export(torch.nn.Module):
    """The graph to export: (input_ids, attention_mask) -> (logits, mean-pooled last hidden states)."""

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return out.logits.float(), mean_pool(out.hidden_states[-1], attention_mask)


@dataclass(frozen=True)
class Int8Recipe:
    """How the fp32 export becomes the int8 graph; the defaults are what serving uses (see the module doc).

    `fuse_transformer` runs ONNX Runtime's BERT optimizer (fused Attention, SkipLayerNormalization,
    BiasGelu, EmbedLayerNormalization) on the fp32 graph before quantizing; `quantize_attention_matmuls`
    also quantizes the activation-by-activation matmuls of attention (``MatMulConstBOnly`` off).
    Activations are always dynamic uint8 (ONNX Runtime's dynamic quantization supports no other).
    """

    per_channel: bool = True
    reduce_range: bool = False
    quantize_attention_matmuls: bool = False
    fuse_transformer: bool = False


@dataclass(eq=False)  # identity semantics: usable as a weak dict key
class OnnxInt8Model:
    """An ONNX Runtime session over the int8 export of one classifier; scores padded id batches."""

    session: Any
    config: Any  # the source model's transformers config (num_labels, hidden_size)
    threads: int

    def forward(
        self, ids: np.ndarray, mask: np.ndarray, want_embeddings: bool
    ) -> tuple[Float32Array, Float32Array | None]:
        """Return float32 logits (and pooled embeddings when wanted) for one padded batch."""
        names = ["logits", "pooled"] if want_embeddings else ["logits"]
        outputs = self.session.run(names, {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)})
        logits = np.asarray(outputs[0], dtype=np.float32)
        return logits, (np.asarray(outputs[1], dtype=np.float32) if want_embeddings else None)


def export_int8(model: PreTrainedModel, *, threads: int = 1) -> OnnxInt8Model:
    """Export the fp32 `model` to ONNX, quantize its weights to int8 and open a CPU session on it."""
    return export_session(model, threads=threads, quantize=True)


def export_session(
    model: PreTrainedModel, *, threads: int = 1, quantize: bool = True, recipe: Int8Recipe | None = None
) -> OnnxInt8Model:
    """Export `model` and open an ONNX Runtime CPU session on it, int8 weights unless `quantize` is off.

    The fp32 session exists to check the export itself: it must match torch to float rounding. `recipe`
    (quantized sessions only) picks the int8 variant; benchmarks/int8_backends.py compares them.
    """
    if not onnxruntime_available():
        raise ConfigError("int8 through ONNX Runtime needs the onnxruntime package; install it or use torch")
    if recipe is not None and recipe.fuse_transformer and model.config.model_type != "bert":
        # The fused embedding op numbers positions 0..n-1; RoBERTa-style models number them past the padding.
        raise ConfigError(f"fuse_transformer handles BERT graphs only, not {model.config.model_type!r}")
    import onnxruntime as ort

    source = model
    if next(model.parameters()).device.type != "cpu":  # export from a CPU copy; the caller's model stays put
        source = copy.deepcopy(model)
        source.to("cpu")  # type: ignore[arg-type]  # transformers' stub types the device argument oddly
    set_mode(source, training=False)
    with tempfile.TemporaryDirectory(prefix="loopline-onnx-") as tmp:
        fp32, int8 = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        _export(source, fp32)
        if quantize:
            _quantize(fp32, int8, recipe or Int8Recipe(), source.config)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initializers are noise here
        graph = (int8 if quantize else fp32).read_bytes()
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    return OnnxInt8Model(session=session, config=model.config, threads=threads)


def _quantize(fp32: Path, int8: Path, recipe: Int8Recipe, config: Any) -> None:
    """Write the dynamically quantized (int8 weights, uint8 activations) copy of `fp32` to `int8`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with warnings.catch_warnings(), _quiet_quantizer():
        warnings.simplefilter("ignore")
        if recipe.fuse_transformer:
            from onnxruntime.transformers.optimizer import optimize_model

            fused = fp32.with_suffix(".fused.onnx")
            heads, hidden = int(config.num_attention_heads), int(config.hidden_size)
            # opt_level 0: the Python fusions only; the session applies ONNX Runtime's own graph passes.
            optimized = optimize_model(str(fp32), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0)
            optimized.save_model_to_file(str(fused))
            fp32 = fused
        quantize_dynamic(
            fp32,
            int8,
            weight_type=QuantType.QInt8,
            per_channel=recipe.per_channel,
            reduce_range=recipe.reduce_range,
            # Shape inference cannot type every node of a transformers graph; the rest is float.
            extra_options={"DefaultTensorType": 1, "MatMulConstBOnly": not recipe.quantize_attention_matmuls},
        )


class _DropQuantizerChatter(logging.Filter):
    """Drop the records ONNX Runtime's quantizer logs on the root logger (one per tensor, at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "/onnxruntime/quantization/" not in record.pathname.replace("\\", "/")


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Filter the quantizer's root-logger chatter while it runs; other threads' records still pass."""
    chatter = _DropQuantizerChatter()
    root = logging.getLogger()
    root.addFilter(chatter)
    try:
        yield
    finally:
        root.removeFilter(chatter)


def _export(model: PreTrainedModel, dest: Path) -> None:
    """Trace the classifier with a small dummy batch and write the ONNX graph with dynamic axes."""
    ids = torch.full((2, 8), 5, dtype=torch.long)
    mask = torch.ones((2, 8), dtype=torch.long)
    mask[1, 6:] = 0
    # The exporter puts the module back in the mode it found it in, recursively: a wrapper left in its
    # default training mode would switch the caller's model to training (dropout on) afterwards.
    wrapper = _Export(model)
    wrapper.train(False)
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
        torch.onnx.export(
            wrapper,
            (ids, mask),
            str(dest),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits", "pooled"],
            dynamic_axes={**axes, "logits": {0: "batch"}, "pooled": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )

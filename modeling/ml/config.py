"""Hyperparameters for training and inference: one dataclass each, validated on construction."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from modeling.ml.errors import ConfigError

Truncation = Literal["head", "head_tail"]
InferenceTruncation = Literal["head", "head_tail", "sliding_window"]
DeviceRequest = Literal["auto", "cpu", "cuda"]
PrecisionRequest = Literal["auto", "fp32", "bf16", "fp16"]
Int8Backend = Literal["onnxruntime", "torch"]


def _require(condition: bool, message: str) -> None:
    """Raise ConfigError with `message` unless `condition` holds."""
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a fine-tuning run; the defaults suit a base-size encoder on a few thousand texts."""

    lr: float = 3e-5
    weight_decay: float = 0.01
    epochs: int = 3
    batch_size: int = 16
    grad_accum_steps: int = 1
    warmup_ratio: float = 0.06
    max_grad_norm: float | None = 1.0
    seed: int = 13
    max_length: int = 256
    class_weights: Literal["auto", "none"] = "auto"
    freeze_word_embeddings: bool = False
    # Number of evaluations without a macro-F1 improvement before stopping; None disables early stopping.
    early_stopping_patience: int | None = 3
    # Evaluate every N optimizer steps, or at the end of each epoch.
    eval_every: int | Literal["epoch"] = "epoch"
    truncation: Truncation = "head"
    # Tokens kept from the start of a text under head_tail; None keeps a quarter of the budget
    # (Sun et al. 2019, "How to Fine-Tune BERT for Text Classification?", found head+tail best).
    head_tokens: int | None = None
    device: DeviceRequest = "auto"
    precision: PrecisionRequest = "auto"
    compile: bool = False
    # None uses every core this process may run on.
    num_threads: int | None = None

    def __post_init__(self) -> None:
        """Refuse values that would fail later, deep inside the training loop."""
        _require(self.lr > 0, f"lr must be positive, got {self.lr}")
        _require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _require(self.grad_accum_steps >= 1, f"grad_accum_steps must be >= 1, got {self.grad_accum_steps}")
        _require(0 <= self.warmup_ratio < 1, f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        _require(self.max_grad_norm is None or self.max_grad_norm > 0, "max_grad_norm must be positive or None")
        _require(self.max_length >= 8, f"max_length must be >= 8, got {self.max_length}")
        _require(self.class_weights in ("auto", "none"), f"class_weights must be auto|none, got {self.class_weights}")
        _require(
            self.early_stopping_patience is None or self.early_stopping_patience >= 1,
            "early_stopping_patience must be >= 1 or None",
        )
        _require(
            self.eval_every == "epoch" or (isinstance(self.eval_every, int) and self.eval_every >= 1),
            f"eval_every must be 'epoch' or a positive step count, got {self.eval_every!r}",
        )
        _check_common(self.truncation, ("head", "head_tail"), self.device, self.precision, self.num_threads)
        _require(self.head_tokens is None or self.head_tokens >= 0, "head_tokens must be >= 0 or None")

    def to_dict(self) -> dict[str, Any]:
        """Return the config as JSON-ready plain data (for the artifact manifest)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from `to_dict` output, ignoring keys this version does not know."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass(frozen=True)
class InferenceConfig:
    """How to score texts: batching, truncation of long texts, threads, device and int8 quantization."""

    batch_size: int = 64
    max_length: int = 256
    truncation: InferenceTruncation = "head"
    head_tokens: int | None = None
    # Under sliding_window: tokens between the starts of consecutive windows; None means half a window.
    stride: int | None = None
    device: DeviceRequest = "auto"
    precision: PrecisionRequest = "auto"
    num_threads: int | None = None
    quantize_int8: bool = False
    # How int8 runs: an ONNX Runtime export (faster on CPU, see modeling.ml.onnx_int8) or torch.ao.
    int8_backend: Int8Backend = "onnxruntime"
    # None: fixed chunks of batch_size, longest first. A number: batches of at most batch_size cut to
    # minimise padded tokens plus this fixed cost per forward pass, in tokens (encoding.padding_aware_batches).
    # For a CPU, where a forward pass costs the same per token at any batch size; a GPU wants fixed chunks.
    chunk_overhead_tokens: float | None = None

    def __post_init__(self) -> None:
        """Refuse values that would fail later, in the middle of a scoring run."""
        _require(
            self.int8_backend in ("onnxruntime", "torch"),
            f"int8_backend must be onnxruntime|torch, got {self.int8_backend!r}",
        )
        _require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _require(
            self.chunk_overhead_tokens is None or self.chunk_overhead_tokens >= 0,
            f"chunk_overhead_tokens must be >= 0 or None, got {self.chunk_overhead_tokens}",
        )
        _require(self.max_length >= 8, f"max_length must be >= 8, got {self.max_length}")
        _require(self.stride is None or self.stride >= 1, f"stride must be >= 1 or None, got {self.stride}")
        _require(self.head_tokens is None or self.head_tokens >= 0, "head_tokens must be >= 0 or None")
        _check_common(
            self.truncation, ("head", "head_tail", "sliding_window"), self.device, self.precision, self.num_threads
        )
        _require(not (self.quantize_int8 and self.device == "cuda"), "int8 dynamic quantization runs on CPU only")


def _check_common(
    truncation: str, allowed: tuple[str, ...], device: str, precision: str, num_threads: int | None
) -> None:
    """Validate the fields TrainConfig and InferenceConfig share."""
    _require(truncation in allowed, f"truncation must be one of {'|'.join(allowed)}, got {truncation!r}")
    _require(device in ("auto", "cpu", "cuda"), f"device must be auto|cpu|cuda, got {device!r}")
    _require(precision in ("auto", "fp32", "bf16", "fp16"), f"precision must be auto|fp32|bf16|fp16, got {precision!r}")
    _require(num_threads is None or num_threads >= 1, f"num_threads must be >= 1 or None, got {num_threads}")

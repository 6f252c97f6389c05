"""Fine-tune a sequence classifier: AdamW, warmup + linear decay, accumulation, early stopping on macro-F1."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import PreTrainedModel
from transformers import PreTrainedTokenizerBase as Tokenizer

from modeling.ml.calibration import fit_temperature
from modeling.ml.checkpoints import label_names, validate_pair, word_embeddings
from modeling.ml.config import TrainConfig
from modeling.ml.encoding import encode_texts, length_grouped_batches, pad_batch
from modeling.ml.errors import ConfigError
from modeling.ml.inference import Float32Array, forward_sequences
from modeling.ml.metrics import Evaluation, FloatArray, IntArray, accuracy, evaluate, macro_f1, softmax
from modeling.ml.optim import compute_class_weights, linear_warmup_decay, parameter_groups
from modeling.ml.runtime import (
    Runtime,
    autocast,
    detect_runtime,
    seed_everything,
    set_mode,
    set_threads,
    to_device,
)

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class EvalRecord:
    """Scores of one evaluation during training."""

    step: int
    epoch: int
    loss: float
    accuracy: float
    macro_f1: float


@dataclass(frozen=True)
class StepRecord:
    """Training loss and learning rate of one optimizer step."""

    step: int
    epoch: int
    loss: float
    lr: float


@dataclass(frozen=True)
class ProgressEvent:
    """What the progress callback receives after every optimizer step."""

    step: int
    total_steps: int
    epoch: int
    loss: float
    lr: float
    eval_metrics: EvalRecord | None


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass
class TrainResult:
    """The trained model (best evaluation restored) and what happened on the way."""

    model: PreTrainedModel
    history: list[StepRecord]
    evals: list[EvalRecord]
    best_step: int
    best_macro_f1: float | None
    stopped_early: bool
    total_steps: int
    seconds: float
    samples_per_second: float
    tokens_per_second: float
    runtime: Runtime
    class_weights: list[float] | None = None
    # Logits of the returned model on the eval set: the input for temperature fitting and metrics.
    eval_logits: Float32Array | None = None
    # Fitted on the eval logits (1.0 without eval data); `evaluation` reports metrics before and after it.
    temperature: float = 1.0
    evaluation: Evaluation | None = None


@dataclass
class _Data:
    """Encoded training and eval sets."""

    train_seqs: list[list[int]]
    train_labels: IntArray
    eval_seqs: list[list[int]]
    eval_labels: IntArray
    pad_id: int


@dataclass
class _Best:
    """The best evaluation so far, with the weights (on CPU) and eval logits that produced it."""

    macro_f1: float = -1.0
    step: int = 0
    state: StateDict | None = None
    logits: Float32Array | None = None
    evals_without_gain: int = 0


@dataclass
class _Counters:
    """Running totals for history and throughput."""

    step: int = 0
    samples: int = 0
    tokens: int = 0
    history: list[StepRecord] = field(default_factory=list)
    evals: list[EvalRecord] = field(default_factory=list)


def train(
    model: PreTrainedModel,
    tokenizer: Tokenizer,
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    config: TrainConfig,
    *,
    eval_texts: Sequence[str] | None = None,
    eval_labels: Sequence[int] | None = None,
    eval_languages: Sequence[str] | None = None,
    on_progress: ProgressCallback | None = None,
) -> TrainResult:
    """Fine-tune `model` in place and return it with the best evaluated weights restored.

    An exception raised by `on_progress` (e.g. cancellation) propagates unchanged. Without eval data
    there is no early stopping and the final weights are returned. With eval data the result also
    carries a fitted temperature and the full evaluation (per language when `eval_languages` is given).
    """
    validate_pair(model, tokenizer, max_length=config.max_length)
    num_labels = int(model.config.num_labels)
    _check_split("train", train_texts, train_labels, num_labels, allow_empty=False)
    _check_split("eval", eval_texts or [], eval_labels or [], num_labels, allow_empty=True)
    if eval_languages is not None and len(eval_languages) != len(eval_texts or []):
        raise ConfigError(f"eval: got {len(eval_languages)} languages for {len(eval_texts or [])} texts")
    set_threads(config.num_threads)
    seed_everything(config.seed)
    runtime = detect_runtime(device=config.device, precision=config.precision, compile_model=config.compile)
    data = _encode(tokenizer, config, train_texts, train_labels, eval_texts or [], eval_labels or [])
    result = _Loop(model, config, runtime, data, on_progress).run()
    return _calibrate(result, data.eval_labels, eval_languages, seed=config.seed)


def _calibrate(result: TrainResult, labels: IntArray, languages: Sequence[str] | None, *, seed: int) -> TrainResult:
    """Fit the temperature on the best model's eval logits and attach the full evaluation."""
    if result.eval_logits is None:
        return result
    result.temperature = fit_temperature(result.eval_logits, labels)
    result.evaluation = evaluate(
        result.eval_logits,
        labels,
        label_names(result.model),
        languages=languages,
        temperature=result.temperature,
        seed=seed,
    )
    return result


def _check_split(name: str, texts: Sequence[str], labels: Sequence[int], num_labels: int, *, allow_empty: bool) -> None:
    """Refuse texts and labels that differ in length, are empty, or hold out-of-range label ids."""
    if len(texts) != len(labels):
        raise ConfigError(f"{name}: got {len(texts)} texts but {len(labels)} labels")
    if not texts and not allow_empty:
        raise ConfigError(f"{name}: no examples")
    bad = [label for label in labels if not 0 <= int(label) < num_labels]
    if bad:
        raise ConfigError(f"{name}: label ids must lie in [0, {num_labels}), got {sorted(set(bad))[:5]}")


def _encode(
    tokenizer: Tokenizer,
    config: TrainConfig,
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    eval_texts: Sequence[str],
    eval_labels: Sequence[int],
) -> _Data:
    """Tokenize both splits with the configured truncation."""
    if tokenizer.pad_token_id is None:
        raise ConfigError("the tokenizer has no pad token; dynamic padding needs one")

    def encode(texts: Sequence[str]) -> list[list[int]]:
        return encode_texts(tokenizer, texts, config.max_length, config.truncation, config.head_tokens)

    return _Data(
        train_seqs=encode(train_texts),
        train_labels=np.asarray(train_labels, dtype=np.int64),
        eval_seqs=encode(eval_texts),
        eval_labels=np.asarray(eval_labels, dtype=np.int64),
        pad_id=int(tokenizer.pad_token_id),
    )


class _Loop:
    """One training run's mutable state; `run` drives epochs, steps, evaluations and early stopping."""

    def __init__(
        self,
        model: PreTrainedModel,
        config: TrainConfig,
        runtime: Runtime,
        data: _Data,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.model, self.config, self.runtime, self.data = model, config, runtime, data
        self.on_progress = on_progress
        self.rng = np.random.default_rng(config.seed)
        batches = math.ceil(len(data.train_seqs) / config.batch_size)
        self.steps_per_epoch = math.ceil(batches / config.grad_accum_steps)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.best, self.counters = _Best(), _Counters()
        self.weights = self._class_weights()

    def run(self) -> TrainResult:
        """Train, restore the best weights and return the result."""
        started = time.perf_counter()
        to_device(self.model, self.runtime.torch_device)
        embeddings = word_embeddings(self.model)
        trainable_before = embeddings.requires_grad
        if self.config.freeze_word_embeddings:
            embeddings.requires_grad_(False)
        try:
            self._setup_optimisation()
            stopped = self._epochs()
        finally:
            embeddings.requires_grad_(trainable_before)
        self._restore_best()
        return self._result(stopped, time.perf_counter() - started)

    def _class_weights(self) -> FloatArray | None:
        """Return class weights when configured, computed from the training labels."""
        if self.config.class_weights != "auto":
            return None
        return compute_class_weights(self.data.train_labels, int(self.model.config.num_labels))

    def _setup_optimisation(self) -> None:
        """Create optimizer, LR schedule, loss, optional grad scaler and the (maybe compiled) forward."""
        cfg, rt = self.config, self.runtime
        self.optimizer = torch.optim.AdamW(
            parameter_groups(self.model, cfg.weight_decay), lr=cfg.lr, fused=True if rt.fused_adamw else None
        )
        warmup = math.ceil(cfg.warmup_ratio * self.total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, linear_warmup_decay(warmup, self.total_steps)
        )
        weight = None if self.weights is None else torch.tensor(self.weights, dtype=torch.float32)
        self.loss_fn = torch.nn.CrossEntropyLoss(weight=weight).to(rt.torch_device)
        self.scaler = torch.amp.GradScaler("cuda") if rt.grad_scaler else None
        # dynamic=True: dynamic padding changes the sequence length from batch to batch.
        self.forward: Callable[..., object] = torch.compile(self.model, dynamic=True) if rt.compile else self.model
        set_mode(self.model, training=True)

    def _epochs(self) -> bool:
        """Run every epoch; return True when early stopping ended training."""
        lengths = [len(seq) for seq in self.data.train_seqs]
        for epoch in range(1, self.config.epochs + 1):
            batches = length_grouped_batches(lengths, self.config.batch_size, self.rng)
            groups = list(_chunks(batches, self.config.grad_accum_steps))
            for position, group in enumerate(groups):
                loss, lr = self._optimizer_step(group)
                last_in_epoch = position == len(groups) - 1
                record = self._evaluate(epoch) if self._eval_due(last_in_epoch) else None
                self._report(epoch, loss, lr, record)
                if record is not None and self._should_stop():
                    return True
        return False

    def _optimizer_step(self, group: list[IntArray]) -> tuple[float, float]:
        """Accumulate gradients over `group`'s micro-batches, step once, return (mean loss, lr used)."""
        losses = [self._backward(batch, scale=1.0 / len(group)) for batch in group]
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.config.max_grad_norm is not None:
            params = [p for p in self.model.parameters() if p.requires_grad]
            torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        lr = float(self.scheduler.get_last_lr()[0])
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.counters.step += 1
        return float(np.mean(losses)), lr

    def _backward(self, batch: IntArray, scale: float) -> float:
        """Run forward and backward on one micro-batch and return its (unscaled) loss."""
        device = self.runtime.torch_device
        ids, mask = pad_batch([self.data.train_seqs[i] for i in batch], self.data.pad_id)
        targets = torch.from_numpy(self.data.train_labels[batch]).to(device)
        with autocast(self.runtime):
            out = self.forward(
                input_ids=torch.from_numpy(ids).to(device), attention_mask=torch.from_numpy(mask).to(device)
            )
        # The loss is computed in fp32 even under autocast: log-softmax in half precision loses accuracy.
        loss = self.loss_fn(out.logits.float(), targets)  # type: ignore[attr-defined]
        scaled = loss * scale
        (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        self.counters.samples += len(batch)
        self.counters.tokens += int(mask.sum())
        return float(loss.detach())

    def _eval_due(self, last_in_epoch: bool) -> bool:
        """Return whether to evaluate after the current step."""
        if not self.data.eval_seqs:
            return False
        every = self.config.eval_every
        final = self.counters.step == self.total_steps
        return final or (last_in_epoch if every == "epoch" else self.counters.step % every == 0)

    def _evaluate(self, epoch: int) -> EvalRecord:
        """Score the eval set, record it and keep the weights if macro-F1 improved."""
        logits, _ = forward_sequences(
            self.model,
            self.data.eval_seqs,
            pad_id=self.data.pad_id,
            batch_size=self.config.batch_size * 2,
            runtime=self.runtime,
        )
        set_mode(self.model, training=True)
        labels = self.data.eval_labels
        predicted = logits.argmax(axis=1)
        probs = softmax(logits)
        record = EvalRecord(
            step=self.counters.step,
            epoch=epoch,
            loss=float(-np.log(np.clip(probs[np.arange(labels.size), labels], 1e-12, None)).mean()),
            accuracy=accuracy(labels, predicted),
            macro_f1=macro_f1(labels, predicted, int(self.model.config.num_labels)),
        )
        self.counters.evals.append(record)
        self._track_best(record, logits)
        return record

    def _track_best(self, record: EvalRecord, logits: Float32Array) -> None:
        """Keep a CPU copy of the weights when macro-F1 strictly improves; count evaluations otherwise."""
        if record.macro_f1 > self.best.macro_f1:
            state = {name: tensor.detach().to("cpu", copy=True) for name, tensor in self.model.state_dict().items()}
            self.best = _Best(macro_f1=record.macro_f1, step=record.step, state=state, logits=logits)
        else:
            self.best.evals_without_gain += 1

    def _should_stop(self) -> bool:
        """Return whether patience has run out."""
        patience = self.config.early_stopping_patience
        return patience is not None and self.best.evals_without_gain >= patience

    def _report(self, epoch: int, loss: float, lr: float, record: EvalRecord | None) -> None:
        """Append the step to the history and tell the callback (whose exceptions propagate)."""
        step = self.counters.step
        self.counters.history.append(StepRecord(step=step, epoch=epoch, loss=loss, lr=lr))
        if self.on_progress is not None:
            self.on_progress(ProgressEvent(step, self.total_steps, epoch, loss, lr, record))

    def _restore_best(self) -> None:
        """Load the best evaluated weights back into the model, if any evaluation ran."""
        if self.best.state is not None:
            self.model.load_state_dict(self.best.state)
        set_mode(self.model, training=False)

    def _result(self, stopped: bool, seconds: float) -> TrainResult:
        """Assemble the TrainResult."""
        counters, has_eval = self.counters, self.best.state is not None
        return TrainResult(
            model=self.model,
            history=counters.history,
            evals=counters.evals,
            best_step=self.best.step if has_eval else counters.step,
            best_macro_f1=self.best.macro_f1 if has_eval else None,
            stopped_early=stopped,
            total_steps=self.total_steps,
            seconds=seconds,
            samples_per_second=counters.samples / seconds if seconds > 0 else 0.0,
            tokens_per_second=counters.tokens / seconds if seconds > 0 else 0.0,
            runtime=self.runtime,
            class_weights=None if self.weights is None else [float(w) for w in self.weights],
            eval_logits=self.best.logits,
        )


def _chunks(items: list[IntArray], size: int) -> Iterator[list[IntArray]]:
    """Yield consecutive lists of `size` items (the last may be shorter)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]

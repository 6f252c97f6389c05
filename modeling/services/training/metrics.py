"""The metrics JSON a trained version stores (see the package docstring): the evaluation, calibration
before and after temperature scaling with reliability bins, the training throughput, and on a CPU the
int8 quantization check.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from modeling.services.training.rows import TrainingRows

if TYPE_CHECKING:
    from modeling.ml.train import TrainResult


def training_metrics(result: TrainResult, rows: TrainingRows, tokenizer: Any, *, max_length: int) -> dict[str, Any]:
    """Return the metrics JSON described in the package docstring."""
    from modeling.ml.metrics import reliability_bins, softmax

    evaluation, logits = result.evaluation, result.eval_logits
    assert evaluation is not None and logits is not None  # train() always evaluates when given eval data
    before = evaluation.calibration_before
    after = evaluation.calibration_after
    metrics: dict[str, Any] = {
        "eval": evaluation.to_dict(),
        "calibration": {
            "temperature": result.temperature,
            "ece_before": before.ece,
            "ece_after": after.ece,
            "brier_before": before.brier,
            "brier_after": after.brier,
            "reliability_before": [dataclasses.asdict(b) for b in reliability_bins(softmax(logits), rows.eval_labels)],
            "reliability_after": [
                dataclasses.asdict(b) for b in reliability_bins(softmax(logits, result.temperature), rows.eval_labels)
            ],
        },
        "training": {
            "seconds": result.seconds,
            "samples_per_s": result.samples_per_second,
            "tokens_per_s": result.tokens_per_second,
            "best_step": result.best_step,
            "total_steps": result.total_steps,
            "device": result.runtime.device,
            "precision": result.runtime.precision,
        },
    }
    if result.runtime.device == "cpu":
        metrics["quantization"] = _quantization(result, rows, tokenizer, max_length)
    return metrics


def _quantization(result: TrainResult, rows: TrainingRows, tokenizer: Any, max_length: int) -> dict[str, Any]:
    """Measure int8 dynamic quantization on the eval set (CPU only: it would move a GPU model off the GPU)."""
    from modeling.ml.config import InferenceConfig
    from modeling.ml.inference import quantization_delta

    config = InferenceConfig(max_length=max_length, device="cpu")
    report = quantization_delta(result.model, tokenizer, rows.eval_texts, rows.eval_labels, config)
    return dataclasses.asdict(report)

"""Optimisation pieces of fine-tuning: class weights, AdamW parameter groups, the LR schedule."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from modeling.ml.metrics import FloatArray, IntArray


def compute_class_weights(labels: Sequence[int] | IntArray, num_classes: int) -> FloatArray:
    """Return inverse-frequency class weights normalised so the average weight per example is 1.

    w_c = N / (K * n_c) over the K classes present (sklearn's "balanced"); an absent class gets 0,
    which never multiplies anything because no example carries it.
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes, dtype=np.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """Return AdamW groups: decay on weight matrices, none on biases and LayerNorm weights (1-d tensors).

    Decaying biases and norm gains only pulls them towards 0, which is not a meaningful prior (BERT recipe).
    """
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for _, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def linear_warmup_decay(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Return the LR multiplier: linear rise over `warmup_steps`, then linear decay to 0 at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor

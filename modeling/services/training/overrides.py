"""Hyperparameter overrides: the default ``TrainConfig`` with a request's overrides applied, or a
``ValidationFailed`` naming every unknown field, wrong JSON type or out-of-range value. Where and how
the worker runs (device, compile) is not a per-run choice.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from modeling.ml.config import TrainConfig
from modeling.ml.errors import ConfigError
from webapp.errors import ValidationFailed

# Where and how the worker runs is the worker's business, not a per-run choice.
NOT_OVERRIDABLE = frozenset({"device", "compile"})
_FLOATS = {"lr", "weight_decay", "warmup_ratio", "max_grad_norm"}
_INTS = {"epochs", "batch_size", "grad_accum_steps", "seed", "max_length", "early_stopping_patience"}
_INTS |= {"head_tokens", "num_threads"}
_NULLABLE = {"max_grad_norm", "early_stopping_patience", "head_tokens", "num_threads"}
_BOOLS = {"freeze_word_embeddings"}
_STRINGS = {"class_weights", "truncation", "precision"}


def train_config_from_overrides(overrides: Any) -> TrainConfig:
    """Return the default TrainConfig with `overrides` applied, or raise ValidationFailed naming the field."""
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, dict):
        raise ValidationFailed("Hyperparameter overrides must be an object.", details={"overrides": ["Not an object."]})
    known = {f.name for f in dataclasses.fields(TrainConfig)} - NOT_OVERRIDABLE
    problems = {key: ["Unknown hyperparameter."] for key in overrides if key not in known}
    problems |= {key: [msg] for key, value in overrides.items() if key in known and (msg := _type_problem(key, value))}
    if problems:
        raise ValidationFailed(_problem_message(problems), details={"overrides": problems})
    try:
        return TrainConfig(**overrides)
    except ConfigError as exc:
        # TrainConfig's messages start with the field name ("lr must be positive, got -1").
        field = str(exc).split()[0]
        raise ValidationFailed(f"Invalid hyperparameter: {exc}.", details={"overrides": {field: [str(exc)]}}) from exc


def _type_problem(key: str, value: Any) -> str:
    """Return why `value` has the wrong JSON type for hyperparameter `key`, or '' when it is fine."""
    if value is None:
        return "" if key in _NULLABLE else "Must not be null."
    if key == "eval_every":
        ok = value == "epoch" or (isinstance(value, int) and not isinstance(value, bool))
        return "" if ok else "Must be 'epoch' or a whole number of steps."
    if key in _FLOATS:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return "" if ok else "Must be a number."
    if key in _INTS:
        return "" if isinstance(value, int) and not isinstance(value, bool) else "Must be a whole number."
    if key in _BOOLS:
        return "" if isinstance(value, bool) else "Must be true or false."
    if key in _STRINGS:
        return "" if isinstance(value, str) else "Must be a string."
    return ""


def _problem_message(problems: dict[str, list[str]]) -> str:
    """Return one sentence naming every bad hyperparameter."""
    return "Invalid hyperparameters: " + "; ".join(f"{key}: {msgs[0]}" for key, msgs in sorted(problems.items()))

"""Errors raised by the ML core; callers map them onto the app's error format by `code`."""

from __future__ import annotations


class MLError(Exception):
    """Base class for every error the ML core raises on purpose."""

    code = "ml_error"


class ConfigError(MLError, ValueError):
    """A hyperparameter or argument is out of range or inconsistent."""

    code = "ml_config_invalid"


class CheckpointError(MLError):
    """A checkpoint cannot be loaded, or its tokenizer and model do not belong together."""

    code = "checkpoint_invalid"


class ArtifactError(MLError):
    """A saved model artifact is missing, tampered with, or inconsistent with its manifest."""

    code = "artifact_invalid"

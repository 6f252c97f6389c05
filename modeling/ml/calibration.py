"""Temperature scaling (Guo et al. 2017): one scalar T fitted on eval logits by minimising NLL."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from modeling.ml.metrics import FloatArray, softmax

# T outside this range means the logits carry (almost) no information or the fit is degenerate.
MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 20.0


def negative_log_likelihood(logits: npt.ArrayLike, y_true: npt.ArrayLike, temperature: float = 1.0) -> float:
    """Return the mean NLL of the labels under softmax(logits / temperature)."""
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.int64)
    log_probs = log_softmax(z / temperature, axis=1)
    return float(-log_probs[np.arange(t.size), t].mean())


def fit_temperature(
    logits: npt.ArrayLike,
    y_true: npt.ArrayLike,
    *,
    bounds: tuple[float, float] = (MIN_TEMPERATURE, MAX_TEMPERATURE),
) -> float:
    """Return the temperature minimising eval NLL, searched over log T within `bounds`.

    No examples or a single class returns 1.0: there is nothing to calibrate against. Perfectly
    separated logits drive T to the lower bound instead of zero. Optimising log T keeps the search
    symmetric between sharpening and flattening.
    """
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.int64)
    _check(z, t)
    if t.size == 0 or z.shape[1] < 2:
        return 1.0
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(z, t, math.exp(log_t)),
        bounds=(math.log(bounds[0]), math.log(bounds[1])),
        method="bounded",
        options={"xatol": 1e-4},
    )
    fitted = float(math.exp(result.x))
    # The bounded search can stop on a flat plateau worse than doing nothing; never make NLL worse.
    if negative_log_likelihood(z, t, fitted) > negative_log_likelihood(z, t, 1.0):
        return 1.0
    return fitted


def apply_temperature(logits: npt.ArrayLike, temperature: float) -> FloatArray:
    """Return calibrated probabilities softmax(logits / temperature)."""
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a positive finite number, got {temperature}")
    return softmax(logits, temperature)


def _check(z: FloatArray, t: npt.NDArray[np.int64]) -> None:
    """Refuse logits and labels that do not describe one classification problem."""
    if z.ndim != 2 or z.shape[0] != t.size:
        raise ValueError(f"logits must be (n, k) with n = {t.size} labels, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("logits contain NaN or infinity")
    if t.size and (t.min() < 0 or t.max() >= z.shape[1]):
        raise ValueError(f"labels must lie in [0, {z.shape[1]}), got {t.min()}..{t.max()}")

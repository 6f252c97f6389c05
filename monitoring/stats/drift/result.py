"""The outcome of one drift test: ``TestResult``, its JSON form, and the result of a test that could not run.

Every test separates "the no-shift null is rejected" (``rejected``) from "raise an alert" (``alert``),
which also needs the test's guards to hold; ``details["guard"]`` names the guard that held a rejection
back. ``FloatArray`` is the array type every module of the package takes and returns.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class TestResult:
    """One drift test on one window: the statistic, its p-value, and whether it rejected and alerted."""

    __test__ = False  # a dataclass named Test* is not a pytest test class

    test: str
    statistic: float
    p_value: float | None
    threshold: float
    rejected: bool
    alert: bool
    n_reference: int
    n_current: int
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (non-finite floats become None: JSON has no NaN)."""
        return _jsonable(asdict(self))  # type: ignore[no-any-return]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def not_tested(test: str, *, reason: str, threshold: float, n_reference: int, n_current: int) -> TestResult:
    """Return the result of a test that could not run (no data, one category): never rejected."""
    details: dict[str, Any] = {"guard": reason, "reason": reason}
    return TestResult(test, 0.0, None, threshold, False, False, n_reference, n_current, details)

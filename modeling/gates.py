"""Release gates: does a candidate's evaluation clear the project's bar? Plain data in, verdicts out.

No Django here: the release service loads the two evaluations (candidate and production, on the same
frozen eval split) and the project's gate settings, and this module says which gates fail and by how
much, in words a model owner can act on. Regressions are measured in points (hundredths of a score).
Slices smaller than ``min_slice_items`` are reported but never block: a 2-item language moving from
100% to 50% is noise, not a regression.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

POINTS = 100.0


@dataclass(frozen=True)
class GateSettings:
    """A project's gates; None switches a gate off."""

    min_macro_f1: float | None = None
    max_regression_points: float | None = 1.0
    max_class_regression_points: float | None = 5.0
    max_language_regression_points: float | None = 5.0
    max_ece: float | None = None
    min_slice_items: int = 30


@dataclass(frozen=True)
class EvalSummary:
    """What the gates read from one version's evaluation on the frozen eval split."""

    macro_f1: float
    ece: float
    per_class_f1: Mapping[str, float] = field(default_factory=dict)
    class_support: Mapping[str, int] = field(default_factory=dict)
    per_language_f1: Mapping[str, float] = field(default_factory=dict)
    language_support: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict: ``passed`` False blocks approval; ``message`` says which gate and by how much."""

    gate: str
    passed: bool
    observed: float | None
    threshold: float | None
    message: str
    blocking: bool = True


def evaluate_gates(settings: GateSettings, candidate: EvalSummary, production: EvalSummary | None) -> list[GateResult]:
    """Return every configured gate's verdict for ``candidate`` against ``production`` (None: no production yet)."""
    results: list[GateResult] = []
    if settings.min_macro_f1 is not None:
        results.append(_minimum("min_macro_f1", "eval macro-F1", candidate.macro_f1, settings.min_macro_f1))
    if settings.max_ece is not None:
        results.append(_maximum("max_ece", "expected calibration error", candidate.ece, settings.max_ece))
    if production is None:
        return results
    if settings.max_regression_points is not None:
        results.append(
            _regression(
                "max_regression",
                "eval macro-F1",
                candidate.macro_f1,
                production.macro_f1,
                settings.max_regression_points,
            )
        )
    if settings.max_class_regression_points is not None:
        results += _slices(
            "max_class_regression",
            "class",
            candidate.per_class_f1,
            production.per_class_f1,
            candidate.class_support,
            settings.max_class_regression_points,
            settings.min_slice_items,
        )
    if settings.max_language_regression_points is not None:
        results += _slices(
            "max_language_regression",
            "language",
            candidate.per_language_f1,
            production.per_language_f1,
            candidate.language_support,
            settings.max_language_regression_points,
            settings.min_slice_items,
        )
    return results


def failures(results: list[GateResult]) -> list[GateResult]:
    """Return the blocking gates that failed."""
    return [result for result in results if result.blocking and not result.passed]


def _minimum(gate: str, what: str, observed: float, threshold: float) -> GateResult:
    passed = observed >= threshold
    short = (threshold - observed) * POINTS
    message = (
        f"{what} {observed:.3f} meets the minimum {threshold:.3f}"
        if passed
        else f"{what} {observed:.3f} is below the minimum {threshold:.3f} (short by {short:.1f} points)"
    )
    return GateResult(gate, passed, observed, threshold, message)


def _maximum(gate: str, what: str, observed: float, threshold: float) -> GateResult:
    passed = observed <= threshold
    over = (observed - threshold) * POINTS
    message = (
        f"{what} {observed:.3f} is within the maximum {threshold:.3f}"
        if passed
        else f"{what} {observed:.3f} exceeds the maximum {threshold:.3f} (over by {over:.1f} points)"
    )
    return GateResult(gate, passed, observed, threshold, message)


def _regression(
    gate: str, what: str, candidate: float, production: float, max_points: float, *, blocking: bool = True
) -> GateResult:
    drop = (production - candidate) * POINTS
    passed = drop <= max_points + 1e-9
    if drop <= 0:
        message = f"{what}: candidate {candidate:.3f} vs production {production:.3f} (no regression)"
    elif passed:
        message = (
            f"{what} drops {drop:.1f} points vs production ({production:.3f} → {candidate:.3f}), within {max_points:g}"
        )
    else:
        message = (
            f"{what} drops {drop:.1f} points vs production ({production:.3f} → {candidate:.3f}); "
            f"the limit is {max_points:g} (over by {drop - max_points:.1f} points)"
        )
    return GateResult(gate, passed, round(-drop, 4), max_points, message, blocking)


def _slices(
    gate: str,
    kind: str,
    candidate: Mapping[str, float],
    production: Mapping[str, float],
    support: Mapping[str, int],
    max_points: float,
    min_items: int,
) -> list[GateResult]:
    """Return a regression verdict per slice both versions scored; small slices are shown, not blocking."""
    results = []
    for name in sorted(set(candidate) & set(production)):
        n = int(support.get(name, 0))
        blocking = n >= min_items
        what = f"{kind} {name!r} F1 (n={n}{'' if blocking else f', under {min_items}: not blocking'})"
        results.append(_regression(gate, what, candidate[name], production[name], max_points, blocking=blocking))
    return results

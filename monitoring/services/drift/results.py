"""The drift tests of one window against the reference, corrected together, as the run's results JSON.

Every test of ``monitoring.stats.drift`` runs on the whole window and again on each language with enough
rows on both sides; the p-values of one run (every test, overall and per language) are then corrected
together with Benjamini-Hochberg, since seven tests over ten languages at alpha each would otherwise flag
something by chance in almost every window. The JSON's shape is in the package docstring.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from monitoring.services.drift import traffic
from monitoring.services.drift.traffic import Traffic
from monitoring.stats.drift import (
    TestResult,
    benjamini_hochberg,
    categorical_shift,
    ks_test,
    mmd_test,
    prediction_shift,
    softmax_ks,
)

ALPHA = 0.05
PER_LANGUAGE_MIN = 100  # current rows of one language before it is tested on its own
PER_LANGUAGE_MIN_REFERENCE = 20
MMD_PERMUTATIONS = 500
MMD_PERMUTATIONS_PER_LANGUAGE = 200
TESTS = ("prediction", "softmax_ks", "embedding_mmd", "length", "unk_rate", "script", "language")
PER_LANGUAGE_TESTS = ("prediction", "softmax_ks", "embedding_mmd", "length", "unk_rate")


def _tests(reference: Traffic, current: Traffic, *, names: tuple[str, ...], permutations: int) -> dict[str, TestResult]:
    results: dict[str, TestResult] = {}
    if "prediction" in names:
        results["prediction"] = prediction_shift(
            {label: reference.predicted.count(label) for label in reference.labels},
            dict(Counter(current.predicted)),
            alpha=ALPHA,
        )
    if "softmax_ks" in names:
        results["softmax_ks"] = softmax_ks(reference.probs, current.probs, alpha=ALPHA, labels=reference.labels)
    if "embedding_mmd" in names:
        # No logged embedding yet (the server picks the projection up within a minute): an empty side,
        # which the test reports as not tested rather than as "no drift".
        embeddings = current.embeddings if current.embeddings.shape[0] else reference.embeddings[:0]
        if embeddings.shape[1] == reference.embeddings.shape[1]:
            results["embedding_mmd"] = mmd_test(
                reference.embeddings, embeddings, permutations=permutations, alpha=ALPHA, seed=0
            )
    if "length" in names:
        results["length"] = ks_test(reference.lengths, current.lengths, test="length", alpha=ALPHA)
    if "unk_rate" in names:
        results["unk_rate"] = ks_test(reference.unk_rates, current.unk_rates, test="unk_rate", alpha=ALPHA)
    if "script" in names:
        results["script"] = categorical_shift(
            dict(Counter(reference.scripts)), dict(Counter(current.scripts)), test="script", alpha=ALPHA
        )
    if "language" in names and any(code != "und" for code in current.languages):
        results["language"] = categorical_shift(
            dict(Counter(reference.languages)), dict(Counter(current.languages)), test="language", alpha=ALPHA
        )
    return results


def _bh_p(result: dict[str, Any]) -> float | None:
    """The p-value a test contributes to the correction across languages (Bonferroni's for softmax KS)."""
    if result.get("p_value") is None:
        return None
    if result["test"] == "softmax_ks":
        return float(result["details"]["bonferroni_p"])
    return float(result["p_value"])


def per_language_results(reference: Traffic, current: Traffic) -> tuple[dict[str, Any], dict[str, int]]:
    """Test each language with enough rows on both sides (uncorrected: ``correct`` does that)."""
    counts = Counter(current.languages)
    reference_counts = Counter(reference.languages)
    tested = sorted(
        code
        for code, n in counts.items()
        if code != "und" and n >= PER_LANGUAGE_MIN and reference_counts.get(code, 0) >= PER_LANGUAGE_MIN_REFERENCE
    )
    too_small = {code: n for code, n in counts.items() if code not in tested and code != "und"}
    results = {
        code: {
            name: result.as_dict()
            for name, result in _tests(
                reference.only(code),
                current.only(code),
                names=PER_LANGUAGE_TESTS,
                permutations=MMD_PERMUTATIONS_PER_LANGUAGE,
            ).items()
        }
        for code in tested
    }
    return results, too_small


def correct(entries: list[dict[str, Any]]) -> None:
    """Set ``bh_rejected`` and ``alert`` on every test result of one run, Benjamini-Hochberg over all of them.

    One family per run (every overall test and every per-language test): under no drift at all the run
    then flags drift with probability at most ALPHA, however many tests and languages it holds. A test
    alerts when BH rejects it and its own guard (too few rows, PSI below its threshold) does not hold.
    """
    scored = [(entry, _bh_p(entry)) for entry in entries]
    tested = [(entry, p) for entry, p in scored if p is not None]
    flags = benjamini_hochberg([min(1.0, p) for _, p in tested], alpha=ALPHA)
    for entry in entries:
        entry["bh_rejected"], entry["alert"] = False, False
    for (entry, _), flag in zip(tested, flags, strict=True):
        entry["bh_rejected"] = flag
        entry["alert"] = flag and not entry["details"].get("guard")


def drift_results(reference: Traffic, current: Traffic) -> dict[str, Any]:
    """Return the results JSON (module docstring) of every test on ``current`` against ``reference``."""
    overall = {
        name: result.as_dict()
        for name, result in _tests(reference, current, names=TESTS, permutations=MMD_PERMUTATIONS).items()
    }
    per_language, too_small = per_language_results(reference, current)
    correct([*overall.values(), *(entry for tests in per_language.values() for entry in tests.values())])
    alerts = [name for name, entry in overall.items() if entry["alert"]]
    alerts += [f"{code}:{name}" for code, tests in per_language.items() for name, r in tests.items() if r["alert"]]
    notes = list(current.notes)
    if not any(code != "und" for code in current.languages):
        notes.append(
            "The prediction log has no per-text language for this project (the API records one only for "
            "single-language projects): the language mix and per-language tests were not run."
        )
    return {
        "overall": overall,
        "per_language": per_language,
        "languages_too_small": too_small,
        # The cap is read from ``traffic`` when the run is made: one value for the sample read and its record.
        "sample": {"rows": current.n, "total": current.total, "cap": traffic.SAMPLE_ROWS},
        "alerts": alerts,
        "notes": notes,
    }

"""The pure part: the results JSON (see the package docstring) from two versions' outputs on the eval
items: each model's block, the paired deltas with bootstrap intervals, per class and per language,
McNemar, the disagreements (regressions first, capped) and the summaries the gates read.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from modeling.ml.compare import disagreements, mcnemar, paired_bootstrap, per_class_f1, per_group_macro_f1
from modeling.ml.metrics import (
    bootstrap_ci,
    calibration_metrics,
    confusion_matrix,
    macro_f1,
    per_class_metrics,
    per_group_metrics,
    reliability_bins,
)

DISAGREEMENT_CAP = 500
N_RESAMPLES = 1000


@dataclass
class Scored:
    """One version's outputs on the eval items (in item order) and what was measured about it."""

    version: int
    probabilities: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64]
    size: dict[str, Any]
    latency: dict[str, Any]
    int8: dict[str, Any] | None = None


@dataclass(frozen=True)
class EvalRows:
    """The frozen eval split: gold items in id order."""

    item_ids: list[int]
    texts: list[str]
    gold: list[str]
    languages: list[str]


def eval_digest(item_ids: Sequence[int], gold: Sequence[str]) -> str:
    """Return a sha256 naming exactly which items with which gold labels were compared."""
    digest = hashlib.sha256()
    for item_id, label in zip(item_ids, gold, strict=True):
        digest.update(f"{item_id}:{label}\n".encode())
    return digest.hexdigest()


def _model_block(
    scored: Scored, t: npt.NDArray[np.int64], languages: Sequence[str], labels: list[str]
) -> dict[str, Any]:
    k, pred = len(labels), scored.labels
    acc_ci, f1_ci = bootstrap_ci(t, pred, k, n_resamples=N_RESAMPLES)
    calibration = calibration_metrics(scored.probabilities, t)
    per_class = per_class_metrics(t, pred, labels)
    return {
        "version": scored.version,
        "accuracy": float((pred == t).mean()),
        "accuracy_ci": dataclasses.asdict(acc_ci),
        "macro_f1": macro_f1(t, pred, k),
        "macro_f1_ci": dataclasses.asdict(f1_ci),
        "ece": calibration.ece,
        "brier": calibration.brier,
        "per_class": [dataclasses.asdict(c) for c in per_class],
        "confusion": confusion_matrix(t, pred, k).tolist(),
        "reliability": [dataclasses.asdict(b) for b in reliability_bins(scored.probabilities, t)],
        "per_language": {code: dataclasses.asdict(g) for code, g in per_group_metrics(t, pred, languages, k).items()},
        "size": scored.size,
        "latency": scored.latency,
        "int8": scored.int8,
    }


def _summary(block: dict[str, Any]) -> dict[str, Any]:
    """Return what the gates read from one model's block."""
    return {
        "macro_f1": block["macro_f1"],
        "ece": block["ece"],
        "per_class_f1": {c["label"]: c["f1"] for c in block["per_class"]},
        "class_support": {c["label"]: c["support"] for c in block["per_class"]},
        "per_language_f1": {code: g["macro_f1"] for code, g in block["per_language"].items()},
        "language_support": {code: g["n"] for code, g in block["per_language"].items()},
    }


def _disagreements(
    rows: EvalRows, t: npt.NDArray[np.int64], candidate: Scored, production: Scored, labels: list[str]
) -> dict[str, Any]:
    """Return the items the two versions label differently: regressions, then fixes, then both wrong."""
    c, p = candidate.labels, production.labels
    indices = disagreements(c, p)
    regressions = [int(i) for i in indices if p[i] == t[i]]
    fixes = [int(i) for i in indices if c[i] == t[i]]
    both_wrong = [int(i) for i in indices if c[i] != t[i] and p[i] != t[i]]
    items = [
        {
            "item_id": rows.item_ids[i],
            "gold": labels[int(t[i])],
            "candidate": labels[int(c[i])],
            "production": labels[int(p[i])],
            "candidate_confidence": round(float(candidate.probabilities[i].max()), 4),
            "production_confidence": round(float(production.probabilities[i].max()), 4),
        }
        for i in (regressions + fixes + both_wrong)[:DISAGREEMENT_CAP]
    ]
    return {
        "total": len(indices),
        "regressions": len(regressions),
        "fixes": len(fixes),
        "both_wrong": len(both_wrong),
        "cap": DISAGREEMENT_CAP,
        "items": items,
    }


def _paired(
    rows: EvalRows, t: npt.NDArray[np.int64], candidate: Scored, production: Scored, labels: list[str]
) -> dict[str, Any]:
    c, p, k = candidate.labels, production.labels, len(labels)
    deltas = paired_bootstrap(t, c, p, k, n_resamples=N_RESAMPLES)
    classes = per_class_f1(t, c, p, labels)
    languages = per_group_macro_f1(t, c, p, rows.languages, k)
    return {
        "paired": {
            name: {
                "candidate": d.candidate,
                "production": d.production,
                "delta": d.delta,
                "delta_ci": dataclasses.asdict(d.delta_ci),
            }
            for name, d in deltas.items()
        },
        "per_class_deltas": [
            {"label": name, "n": g.n, "candidate": g.candidate, "production": g.production, "delta": g.delta}
            for name, g in classes.items()
        ],
        "per_language_deltas": [
            {"language": code, "n": g.n, "candidate": g.candidate, "production": g.production, "delta": g.delta}
            for code, g in languages.items()
        ],
        "mcnemar": dataclasses.asdict(mcnemar(t, c, p)),
        "disagreements": _disagreements(rows, t, candidate, production, labels),
    }


def comparison_results(
    *, rows: EvalRows, y_true: Sequence[int], labels: list[str], candidate: Scored, production: Scored | None
) -> dict[str, Any]:
    """Return the results JSON (package docstring) for the two versions' outputs on ``rows``."""
    t = np.asarray(y_true, dtype=np.int64)
    cand = _model_block(candidate, t, rows.languages, labels)
    prod = _model_block(production, t, rows.languages, labels) if production is not None else None
    empty: dict[str, Any] = {
        "paired": None,
        "per_class_deltas": [],
        "per_language_deltas": [],
        "mcnemar": None,
        "disagreements": {
            "total": 0,
            "regressions": 0,
            "fixes": 0,
            "both_wrong": 0,
            "cap": DISAGREEMENT_CAP,
            "items": [],
        },
    }
    return {
        "n": int(t.size),
        "labels": labels,
        "eval_digest": eval_digest(rows.item_ids, rows.gold),
        "candidate": cand,
        "production": prod,
        **(_paired(rows, t, candidate, production, labels) if production is not None else empty),
        "summaries": {"candidate": _summary(cand), "production": _summary(prod) if prod else None},
    }

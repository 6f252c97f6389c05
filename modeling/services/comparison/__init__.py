"""Candidate vs production on the same frozen eval split: starting the job and its body.

The job scores both versions on every gold item of the eval split (in item id order, so the two
prediction vectors are paired), then computes with the pure modules (``modeling.ml.metrics`` and
``modeling.ml.compare``) everything the comparison page and the gates read. With no version in
production the candidate is scored alone: only the absolute gates (minimum macro-F1, maximum ECE) apply.

``Comparison.results`` holds exactly this JSON::

    {
      "n": int, "labels": [names in the models' class order], "eval_digest": sha256 of "item id:gold" lines,
      "device": "cpu" | "cuda", "seconds": float,
      "candidate": MODEL, "production": MODEL | null,
      "paired": {"accuracy" | "macro_f1": {"candidate", "production", "delta", "delta_ci": {"low", "high"}}} | null,
      "per_class_deltas": [{"label", "n", "candidate", "production", "delta"}],       # [] without production
      "per_language_deltas": [{"language", "n", "candidate", "production", "delta"}],
      "mcnemar": {"candidate_only", "production_only", "both_right", "both_wrong", "statistic", "p_value"} | null,
      "disagreements": {"total", "regressions", "fixes", "both_wrong", "cap",
                        "items": [{"item_id", "gold", "candidate", "production",
                                   "candidate_confidence", "production_confidence"}]},   # regressions first
      "summaries": {"candidate": SUMMARY, "production": SUMMARY | null},   # what the gates read
      "gates": [GateResult as a dict],   # under the policy when the job ran; approval re-evaluates them
    }

    MODEL = {"version", "accuracy", "accuracy_ci": {"low", "high"}, "macro_f1", "macro_f1_ci", "ece", "brier",
             "per_class": [{"label", "precision", "recall", "f1", "support"}], "confusion": [[int]],
             "reliability": [{"lower", "upper", "confidence", "accuracy", "count"}],      # 15 bins
             "per_language": {"<code>": {"n", "accuracy", "macro_f1"}},
             "size": {"parameters", "bytes", "weights_bytes"},
             "latency": {"batch_size", "runs", "median_ms", "min_ms", "max_ms", "per_text_ms", "device"},
             "int8": INT8 | null}      # candidate only, when the policy serves int8
    SUMMARY = {"macro_f1", "ece", "per_class_f1", "class_support", "per_language_f1", "language_support"}
    INT8 = modeling.ml.compare.QuantizationDelta as a dict (int8 minus fp32 on CPU, paired: accuracy and
           macro-F1 with bootstrap intervals, agreement, McNemar) + {"latency": the int8 copy's MODEL "latency"}

torch and the model code are imported inside the job body only: the web process imports this package
to start a comparison.

The package, by what each part does: ``starting`` (queueing the job), ``results`` (the pure
statistics and the JSON above), ``scoring`` (one version's outputs, size and int8 delta), ``latency``
(timing the versions side by side) and ``job`` (the job body). Everything public is re-exported here:
import it from ``modeling.services.comparison``.
"""

from __future__ import annotations

from modeling.services.comparison.job import comparison_run, eval_rows
from modeling.services.comparison.latency import LATENCY_BATCH, LATENCY_RUNS, measure_latencies
from modeling.services.comparison.results import (
    DISAGREEMENT_CAP,
    N_RESAMPLES,
    EvalRows,
    Scored,
    comparison_results,
    eval_digest,
)
from modeling.services.comparison.scoring import SCORING_BATCH, Loaded
from modeling.services.comparison.starting import ACTIVE_JOB, COMPARABLE, comparison_start

__all__ = [
    "ACTIVE_JOB",
    "COMPARABLE",
    "DISAGREEMENT_CAP",
    "LATENCY_BATCH",
    "LATENCY_RUNS",
    "N_RESAMPLES",
    "SCORING_BATCH",
    "EvalRows",
    "Loaded",
    "Scored",
    "comparison_results",
    "comparison_run",
    "comparison_start",
    "eval_digest",
    "eval_rows",
    "measure_latencies",
]

"""Training a model version: starting it (checks, numbering, enqueueing) and the worker's job body.

``ModelVersion.metrics`` holds exactly this JSON (the model pages read it)::

    {
      "eval": Evaluation.to_dict(),            # n, accuracy, macro_f1, *_ci, per_class, confusion,
                                               # calibration_before/after {ece, brier}, temperature, per_language
      "calibration": {
        "temperature": float,
        "ece_before": float, "ece_after": float,
        "brier_before": float, "brier_after": float,
        "reliability_before": [{"lower", "upper", "confidence", "accuracy", "count"}, ...],  # 15 bins
        "reliability_after": [...],            # same bins at the fitted temperature
      },                                       # confidence/accuracy are null in an empty bin
      "training": {"seconds", "samples_per_s", "tokens_per_s", "best_step", "total_steps", "device", "precision"},
      "quantization": {"accuracy_fp32", "accuracy_int8", "accuracy_delta", "agreement",
                       "max_probability_change", "seconds_fp32", "seconds_int8"},   # CPU runs only; else absent
    }

``ModelVersion.history`` is appended while training, at most once a second plus at every evaluation:
``{"step", "total_steps", "epoch", "loss", "lr", "eval": {"step", "epoch", "loss", "accuracy", "macro_f1"} | null,
"t": seconds since training started}``.

Only the torch-free parts of ``modeling.ml`` (config, errors) are imported at module level: the web
process imports this package to start training and must never import torch.

The package, by what each part does: ``overrides`` (hyperparameter overrides to a ``TrainConfig``),
``rows`` (the gold training and eval rows), ``starting`` (checks, numbering, enqueueing), ``job`` (the
worker's job body), ``artifacts`` (the artifact directory and a rerun's leftovers), ``metrics`` (the
metrics JSON above), ``progress`` (job progress and history rows) and ``orphans`` (versions whose job
ended without them). Everything public is re-exported here: import it from
``modeling.services.training``.
"""

from __future__ import annotations

from modeling.services.training.artifacts import artifact_dir
from modeling.services.training.job import train_run
from modeling.services.training.metrics import training_metrics
from modeling.services.training.orphans import versions_fail_orphaned
from modeling.services.training.overrides import NOT_OVERRIDABLE, train_config_from_overrides
from modeling.services.training.progress import HISTORY_INTERVAL_S
from modeling.services.training.rows import TRAINING_SPLITS, TrainingRows, training_rows, training_rows_consume
from modeling.services.training.starting import ACTIVE_JOB, PARENT_STATUSES, training_enqueue, training_start

__all__ = [
    "ACTIVE_JOB",
    "HISTORY_INTERVAL_S",
    "NOT_OVERRIDABLE",
    "PARENT_STATUSES",
    "TRAINING_SPLITS",
    "TrainingRows",
    "artifact_dir",
    "train_config_from_overrides",
    "train_run",
    "training_enqueue",
    "training_metrics",
    "training_rows",
    "training_rows_consume",
    "training_start",
    "versions_fail_orphaned",
]

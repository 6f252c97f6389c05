"""The worker's job body: train the job's version (or adopt an earlier attempt's artifact), save a
verified artifact, mark the version candidate and enqueue pool scoring; any failure marks the version
failed with a message. Safe to run again after a crash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

from modeling.ml.config import TrainConfig
from modeling.ml.errors import MLError
from modeling.models import ModelVersion
from modeling.services.training.artifacts import _remove_staging_leftovers, _reuse_artifact, artifact_dir
from modeling.services.training.metrics import training_metrics
from modeling.services.training.progress import _ProgressReporter
from modeling.services.training.rows import TrainingRows, training_rows_consume
from webapp.errors import ApplicationError, Conflict, ValidationFailed
from webapp.models import Job, JobCancelled


def train_run(job: Job) -> dict[str, Any]:
    """Train the job's version, save a verified artifact, mark it candidate and enqueue pool scoring.

    Safe to run again after a crash: the same version is retrained (history reset), a leftover
    staging directory is removed, and a complete artifact from a run that died after saving is
    reused when it verifies and was trained on the same data and config.
    """
    version = ModelVersion.objects.select_related("project").get(pk=job.params["model_version_id"])
    if version.status == ModelVersion.Status.CANDIDATE and version.job_id == job.pk:
        # The worker died after marking the version but before the job succeeded: only scoring is left.
        return _enqueue_scoring(job, version)
    if version.status not in (ModelVersion.Status.QUEUED, ModelVersion.Status.TRAINING):
        raise Conflict(f"Version {version.number} is {version.status}; only a queued version can be trained.")
    try:
        _train_version(job, version)
    except JobCancelled:
        version.mark_failed("Training was cancelled.")
        raise
    except MLError as exc:
        version.mark_failed(str(exc))
        raise ApplicationError(str(exc), code=exc.code) from exc
    except ApplicationError as exc:
        version.mark_failed(exc.message)
        raise
    except Exception as exc:
        version.mark_failed(f"Internal error ({exc.__class__.__name__}); see the worker logs.")
        raise
    return _enqueue_scoring(job, version)


def _train_version(job: Job, version: ModelVersion) -> None:
    """Train (or adopt an earlier attempt's artifact) and leave the version a candidate."""
    from modeling.ml.artifacts import snapshot_hash

    rows = training_rows_consume(version)
    _check_rows(rows)
    snapshot = snapshot_hash(rows.train_texts + rows.eval_texts, _split_tags(rows))
    _record_data(version, rows, snapshot)
    dest = artifact_dir(version)
    _remove_staging_leftovers(dest)
    if not _reuse_artifact(version, dest, snapshot):
        version.mark_training()
        _fit_and_save(job, version, rows, snapshot, dest)


def _enqueue_scoring(job: Job, version: ModelVersion) -> dict[str, Any]:
    """Queue pool scoring of the new candidate and return the training job's result."""
    from modeling.services.scoring import pool_score_enqueue

    score_job = pool_score_enqueue(version=version, user=job.created_by)
    return {
        "model_version": version.number,
        "artifact_path": version.artifact_path,
        "macro_f1": version.metrics.get("eval", {}).get("macro_f1"),
        "score_job": str(score_job.pk),
    }


def _split_tags(rows: TrainingRows) -> list[str]:
    """Return 'train:<label>' / 'eval:<label>' tags, so moving an item between splits changes the snapshot."""
    return [f"train:{rows.labels[i]}" for i in rows.train_labels] + [f"eval:{rows.labels[i]}" for i in rows.eval_labels]


def _check_rows(rows: TrainingRows) -> None:
    """Refuse data that changed since the start check (labels removed, eval emptied)."""
    if len(set(rows.train_labels)) < 2 or not rows.eval_texts:
        raise ValidationFailed(
            "Not enough labelled data to train any more: needs gold train items of 2 labels and gold eval items.",
            code="not_enough_data",
        )


def _fit_and_save(job: Job, version: ModelVersion, rows: TrainingRows, snapshot: str, dest: Path) -> None:
    """Fine-tune, calibrate and evaluate, then save the artifact and mark the version candidate."""
    from modeling.ml.artifacts import DataSnapshot, ManifestFields, save_artifact
    from modeling.ml.checkpoints import load_checkpoint
    from modeling.ml.train import train

    config = TrainConfig.from_dict(version.train_config)
    checkpoint = load_checkpoint(
        version.base_checkpoint,
        labels=rows.labels,
        offline=settings.HF_HUB_OFFLINE,
        max_length=config.max_length,
        seed=config.seed,
    )
    result = train(
        checkpoint.model,
        checkpoint.tokenizer,
        rows.train_texts,
        rows.train_labels,
        config,
        eval_texts=rows.eval_texts,
        eval_labels=rows.eval_labels,
        eval_languages=rows.eval_languages,
        on_progress=_ProgressReporter(job, version),
    )
    job.set_progress(0.97, "saving the artifact")
    metrics = training_metrics(result, rows, checkpoint.tokenizer, max_length=config.max_length)
    fields = ManifestFields(
        base_checkpoint=version.base_checkpoint,
        train_config=config,
        data_snapshot=DataSnapshot(snapshot, len(rows.train_texts), len(rows.eval_texts), rows.label_counts()),
        metrics=metrics,
        temperature=result.temperature,
    )
    saved = save_artifact(result.model, checkpoint.tokenizer, dest, fields)
    version.mark_candidate(
        metrics=metrics,
        artifact_path=str(saved.path),
        manifest_sha256=saved.manifest_sha256,
        temperature=result.temperature,
    )


def _record_data(version: ModelVersion, rows: TrainingRows, snapshot: str) -> None:
    """Store what the version was trained on."""
    version.data = {
        "new_labels": int(version.data.get("new_labels", 0)),
        "train": len(rows.train_texts),
        "eval": len(rows.eval_texts),
        "snapshot": snapshot,
        "label_counts": rows.label_counts(),
    }
    version.save(update_fields=["data", "updated_at"])

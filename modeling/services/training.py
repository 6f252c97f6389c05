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
process imports this module to start training and must never import torch.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max
from django.db.models.functions import Greatest

from labeling.models import ROLE_RANK, Item, Label, Project, Role
from labeling.selectors import role_for_user
from modeling.ml.config import TrainConfig
from modeling.ml.errors import ConfigError, MLError
from modeling.models import ModelVersion
from webapp.errors import ApplicationError, Conflict, Forbidden, ValidationFailed
from webapp.jobs import job_create, job_enqueue
from webapp.models import Job, JobCancelled

if TYPE_CHECKING:
    from modeling.ml.train import ProgressEvent, TrainResult

logger = logging.getLogger(__name__)

# Where and how the worker runs is the worker's business, not a per-run choice.
NOT_OVERRIDABLE = frozenset({"device", "compile"})
_FLOATS = {"lr", "weight_decay", "warmup_ratio", "max_grad_norm"}
_INTS = {"epochs", "batch_size", "grad_accum_steps", "seed", "max_length", "early_stopping_patience"}
_INTS |= {"head_tokens", "num_threads"}
_NULLABLE = {"max_grad_norm", "early_stopping_patience", "head_tokens", "num_threads"}
_BOOLS = {"freeze_word_embeddings"}
_STRINGS = {"class_weights", "truncation", "precision"}
# History rows are written at most this often (plus every evaluation and the last step).
HISTORY_INTERVAL_S = 1.0
ACTIVE_JOB = (Job.Status.QUEUED, Job.Status.RUNNING)
PARENT_STATUSES = (ModelVersion.Status.CANDIDATE, ModelVersion.Status.APPROVED, ModelVersion.Status.PRODUCTION)
# Gold items a version learns from: the imported train split and every pool item labeled through the queue.
# The eval split stays frozen for evaluation.
TRAINING_SPLITS = (Item.Split.TRAIN, Item.Split.POOL)


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


def _require_manager(*, project: Project, user: Any) -> None:
    """Refuse users below the owner role."""
    role = role_for_user(user=user, project=project)
    if role is None or ROLE_RANK[role] < ROLE_RANK[Role.OWNER]:
        raise Forbidden("Starting training needs the model owner role in this project.")


def _check_training_data(project: Project) -> None:
    """Refuse a project without gold training examples of two labels or without gold eval examples."""
    gold = Item.objects.filter(project=project, gold_label__isnull=False)
    train_labels = gold.filter(split__in=TRAINING_SPLITS).values("gold_label").distinct().count()
    has_eval = gold.filter(split=Item.Split.EVAL).exists()
    missing = []
    if train_labels < 2:
        missing.append(f"gold train or labeled pool items for at least 2 labels (found {train_labels})")
    if not has_eval:
        missing.append("gold items in the eval split (found none)")
    if missing:
        raise ValidationFailed(
            "Not enough labelled data to train: needs " + " and ".join(missing) + ".",
            details={"missing": missing},
            code="not_enough_data",
        )


@transaction.atomic
def training_start(*, project: Project, user: Any, overrides: dict[str, Any] | None) -> ModelVersion:
    """Create the next queued ModelVersion and its training job, and enqueue it on commit.

    Owners and admins only. Raises ValidationFailed for bad overrides or missing data and Conflict
    while another training of the project is queued or running.
    """
    _require_manager(project=project, user=user)
    return training_enqueue(project=project, user=user, config=train_config_from_overrides(overrides))


@transaction.atomic
def training_enqueue(*, project: Project, user: Any, config: TrainConfig) -> ModelVersion:
    """Create the next queued ModelVersion with `config` and its training job, and enqueue it on commit.

    No role check: callers check it (`training_start`) or are the system (automatic retraining, `user`
    None, which makes the version's ``created_by`` null). Raises ValidationFailed for missing data and
    Conflict while another training of the project is queued or running.
    """
    _check_training_data(project)
    # The project row lock serialises starts: the active-training check and the next number are
    # read and written by one transaction at a time, so two clicks never share a number.
    Project.objects.select_for_update().get(pk=project.pk)
    versions = ModelVersion.objects.filter(project=project)
    active = versions.filter(job__status__in=ACTIVE_JOB, status__in=("queued", "training")).first()
    if active is not None:
        raise Conflict(f"Version {active.number} is still {active.status}; wait for it or cancel its job.")
    number = (versions.aggregate(top=Max("number"))["top"] or 0) + 1
    job = job_create(kind=Job.Kind.TRAIN, project_id=project.pk, user=user)
    version = versions.create(
        project=project,
        number=number,
        parent=versions.filter(status__in=PARENT_STATUSES).order_by("-number").first(),
        base_checkpoint=project.base_checkpoint,
        train_config=config.to_dict(),
        job=job,
        created_by=job.created_by,
    )
    job.params = {"model_version_id": version.pk}
    job.save(update_fields=["params"])
    from modeling.tasks import train_model_version

    job_enqueue(job=job, task=train_model_version)
    logger.info("training queued", extra={"project_id": project.pk, "version": number, "job_id": str(job.pk)})
    return version


def artifact_dir(version: ModelVersion) -> Path:
    """Return where a version's artifact lives: ARTIFACT_ROOT/models/<slug>/v<number>."""
    return Path(settings.ARTIFACT_ROOT) / "models" / version.project.slug / f"v{version.number}"


@dataclass
class TrainingRows:
    """A project's gold data in the shape modeling.ml takes: texts, label ids in Label order, languages."""

    labels: list[str]
    train_texts: list[str]
    train_labels: list[int]
    eval_texts: list[str]
    eval_labels: list[int]
    eval_languages: list[str]

    def label_counts(self) -> dict[str, int]:
        """Return the number of train examples per label name."""
        counts = dict.fromkeys(self.labels, 0)
        for label in self.train_labels:
            counts[self.labels[label]] += 1
        return counts


def training_rows(project: Project) -> TrainingRows:
    """Load the gold training items (train split and labeled pool) and the eval split, ordered by id."""
    labels = list(Label.objects.filter(project=project).order_by("order", "id").values_list("id", "name"))
    index = {label_id: i for i, (label_id, _) in enumerate(labels)}
    gold = Item.objects.filter(project=project, gold_label__isnull=False).order_by("id")
    train = list(gold.filter(split__in=TRAINING_SPLITS).values_list("text", "gold_label_id"))
    evals = list(gold.filter(split=Item.Split.EVAL).values_list("text", "gold_label_id", "language"))
    return TrainingRows(
        labels=[name for _, name in labels],
        train_texts=[text for text, _ in train],
        train_labels=[index[label] for _, label in train],
        eval_texts=[text for text, _, _ in evals],
        eval_labels=[index[label] for _, label, _ in evals],
        eval_languages=[language or "und" for _, _, language in evals],
    )


@transaction.atomic
def training_rows_consume(version: ModelVersion) -> TrainingRows:
    """Read the version's training rows and take the labels they include off the project's new-label counter.

    The project row lock makes the snapshot exact: labeling adds to ``labels_since_training`` last in
    the transaction that makes an item gold, so that increment waits here; the item is then either in
    the rows read and in the snapshot, or in neither and counted toward the next retraining. The counter
    is decreased by the snapshot (F(), never overwritten) and the amount is kept in ``data["new_labels"]``
    (added up over reruns), which also tells automatic retraining that this version consumed its labels.
    """
    project = Project.objects.select_for_update().get(pk=version.project_id)
    consumed = project.labels_since_training
    rows = training_rows(project)
    Project.objects.filter(pk=project.pk).update(
        labels_since_training=Greatest(F("labels_since_training") - consumed, 0)
    )
    version.data = {**version.data, "new_labels": int(version.data.get("new_labels", 0)) + consumed}
    version.save(update_fields=["data", "updated_at"])
    return rows


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


def _remove_staging_leftovers(dest: Path) -> None:
    """Delete staging directories a killed save left beside `dest` (save_artifact names them .v<n>.*.tmp)."""
    if dest.parent.is_dir():
        for leftover in dest.parent.glob(f".{dest.name}.*.tmp"):
            logger.warning("removing a half-written artifact", extra={"path": str(leftover)})
            shutil.rmtree(leftover, ignore_errors=True)


def _reuse_artifact(version: ModelVersion, dest: Path, snapshot: str) -> bool:
    """Adopt a complete artifact from an earlier attempt, or delete it; return whether it was adopted."""
    from modeling.ml.artifacts import MANIFEST, file_sha256, verify_artifact
    from modeling.ml.errors import ArtifactError

    if not dest.exists():
        return False
    try:
        manifest = verify_artifact(dest)
    except ArtifactError as exc:
        logger.warning("discarding an unverifiable artifact", extra={"path": str(dest), "reason": str(exc)})
        shutil.rmtree(dest)
        return False
    same = manifest["data_snapshot"]["hash"] == snapshot and manifest["train_config"] == version.train_config
    if not same:
        shutil.rmtree(dest)
        return False
    version.mark_candidate(
        metrics=manifest["metrics"],
        artifact_path=str(dest),
        manifest_sha256=file_sha256(dest / MANIFEST),
        temperature=float(manifest["temperature"]),
    )
    logger.info("reused the artifact of an earlier attempt", extra={"version_id": version.pk})
    return True


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


def training_metrics(result: TrainResult, rows: TrainingRows, tokenizer: Any, *, max_length: int) -> dict[str, Any]:
    """Return the metrics JSON described in the module docstring."""
    from modeling.ml.metrics import reliability_bins, softmax

    evaluation, logits = result.evaluation, result.eval_logits
    assert evaluation is not None and logits is not None  # train() always evaluates when given eval data
    before = evaluation.calibration_before
    after = evaluation.calibration_after
    metrics: dict[str, Any] = {
        "eval": evaluation.to_dict(),
        "calibration": {
            "temperature": result.temperature,
            "ece_before": before.ece,
            "ece_after": after.ece,
            "brier_before": before.brier,
            "brier_after": after.brier,
            "reliability_before": [dataclasses.asdict(b) for b in reliability_bins(softmax(logits), rows.eval_labels)],
            "reliability_after": [
                dataclasses.asdict(b) for b in reliability_bins(softmax(logits, result.temperature), rows.eval_labels)
            ],
        },
        "training": {
            "seconds": result.seconds,
            "samples_per_s": result.samples_per_second,
            "tokens_per_s": result.tokens_per_second,
            "best_step": result.best_step,
            "total_steps": result.total_steps,
            "device": result.runtime.device,
            "precision": result.runtime.precision,
        },
    }
    if result.runtime.device == "cpu":
        metrics["quantization"] = _quantization(result, rows, tokenizer, max_length)
    return metrics


def _quantization(result: TrainResult, rows: TrainingRows, tokenizer: Any, max_length: int) -> dict[str, Any]:
    """Measure int8 dynamic quantization on the eval set (CPU only: it would move a GPU model off the GPU)."""
    from modeling.ml.config import InferenceConfig
    from modeling.ml.inference import quantization_delta

    config = InferenceConfig(max_length=max_length, device="cpu")
    report = quantization_delta(result.model, tokenizer, rows.eval_texts, rows.eval_labels, config)
    return dataclasses.asdict(report)


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


class _ProgressReporter:
    """The train() callback: job progress and history rows, throttled to once a second plus every eval.

    set_progress raises JobCancelled once a cancel is requested, which stops training at that step.
    """

    def __init__(self, job: Job, version: ModelVersion) -> None:
        self.job, self.version = job, version
        self.started = time.monotonic()
        self.last_write = float("-inf")

    def __call__(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        final = event.step == event.total_steps
        if event.eval_metrics is None and not final and now - self.last_write < HISTORY_INTERVAL_S:
            return
        self.last_write = now
        message = f"step {event.step}/{event.total_steps} · loss {event.loss:.2f}"
        # The last few percent are left for calibration, saving and the quantization check.
        self.job.set_progress(0.95 * event.step / event.total_steps, message)
        evaluated = dataclasses.asdict(event.eval_metrics) if event.eval_metrics is not None else None
        self.version.history.append(
            {
                "step": event.step,
                "total_steps": event.total_steps,
                "epoch": event.epoch,
                "loss": event.loss,
                "lr": event.lr,
                "eval": evaluated,
                "t": round(now - self.started, 3),
            }
        )
        self.version.save(update_fields=["history", "updated_at"])


def versions_fail_orphaned() -> int:
    """Mark failed the versions still queued/training whose job ended without success; return how many.

    A job cancelled while queued never runs its body, and the stale-job reaper (in ``webapp``, which
    knows nothing of versions) fails jobs whose worker died: either way the version would otherwise
    show "training" forever. Run by beat (``modeling.tasks.fail_orphaned_versions``).
    """
    orphans = ModelVersion.objects.filter(
        status__in=[ModelVersion.Status.QUEUED, ModelVersion.Status.TRAINING],
        job__status__in=[Job.Status.FAILED, Job.Status.CANCELLED],
    ).select_related("job")
    count = 0
    for version in orphans:
        job = version.job
        assert job is not None
        reason = job.error or ("Training was cancelled." if job.status == Job.Status.CANCELLED else "Training failed.")
        version.mark_failed(reason)
        count += 1
    return count

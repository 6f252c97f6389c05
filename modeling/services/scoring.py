"""Pool scoring: a candidate's calibrated predictions and embeddings for every unlabeled pool item,
and its predicted label for every item of the project's stop set (labeled or not).

torch and the heavy parts of ``modeling.ml`` are imported inside the job body only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db import transaction

from labeling.models import Item, Label
from modeling.models import ModelVersion, Prediction
from webapp.errors import ApplicationError, Conflict
from webapp.jobs import job_create, job_enqueue
from webapp.models import Job

if TYPE_CHECKING:
    from modeling.ml.artifacts import Classifier
    from modeling.ml.inference import Predictions

logger = logging.getLogger(__name__)

# Items read, scored and written per round trip: bounded memory whatever the pool size.
CHUNK_SIZE = 2_000
INFERENCE_BATCH_SIZE = 64
BULK_BATCH_SIZE = 500
SCOREABLE = (ModelVersion.Status.CANDIDATE, ModelVersion.Status.APPROVED, ModelVersion.Status.PRODUCTION)
POOL_STATUSES = (Item.Status.UNLABELED, Item.Status.QUEUED)


def pool_score_enqueue(*, version: ModelVersion, user: Any) -> Job:
    """Queue scoring of the project's pool by `version`, reusing a queued, running or finished job for it."""
    existing = (
        Job.objects.filter(kind=Job.Kind.SCORE, params__model_version_id=version.pk)
        .exclude(status__in=(Job.Status.FAILED, Job.Status.CANCELLED))
        .first()
    )
    if existing is not None:
        return existing
    from modeling.tasks import score_pool

    with transaction.atomic():
        job = job_create(
            kind=Job.Kind.SCORE, project_id=version.project_id, user=user, params={"model_version_id": version.pk}
        )
        job_enqueue(job=job, task=score_pool)
    return job


def pool_items(version: ModelVersion) -> Any:
    """Return the queryset of items a version scores: unlabeled or queued items of the pool split."""
    return Item.objects.filter(project_id=version.project_id, split=Item.Split.POOL, status__in=POOL_STATUSES)


def pool_score_run(job: Job) -> dict[str, Any]:
    """Score the pool with the job's version, replacing that version's earlier predictions; return counts."""
    # Imported here: both modules read this module's helpers.
    from modeling.services.queue_refresh import queue_refresh
    from modeling.services.stop_set import stop_set_ensure

    version = ModelVersion.objects.select_related("project").get(pk=job.params["model_version_id"])
    if version.status not in SCOREABLE:
        raise Conflict(f"Version {version.number} is {version.status}; only a trained version can score the pool.")
    classifier = _load_verified(version)
    label_ids = _label_ids(version, classifier.labels)
    # Chosen (the first time) before the queue refresh below moves items: from the pool as it stands.
    stop_ids = stop_set_ensure(project_id=version.project_id)
    items = pool_items(version)
    total = items.count()
    # Earlier rows of this version go first: a rerun (retry, redelivery) never mixes two runs' outputs.
    deleted, _ = Prediction.objects.filter(model_version=version).delete()
    job.set_progress(0.0, f"scoring {total} pool items")
    scored = 0
    for chunk in _chunks(items):
        predictions = _predict(classifier, version, [text for _, text in chunk])
        _write(version, [item_id for item_id, _ in chunk], predictions, label_ids)
        scored += len(chunk)
        job.set_progress(scored / max(total, 1), f"scored {scored}/{total} pool items")
    logger.info("pool scored", extra={"version_id": version.pk, "scored": scored, "replaced": deleted})
    job.set_progress(1.0, f"predicting the {len(stop_ids)} stop-set items")
    _predict_stop_set(classifier, version, stop_ids, label_ids)
    job.set_progress(1.0, f"ranking the queue from {scored} predictions")
    labeled = _few_labeled_predictions(classifier, version)
    queue_refresh(
        version=version,
        labeled_embeddings=None if labeled is None else labeled.embeddings,
        labeled_probs=None if labeled is None else labeled.probabilities,
    )
    return {"model_version": version.number, "scored": scored, "replaced": deleted, "stop_set": len(stop_ids)}


def _load_verified(version: ModelVersion) -> Classifier:
    """Load the version's artifact, refusing one whose files or manifest changed since it was saved."""
    from modeling.ml.artifacts import load_artifact
    from modeling.ml.errors import ArtifactError

    if not version.artifact_path or not version.manifest_sha256:
        raise Conflict(f"Version {version.number} has no saved artifact to score with.")
    try:
        return load_artifact(version.artifact_path, expected_manifest_sha256=version.manifest_sha256)
    except ArtifactError as exc:
        raise ApplicationError(
            f"The artifact of version {version.number} failed verification and was not used: {exc}. "
            "Restore it from a backup or train a new version.",
            code=exc.code,
        ) from exc


def _label_ids(version: ModelVersion, model_labels: list[str]) -> list[int]:
    """Return the Label ids in the model's class order, refusing a project whose labels changed since training."""
    labels = dict(Label.objects.filter(project_id=version.project_id).values_list("name", "id"))
    missing = [name for name in model_labels if name not in labels]
    if missing:
        raise ApplicationError(
            f"Version {version.number} predicts labels the project no longer has: {missing}. Train a new version.",
            code="labels_changed",
        )
    return [labels[name] for name in model_labels]


def _chunks(items: Any) -> Iterator[list[tuple[int, str]]]:
    """Yield (id, text) rows in id order, CHUNK_SIZE at a time, by keyset (WHERE id > last) rather than OFFSET."""
    last = 0
    while True:
        chunk = list(items.filter(id__gt=last).order_by("id").values_list("id", "text")[:CHUNK_SIZE])
        if not chunk:
            return
        yield chunk
        last = chunk[-1][0]


def _predict(
    classifier: Classifier, version: ModelVersion, texts: list[str], *, embeddings: bool = True
) -> Predictions:
    """Score one chunk: length-sorted batches, calibrated probabilities and mean-pooled embeddings."""
    from modeling.ml.config import InferenceConfig

    max_length = int(version.train_config.get("max_length", 256))
    config = InferenceConfig(batch_size=INFERENCE_BATCH_SIZE, max_length=max_length, device="auto")
    return classifier.predict(texts, config, return_embeddings=embeddings)


def _few_labeled_predictions(classifier: Classifier, version: ModelVersion) -> Predictions | None:
    """Score the gold training items while they are few (margin + diversity's coverage phase); else None.

    While fewer than ``LOW_BUDGET_LABELS_PER_CELL`` x classes x the pool's languages items are labeled,
    the default strategy picks the uncertain items farthest from everything labeled, so it needs the
    labeled items in the same space as the pool (their embeddings and calibrated probabilities): at most a
    few hundred texts (a few thousand for a project of many classes in many languages), scored here by
    the same version.
    """
    from django.db.models import Count

    from modeling.ml.sampling import margin_diversity
    from modeling.services.training import TRAINING_SPLITS

    by_language = pool_items(version).values("language").annotate(n=Count("id")).order_by()
    counts = {row["language"]: row["n"] for row in by_language}
    languages = margin_diversity.pool_languages(counts)
    limit = margin_diversity.low_budget_limit(len(classifier.labels), languages)
    gold = Item.objects.filter(project_id=version.project_id, gold_label__isnull=False, split__in=TRAINING_SPLITS)
    texts = list(gold.order_by("id").values_list("text", flat=True)[:limit])
    if not texts or not margin_diversity.is_low_budget(len(texts), len(classifier.labels), languages):
        return None
    return _predict(classifier, version, texts)


def _predict_stop_set(classifier: Classifier, version: ModelVersion, item_ids: list[int], label_ids: list[int]) -> None:
    """Store the version's predicted label id for every stop-set item in ``version.stop_predictions``.

    Items still in the pool were just scored: their Prediction rows are reused. The others (labeled
    since the set was chosen) are predicted here, so every version answers for the same items.
    """
    predicted: dict[int, int] = {}
    for start in range(0, len(item_ids), BULK_BATCH_SIZE):
        ids = item_ids[start : start + BULK_BATCH_SIZE]
        rows = Prediction.objects.filter(model_version=version, item_id__in=ids).values_list("item_id", "label_id")
        predicted.update(rows)
        missing = [item_id for item_id in ids if item_id not in predicted]
        texts = dict(Item.objects.filter(pk__in=missing).values_list("id", "text"))
        if texts:
            order = list(texts)
            labels = _predict(classifier, version, [texts[i] for i in order], embeddings=False).labels
            predicted.update({item_id: label_ids[int(labels[i])] for i, item_id in enumerate(order)})
    version.stop_predictions = {str(item_id): predicted[item_id] for item_id in item_ids if item_id in predicted}
    version.save(update_fields=["stop_predictions", "updated_at"])


def _write(version: ModelVersion, item_ids: list[int], predictions: Predictions, label_ids: list[int]) -> None:
    """Insert one chunk's Prediction rows in bulk; embeddings as little-endian float16 bytes."""
    embeddings = predictions.embeddings
    half = embeddings.astype("<f2") if embeddings is not None else None
    rows = [
        Prediction(
            model_version=version,
            item_id=item_id,
            label_id=label_ids[int(predictions.labels[i])],
            probs=[round(float(p), 6) for p in predictions.probabilities[i]],
            confidence=float(predictions.confidence[i]),
            margin=float(predictions.margin[i]),
            entropy=float(predictions.entropy[i]),
            embedding=half[i].tobytes() if half is not None else None,
        )
        for i, item_id in enumerate(item_ids)
    ]
    Prediction.objects.bulk_create(rows, batch_size=BULK_BATCH_SIZE)
    _write_suggestions(version, rows)


def _write_suggestions(version: ModelVersion, rows: list[Prediction]) -> None:
    """Copy each prediction onto its item as the labeling page's suggestion (labeling never reads modeling)."""
    items = [
        Item(
            pk=row.item_id,
            predicted_label_id=row.label_id,
            predicted_confidence=row.confidence,
            predicted_by_version=version.number,
        )
        for row in rows
    ]
    fields = ["predicted_label", "predicted_confidence", "predicted_by_version"]
    Item.objects.bulk_update(items, fields, batch_size=BULK_BATCH_SIZE)


def embedding_from_bytes(raw: bytes) -> np.ndarray:
    """Return a stored embedding as a float32 vector."""
    return np.frombuffer(raw, dtype="<f2").astype(np.float32)

"""Drift references: what "no drift" looks like for a version, computed once when it is approved.

A beat task (``references_enqueue_missing``) finds approved or production versions without a
``DriftReference`` and queues one job each (``gpu`` queue, like modeling's comparison; on a machine
without CUDA the same job runs on the CPU). The job scores the project's frozen eval split with the
version's verified artifact, through modeling's own inference code, and stores:

- ``arrays`` (an ``.npz``): ``probs`` (n, k) calibrated softmax outputs in ``labels`` order,
  ``embeddings`` (n, k') the pooled embeddings projected with a PCA fitted on them (k' = 32, fewer
  when the eval split or the encoder is smaller) and rounded through float16 exactly like the
  logged ones, ``pca_mean`` (d,) and ``pca_components`` (d, k'), ``lengths`` (characters),
  ``unk_rates``, ``scripts`` and ``languages`` per text, ``predicted`` (label index per text) and
  ``item_ids`` (to read the texts again for an explanation);
- ``label_distribution`` (predicted label shares), ``descriptors`` (script and language mixes, how
  it was computed).

It then writes the projection file beside the artifact (``modeling.serving.projection``) so the
model server starts logging projected embeddings for this version.

The inference settings follow the serving ones (the version's max length and truncation, int8 when
the release policy serves int8), in fp32: the reference must describe what the server computes.
"""

from __future__ import annotations

import io
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from modeling.ml.textinfo import dominant_script
from modeling.models import ModelVersion, ReleasePolicy
from modeling.services.comparison import eval_rows
from modeling.serving.projection import Projection, projection_write
from monitoring.models import DriftReference
from monitoring.stats.drift import pca_fit, pca_project
from webapp.errors import ApplicationError, Conflict
from webapp.jobs import job_create, job_enqueue
from webapp.models import Job

logger = logging.getLogger(__name__)

REFERENCE_STATUSES = (ModelVersion.Status.APPROVED, ModelVersion.Status.PRODUCTION)
EMBEDDING_DIMS = 32
JOB_TASK = "drift_reference"
# A build that failed (no eval data, a broken artifact) is tried again after this long, not every beat.
RETRY_AFTER = timedelta(hours=6)
INFERENCE_BATCH = 64


def _reference_jobs(version_pk: Any) -> Any:
    return Job.objects.filter(kind=Job.Kind.DRIFT, params__task=JOB_TASK, params__model_version_id=version_pk)


def versions_missing_reference() -> list[ModelVersion]:
    """Return approved/production versions with an artifact, no reference, and no job in flight or failed lately."""
    recent = timezone.now() - RETRY_AFTER
    blocking = {
        int(version_id)
        for version_id in Job.objects.filter(kind=Job.Kind.DRIFT, params__task=JOB_TASK)
        .filter(
            Q(status__in=(Job.Status.QUEUED, Job.Status.RUNNING, Job.Status.SUCCEEDED)) | Q(finished_at__gte=recent)
        )
        .values_list("params__model_version_id", flat=True)
        if version_id is not None
    }
    return list(
        ModelVersion.objects.filter(status__in=REFERENCE_STATUSES, drift_reference__isnull=True)
        .exclude(artifact_path="")
        .exclude(manifest_sha256="")
        .exclude(pk__in=blocking)
        .order_by("pk")
    )


def reference_enqueue(*, version: ModelVersion) -> Job:
    """Queue the reference build of ``version``, reusing a queued or running job for it."""
    existing = _reference_jobs(version.pk).filter(status__in=(Job.Status.QUEUED, Job.Status.RUNNING)).first()
    if existing is not None:
        return existing
    from monitoring.tasks.drift import build_drift_reference

    with transaction.atomic():
        job = job_create(
            kind=Job.Kind.DRIFT,
            project_id=version.project_id,
            user=None,
            params={"task": JOB_TASK, "model_version_id": version.pk},
        )
        job_enqueue(job=job, task=build_drift_reference)
    logger.info("drift reference queued", extra={"version_id": version.pk, "job_id": str(job.pk)})
    return job


def references_enqueue_missing() -> int:
    """Queue a reference build for every version that needs one (the beat task); return how many."""
    versions = versions_missing_reference()
    for version in versions:
        reference_enqueue(version=version)
    return len(versions)


# --- the job body ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceData:
    """A version's outputs and text descriptors on the eval split (what ``DriftReference`` stores)."""

    labels: list[str]
    item_ids: list[int]
    probs: npt.NDArray[np.float32]
    embeddings: npt.NDArray[np.float64]  # raw pooled embeddings (n, d)
    lengths: list[int]
    unk_rates: list[float]
    scripts: list[str]
    languages: list[str]


@dataclass(frozen=True)
class ReferenceArrays:
    """What ``reference_arrays`` derives: the ``.npz`` bytes, the PCA (mean, components d x k), label shares."""

    npz: bytes
    pca_mean: npt.NDArray[np.float32]
    pca_components: npt.NDArray[np.float32]
    label_shares: dict[str, float]


def reference_arrays(data: ReferenceData) -> ReferenceArrays:
    """Fit the PCA on the reference embeddings and pack every array (module docstring) into an ``.npz``."""
    predicted = data.probs.argmax(axis=1) if len(data.item_ids) else np.zeros(0, dtype=np.int64)
    mean, components = pca_fit(data.embeddings, dims=EMBEDDING_DIMS)
    # Rounded through float16 exactly like the prediction log's copies: both sides of a test alike.
    projected = pca_project(data.embeddings, mean, components).astype("<f2").astype(np.float32)
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        probs=data.probs.astype(np.float32),
        embeddings=projected,
        pca_mean=mean.astype(np.float32),
        pca_components=components.astype(np.float32),
        lengths=np.asarray(data.lengths, dtype=np.int64),
        unk_rates=np.asarray(data.unk_rates, dtype=np.float64),
        scripts=np.asarray(data.scripts, dtype=str),
        languages=np.asarray(data.languages, dtype=str),
        predicted=predicted.astype(np.int64),
        item_ids=np.asarray(data.item_ids, dtype=np.int64),
    )
    counts = Counter(int(i) for i in predicted)
    n = max(1, len(data.item_ids))
    shares = {label: counts.get(index, 0) / n for index, label in enumerate(data.labels)}
    return ReferenceArrays(buffer.getvalue(), mean.astype(np.float32), components.astype(np.float32), shares)


def reference_load(reference: DriftReference) -> dict[str, np.ndarray]:
    """Return a reference's arrays by name (see the module docstring)."""
    with np.load(io.BytesIO(bytes(reference.arrays)), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def _score(version: ModelVersion, texts: list[str], int8: bool) -> tuple[list[str], Any, list[float]]:
    """Return labels, predictions (with embeddings) and unknown-token rates of ``texts`` under ``version``."""
    from modeling.ml.artifacts import load_artifact
    from modeling.ml.config import InferenceConfig
    from modeling.ml.errors import ArtifactError, MLError

    config = version.train_config if isinstance(version.train_config, dict) else {}
    max_length = int(config.get("max_length") or 256)
    try:
        classifier = load_artifact(version.artifact_path, expected_manifest_sha256=version.manifest_sha256)
        inference = InferenceConfig(
            batch_size=INFERENCE_BATCH,
            max_length=max_length,
            truncation="head_tail" if config.get("truncation") == "head_tail" else "head",
            device="cpu" if int8 else "auto",
            precision="fp32",
            quantize_int8=int8,
        )
        predictions = classifier.predict(texts, inference, return_embeddings=True, return_unk_rates=True)
        rates = predictions.unk_rates
        assert rates is not None  # asked for above
    except ArtifactError as exc:
        raise ApplicationError(
            f"The artifact of v{version.number} failed verification and was not used: {exc}.", code=exc.code
        ) from exc
    except MLError as exc:
        raise ApplicationError(str(exc), code=exc.code) from exc
    return list(classifier.labels), predictions, rates


def reference_build_run(job: Job) -> dict[str, Any]:
    """Compute and store the job's version's drift reference and projection file; return a summary.

    Idempotent: a version that already has a reference is left as it is.
    """
    version = ModelVersion.objects.select_related("project").get(pk=job.params["model_version_id"])
    existing = DriftReference.objects.filter(model_version=version).first()
    if existing is not None:
        return {"model_version": version.number, "n_items": existing.n_items, "already": True}
    if version.status not in REFERENCE_STATUSES:
        raise Conflict(f"v{version.number} is {version.status}; only approved or production versions get one.")
    started = time.perf_counter()
    rows = eval_rows(version.project)
    if len(rows.item_ids) < 2:
        raise ApplicationError(
            "The eval split has fewer than two gold items: there is nothing to describe the version's traffic with.",
            code="no_eval_data",
        )
    policy = ReleasePolicy.objects.filter(project=version.project).first()
    int8 = bool(policy and policy.quantize_int8)
    job.set_progress(0.1, f"scoring v{version.number} on {len(rows.texts)} eval items")
    labels, predictions, rates = _score(version, rows.texts, int8)
    data = ReferenceData(
        labels=labels,
        item_ids=rows.item_ids,
        probs=np.asarray(predictions.probabilities, dtype=np.float32),
        embeddings=np.asarray(predictions.embeddings, dtype=np.float64),
        lengths=[len(text) for text in rows.texts],
        unk_rates=rates,
        scripts=[dominant_script(text) for text in rows.texts],
        languages=rows.languages,
    )
    job.set_progress(0.8, "fitting the projection and storing the reference")
    reference = _store(version, data, int8=int8)
    seconds = round(time.perf_counter() - started, 3)
    logger.info("drift reference built", extra={"version_id": version.pk, "items": reference.n_items, "s": seconds})
    return {"model_version": version.number, "n_items": reference.n_items, "seconds": seconds}


def _store(version: ModelVersion, data: ReferenceData, *, int8: bool) -> DriftReference:
    packed = reference_arrays(data)
    descriptors = {
        "scripts": dict(Counter(data.scripts)),
        "languages": dict(Counter(data.languages)),
        "embedding_dims": int(packed.pca_components.shape[1]),
        "int8": int8,
        "eval_items": len(data.item_ids),
    }
    try:
        with transaction.atomic():
            reference = DriftReference.objects.create(
                model_version=version,
                project_id=version.project_id,
                labels=data.labels,
                label_distribution=packed.label_shares,
                descriptors=descriptors,
                arrays=packed.npz,
                n_items=len(data.item_ids),
            )
    except IntegrityError:  # a redelivered job raced this one: keep the first
        return DriftReference.objects.get(model_version=version)
    # After the row committed: a projection file never exists for a version without its reference.
    projection_write(
        version.artifact_path,
        Projection(packed.pca_mean, packed.pca_components.T.copy(), manifest_sha256=version.manifest_sha256),
    )
    return reference

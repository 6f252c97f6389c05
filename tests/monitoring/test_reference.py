"""Drift references from a real tiny checkpoint: noticed by beat, built once on the eval split, the
projection handed to the model server, and embeddings logged with it."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.models import Item
from modeling.ml.artifacts import load_artifact
from modeling.ml.config import InferenceConfig
from modeling.models import ModelVersion, PredictionLog
from modeling.serving.projection import decode, projection_path, projection_read
from monitoring.models import DriftReference
from monitoring.services.reference import EMBEDDING_DIMS, reference_load, references_enqueue_missing
from monitoring.stats.drift import pca_project
from tests.monitoring.test_drift_fixtures import (
    DriftArtifact,
    build_reference,
    deploy,
    drift_artifact,
    drift_artifact_source,
    drift_project,
    serve,
    texts,
)
from webapp.models import Job

__all__ = ["drift_artifact", "drift_artifact_source"]


def _eval_texts(project) -> list[str]:
    return list(
        Item.objects.filter(project=project, split=Item.Split.EVAL).order_by("id").values_list("text", flat=True)
    )


@pytest.mark.django_db
def test_beat_queues_one_build_per_approved_version_without_a_reference(project, drift_artifact):
    version = drift_project(project, drift_artifact)
    deploy(project, drift_artifact, number=2, production=False)  # approved, not serving: also referenced
    ModelVersion.objects.create(project=project, number=3, status=ModelVersion.Status.CANDIDATE, base_checkpoint="x")
    assert references_enqueue_missing() == 2
    jobs = Job.objects.filter(params__task="drift_reference")
    assert sorted(job.params["model_version_id"] for job in jobs) == sorted(
        ModelVersion.objects.filter(number__in=(1, 2)).values_list("pk", flat=True)
    )
    assert references_enqueue_missing() == 0  # queued jobs are not queued twice
    assert jobs.filter(params__model_version_id=version.pk).count() == 1


def test_the_reference_task_goes_to_the_gpu_queue():
    from webapp.celery import app

    assert app.amqp.router.route({}, "monitoring.tasks.drift.build_drift_reference")["queue"].name == "gpu"


@pytest.mark.django_db
def test_reference_is_built_once_from_the_eval_split_with_the_versions_own_outputs(project, drift_artifact):
    version = drift_project(project, drift_artifact)
    job = build_reference(version)
    assert job.status == Job.Status.SUCCEEDED, job.message
    reference = DriftReference.objects.get(model_version=version)
    arrays = reference_load(reference)
    eval_texts = _eval_texts(project)
    assert reference.n_items == len(eval_texts) == 120 and reference.labels == ["negative", "positive"]
    assert arrays["probs"].shape == (120, 2) and arrays["embeddings"].shape == (120, EMBEDDING_DIMS)
    classifier = load_artifact(drift_artifact.path)
    direct = classifier.predict(eval_texts, InferenceConfig(max_length=48, device="cpu"), return_embeddings=True)
    np.testing.assert_allclose(arrays["probs"], direct.probabilities, atol=1e-5)
    projected = pca_project(direct.embeddings.astype(np.float64), arrays["pca_mean"], arrays["pca_components"])
    np.testing.assert_allclose(arrays["embeddings"], projected, atol=2e-2, rtol=2e-3)
    assert list(arrays["lengths"]) == [len(t) for t in eval_texts]
    assert list(arrays["languages"]) == ["en"] * 60 + ["es"] * 60
    assert reference.descriptors["scripts"] == {"Latin": 120}
    assert reference.descriptors["languages"] == {"en": 60, "es": 60}
    predicted = direct.probabilities.argmax(axis=1)
    assert reference.label_distribution["positive"] == pytest.approx(predicted.mean())
    # The projection file sits beside the artifact, bound to its manifest.
    assert projection_path(drift_artifact.path).is_file()
    assert projection_read(drift_artifact.path, manifest_sha256=drift_artifact.manifest_sha256) is not None
    # Once: a second job for the same version finds the reference and changes nothing.
    again = build_reference(version)
    assert again.result.get("already") is True and DriftReference.objects.count() == 1
    assert references_enqueue_missing() == 0


@pytest.mark.django_db
def test_an_eval_split_without_items_fails_the_job_with_a_reason(project, drift_artifact):
    version = drift_project(project, drift_artifact)
    Item.objects.filter(project=project).delete()
    job = build_reference(version)
    assert job.status == Job.Status.FAILED and "eval split" in job.message
    assert not DriftReference.objects.exists() and not projection_path(drift_artifact.path).exists()
    assert references_enqueue_missing() == 0  # a failed build is retried hours later, not every minute


@pytest.mark.django_db
def test_a_tampered_artifact_is_refused(project, drift_artifact: DriftArtifact):
    version = drift_project(project, drift_artifact)
    (drift_artifact.path / "config.json").write_text("{}")
    job = build_reference(version)
    assert job.status == Job.Status.FAILED and "verification" in job.message


@pytest.mark.django_db(transaction=True)  # the log sink closes a connection left in a transaction
def test_the_server_picks_up_the_projection_and_logs_projected_embeddings(project, drift_artifact):
    version = drift_project(project, drift_artifact)
    before = serve(project, drift_artifact, {"en": ["the phone was great today."]})
    assert before[0]["embedding"] is None  # no reference yet: nothing to project with
    build_reference(version)
    batch = texts("stable", 5, "en", seed=9)
    rows = serve(project, drift_artifact, {"en": batch})
    reference = reference_load(DriftReference.objects.get(model_version=version))
    classifier = load_artifact(drift_artifact.path)
    raw = classifier.predict(batch, InferenceConfig(max_length=48, device="cpu"), return_embeddings=True).embeddings
    expected = pca_project(raw.astype(np.float64), reference["pca_mean"], reference["pca_components"])
    for row, vector in zip(rows, expected, strict=True):
        logged = PredictionLog.objects.get(id=row["id"])
        assert len(bytes(logged.embedding)) == EMBEDDING_DIMS * 2
        np.testing.assert_allclose(decode(bytes(logged.embedding)), vector, atol=2e-2, rtol=2e-3)
        assert logged.script == "Latin" and logged.unk_rate is not None

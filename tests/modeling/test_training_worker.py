"""Training and pool scoring through a real Celery worker process, including a worker SIGKILLed mid-training."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from modeling.ml.artifacts import load_artifact
from modeling.models import ModelVersion, Prediction
from modeling.services.training import training_start
from modeling.tasks import train_model_version
from tests.modeling.conftest import LABELS, TINY_OVERRIDES, make_project
from tests.worker_harness import running_worker, wait_until
from webapp.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
WORKER_ENV = {"HF_HUB_OFFLINE": "1"}


def _scored(version: ModelVersion):
    def done() -> bool:
        job = Job.objects.filter(kind=Job.Kind.SCORE, params__model_version_id=version.pk).first()
        train_job = Job.objects.get(pk=version.job_id)
        if train_job.status == Job.Status.FAILED:
            raise AssertionError(f"training failed: {train_job.error}")
        return job is not None and job.is_finished

    return done


def test_a_worker_trains_saves_and_scores_tiny_roberta_and_tiny_xlmr(
    tiny_checkpoints, artifact_root, superuser, tmp_path
):
    projects = {
        "roberta": make_project("tiny-roberta", tiny_checkpoints.roberta),
        "xlmr": make_project("tiny-xlmr", tiny_checkpoints.xlmr),
    }
    with running_worker(tmp_path, env=WORKER_ENV) as worker:
        versions = {
            name: training_start(project=project, user=superuser, overrides=TINY_OVERRIDES)
            for name, project in projects.items()
        }
        for version in versions.values():
            wait_until(_scored(version), timeout=240, what="training then pool scoring", log=worker.log)
        worker.wait_for_log("modeling.tasks.score_pool", timeout=10)
    for name, version in versions.items():
        version.refresh_from_db()
        assert version.status == ModelVersion.Status.CANDIDATE, (name, version.error)
        assert Job.objects.get(pk=version.job_id).status == Job.Status.SUCCEEDED
        score_job = Job.objects.get(kind=Job.Kind.SCORE, params__model_version_id=version.pk)
        assert score_job.status == Job.Status.SUCCEEDED, score_job.error
        assert score_job.result["scored"] == 30 == Prediction.objects.filter(model_version=version).count()
        path = Path(version.artifact_path)
        assert path.parent == artifact_root / "models" / projects[name].slug
        classifier = load_artifact(path, expected_manifest_sha256=version.manifest_sha256)
        assert classifier.labels == LABELS and classifier.temperature == version.temperature
        # Plain transformers loads the artifact too: no Loopline code needed to use a model.
        model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        assert model.config.id2label == {0: "negative", 1: "positive"} and tokenizer("love it")["input_ids"]
        expected_type = {"roberta": "roberta", "xlmr": "xlm-roberta"}[name]
        assert model.config.model_type == expected_type
        assert version.metrics["training"]["total_steps"] == 9 and len(version.history) >= 3


def test_a_worker_killed_mid_training_is_recovered_by_a_second_worker(
    tiny_checkpoints, artifact_root, superuser, tmp_path
):
    project = make_project("killed-mid-training", tiny_checkpoints.roberta)
    # Many small steps, so training is still running when the first history row appears.
    slow = {**TINY_OVERRIDES, "epochs": 40, "batch_size": 4, "eval_every": "epoch"}
    first_log, second_log = tmp_path / "first", tmp_path / "second"
    first_log.mkdir()
    second_log.mkdir()
    with running_worker(first_log, env=WORKER_ENV) as worker:
        version = training_start(project=project, user=superuser, overrides=slow)

        def training_reported() -> bool:
            version.refresh_from_db()
            return version.status == ModelVersion.Status.TRAINING and bool(version.history)

        wait_until(training_reported, timeout=120, what="the first history row", log=worker.log)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)
    job = Job.objects.get(pk=version.job_id)
    version.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.RUNNING, 1)
    assert version.status == ModelVersion.Status.TRAINING and version.history[-1]["step"] < 480
    assert not Path(artifact_root / "models" / project.slug / "v1").exists()
    with running_worker(second_log, env=WORKER_ENV) as worker:
        train_model_version.delay(str(job.pk))  # the manual retry (acks_late redelivery does the same)
        wait_until(_scored(version), timeout=240, what="the retried training and scoring", log=worker.log)
    job.refresh_from_db()
    version.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.attempts >= 2
    assert ModelVersion.objects.filter(project=project).count() == 1
    assert version.status == ModelVersion.Status.CANDIDATE and version.history[-1]["step"] == 480
    load_artifact(version.artifact_path, expected_manifest_sha256=version.manifest_sha256)
    assert [p.name for p in Path(version.artifact_path).parent.iterdir()] == ["v1"]
    assert Prediction.objects.filter(model_version=version).count() == 30

"""Starting training (checks, numbering, conflicts) and the training job body, run in this process."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from django.db import connection

from labeling.models import Item
from modeling.ml.artifacts import verify_artifact
from modeling.models import ModelVersion
from modeling.services.training import artifact_dir, train_config_from_overrides, train_run, training_start
from modeling.tasks import train_model_version
from tests.modeling.conftest import LABELS, TINY_OVERRIDES
from webapp.errors import Conflict, Forbidden, ValidationFailed
from webapp.models import Job, JobCancelled


def _start(project, user, **overrides) -> ModelVersion:
    return training_start(project=project, user=user, overrides={**TINY_OVERRIDES, **overrides})


def _finish(version: ModelVersion, status: str = Job.Status.FAILED) -> None:
    Job.objects.filter(pk=version.job_id).update(status=status)


@pytest.mark.django_db
def test_start_queues_a_version_with_its_job_and_config(roberta_project, owner):
    version = _start(roberta_project, owner, lr=1e-3)
    assert (version.number, version.status, version.parent) == (1, ModelVersion.Status.QUEUED, None)
    assert version.base_checkpoint == roberta_project.base_checkpoint
    assert version.train_config["lr"] == 1e-3 and version.train_config["epochs"] == 3
    job = Job.objects.get(pk=version.job_id)
    assert (job.kind, job.status, job.params) == (Job.Kind.TRAIN, Job.Status.QUEUED, {"model_version_id": version.pk})
    assert job.created_by == owner


@pytest.mark.django_db
def test_numbers_increase_and_the_parent_is_the_latest_trained_version(roberta_project, owner, admin_member):
    first = _start(roberta_project, owner)
    _finish(first)
    ModelVersion.objects.filter(pk=first.pk).update(status=ModelVersion.Status.CANDIDATE)
    second = _start(roberta_project, admin_member)
    _finish(second)
    ModelVersion.objects.filter(pk=second.pk).update(status=ModelVersion.Status.FAILED)
    third = _start(roberta_project, owner)
    assert [first.number, second.number, third.number] == [1, 2, 3]
    assert (second.parent, third.parent) == (first, first)


@pytest.mark.django_db
def test_a_second_start_while_one_is_queued_conflicts(roberta_project, owner):
    _start(roberta_project, owner)
    with pytest.raises(Conflict, match="Version 1 is still queued"):
        _start(roberta_project, owner)
    assert ModelVersion.objects.filter(project=roberta_project).count() == 1


@pytest.mark.django_db
def test_a_version_whose_job_was_reaped_no_longer_blocks_training(roberta_project, owner):
    stuck = _start(roberta_project, owner)
    ModelVersion.objects.filter(pk=stuck.pk).update(status=ModelVersion.Status.TRAINING)
    _finish(stuck, Job.Status.FAILED)
    assert _start(roberta_project, owner).number == 2


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_starts_make_one_version(roberta_project, owner):
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def click() -> None:
        barrier.wait()
        try:
            outcomes.append(_start(roberta_project, owner).number)
        except Conflict as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes, key=str) == [1, "conflict"]
    assert list(ModelVersion.objects.filter(project=roberta_project).values_list("number", flat=True)) == [1]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"learning_rate": 1e-5}, "learning_rate", "Unknown hyperparameter"),
        ({"lr": -1}, "lr", "lr must be positive"),
        ({"lr": "fast"}, "lr", "Must be a number"),
        ({"epochs": 2.5}, "epochs", "Must be a whole number"),
        ({"epochs": True}, "epochs", "Must be a whole number"),
        ({"eval_every": "often"}, "eval_every", "'epoch' or a whole number"),
        ({"truncation": "tail"}, "truncation", "truncation must be one of"),
        ({"device": "cuda"}, "device", "Unknown hyperparameter"),
        ({"max_grad_norm": None, "batch_size": 0}, "batch_size", "batch_size must be >= 1"),
    ],
)
def test_bad_overrides_are_refused_naming_the_field(overrides, field, message):
    with pytest.raises(ValidationFailed) as caught:
        train_config_from_overrides(overrides)
    assert list(caught.value.details["overrides"]) == [field]
    assert message in caught.value.details["overrides"][field][0]
    assert field in caught.value.message


def test_good_overrides_change_only_what_they_name():
    config = train_config_from_overrides({"lr": 2e-5, "eval_every": 50, "early_stopping_patience": None})
    assert (config.lr, config.eval_every, config.early_stopping_patience, config.epochs) == (2e-5, 50, None, 3)


@pytest.mark.django_db
def test_start_says_which_data_is_missing(roberta_project, owner):
    Item.objects.filter(project=roberta_project, split=Item.Split.EVAL).update(gold_label=None)
    Item.objects.filter(project=roberta_project, split=Item.Split.TRAIN, gold_label__name="positive").update(
        gold_label=None
    )
    with pytest.raises(ValidationFailed) as caught:
        _start(roberta_project, owner)
    assert caught.value.code == "not_enough_data"
    assert "at least 2 labels (found 1)" in caught.value.message
    assert "eval split" in caught.value.message
    assert not ModelVersion.objects.exists() and not Job.objects.filter(kind=Job.Kind.TRAIN).exists()


@pytest.mark.django_db
def test_reviewers_cannot_start_training(roberta_project, reviewer):
    with pytest.raises(Forbidden):
        _start(roberta_project, reviewer)


def _train(project, owner) -> tuple[ModelVersion, Job]:
    version = _start(project, owner)
    train_model_version(str(version.job_id))
    version.refresh_from_db()
    return version, Job.objects.get(pk=version.job_id)


@pytest.mark.django_db
def test_the_job_trains_calibrates_and_saves_a_verified_artifact(roberta_project, owner, artifact_root):
    version, job = _train(roberta_project, owner)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert version.status == ModelVersion.Status.CANDIDATE
    path = Path(version.artifact_path)
    assert path == artifact_root / "models" / roberta_project.slug / "v1" == artifact_dir(version)
    manifest = verify_artifact(path, version.manifest_sha256)
    assert manifest["labels"] == LABELS and manifest["temperature"] == version.temperature
    assert manifest["metrics"] == version.metrics
    metrics = version.metrics
    assert set(metrics) == {"eval", "calibration", "training", "quantization"}
    assert metrics["eval"]["n"] == 16 and [c["label"] for c in metrics["eval"]["per_class"]] == LABELS
    calibration = metrics["calibration"]
    assert calibration["temperature"] == version.temperature
    assert calibration["ece_after"] == metrics["eval"]["calibration_after"]["ece"]
    for key in ("reliability_before", "reliability_after"):
        assert len(calibration[key]) == 15 and sum(b["count"] for b in calibration[key]) == 16
        assert set(calibration[key][0]) == {"lower", "upper", "confidence", "accuracy", "count"}
    training = metrics["training"]
    assert training["total_steps"] == 9 and training["device"] == "cpu" and training["samples_per_s"] > 0
    assert version.data["train"] == 48 and version.data["eval"] == 16
    assert version.data["label_counts"] == {"negative": 24, "positive": 24} and len(version.data["snapshot"]) == 64
    steps = [row["step"] for row in version.history]
    assert steps == sorted(steps) and steps[-1] == 9
    assert [row["step"] for row in version.history if row["eval"]] == [3, 6, 9]
    assert job.result["score_job"] and job.result["model_version"] == 1
    score_job = Job.objects.get(pk=job.result["score_job"])
    assert (score_job.kind, score_job.params) == (Job.Kind.SCORE, {"model_version_id": version.pk})
    assert job.progress == 1.0 and job.attempts == 1


@pytest.mark.django_db
def test_a_rerun_after_dying_past_the_save_reuses_the_artifact_and_sweeps_staging(
    roberta_project, owner, artifact_root
):
    version, job = _train(roberta_project, owner)
    saved_sha, history = version.manifest_sha256, version.history
    # The worker died after save_artifact's rename but before the version and job were marked.
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.TRAINING, manifest_sha256="")
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)
    staging = Path(version.artifact_path).parent / ".v1.abc123.tmp"
    staging.mkdir()
    (staging / "model.safetensors").write_bytes(b"half")
    train_model_version(str(job.pk))
    version.refresh_from_db()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.attempts == 2
    assert version.status == ModelVersion.Status.CANDIDATE and version.manifest_sha256 == saved_sha
    assert version.history == history  # not retrained
    assert not staging.exists()
    assert ModelVersion.objects.filter(project=roberta_project).count() == 1
    assert Job.objects.filter(kind=Job.Kind.SCORE).count() == 1


@pytest.mark.django_db
def test_a_rerun_replaces_an_artifact_that_does_not_verify(roberta_project, owner, artifact_root):
    version, job = _train(roberta_project, owner)
    old_sha = version.manifest_sha256
    path = Path(version.artifact_path)
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.TRAINING)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)
    (path / "model.safetensors").write_bytes(b"truncated by the crash")
    train_model_version(str(job.pk))
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.CANDIDATE
    assert version.manifest_sha256 != old_sha  # retrained: the manifest records new timings
    verify_artifact(path, version.manifest_sha256)


@pytest.mark.django_db
def test_a_swapped_tokenizer_fails_the_job_with_the_checkpoint_error(
    roberta_project, owner, artifact_root, tiny_checkpoints, tmp_path
):
    broken = tmp_path / "swapped"
    shutil.copytree(tiny_checkpoints.roberta, broken)
    for name in ("vocab.json", "merges.txt"):
        (broken / name).unlink(missing_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tiny_checkpoints.xlmr / name, broken / name)
    roberta_project.base_checkpoint = str(broken)
    roberta_project.save(update_fields=["base_checkpoint"])
    version, job = _train(roberta_project, owner)
    assert job.status == Job.Status.FAILED
    assert job.error.startswith("tokenizer/model mismatch: ") and "embedding rows" in job.error
    assert job.result["code"] == "checkpoint_invalid"
    assert version.status == ModelVersion.Status.FAILED and version.error == job.error
    assert not artifact_dir(version).exists()


@pytest.mark.django_db
def test_a_cancel_stops_training_at_the_next_report(roberta_project, owner, artifact_root):
    version = _start(roberta_project, owner)
    job = Job.objects.get(pk=version.job_id)
    # Requested after run_job's own check: the first progress report must notice it.
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    with pytest.raises(JobCancelled):
        train_run(job)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.FAILED and version.error == "Training was cancelled."
    assert not artifact_dir(version).exists()

"""The comparison job end to end on real tiny artifacts: both versions scored on the same frozen eval
split, the statistics, the gates, model size and latency, failures; and starting one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labeling.models import Item
from modeling.models import Alias, Comparison, ModelVersion
from modeling.services.comparison import DISAGREEMENT_CAP, LATENCY_RUNS, comparison_start, eval_rows
from modeling.services.releases import policy_for
from modeling.tasks import compare_versions
from tests.modeling.conftest import LABELS, fill_project
from tests.modeling.test_releases_fixtures import make_version, release_artifacts
from webapp.errors import Conflict, Forbidden
from webapp.models import Job

__all__ = ["release_artifacts"]

pytestmark = pytest.mark.django_db


@pytest.fixture
def labeled_project(project):
    """The conftest project with LABELS and gold train/eval items (16 eval items, en and es)."""
    project.labels.all().delete()
    for i, name in enumerate(LABELS):
        project.labels.create(name=name, order=i)
    fill_project(project)
    return project


def _in_production(version: ModelVersion) -> ModelVersion:
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.PRODUCTION)
    Alias.objects.create(project=version.project, name=Alias.Name.PRODUCTION, version=version)
    version.refresh_from_db()
    return version


def _run(version: ModelVersion, user) -> Comparison:
    comparison = comparison_start(version=version, user=user)
    compare_versions(str(comparison.job_id))
    comparison.refresh_from_db()
    return comparison


def test_candidate_and_production_are_scored_on_the_same_eval_items(labeled_project, owner, release_artifacts):
    production = _in_production(make_version(labeled_project, 1, release_artifacts.weak))
    candidate = make_version(labeled_project, 2, release_artifacts.strong)
    comparison = _run(candidate, owner)
    job = Job.objects.get(pk=comparison.job_id)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.kind, comparison.status, comparison.production) == (Job.Kind.COMPARE, "succeeded", production)
    results = comparison.results
    rows = eval_rows(labeled_project)
    assert results["n"] == len(rows.item_ids) == 16 and results["labels"] == LABELS
    cand, prod = results["candidate"], results["production"]
    assert (cand["version"], prod["version"]) == (2, 1)
    # The strong model learned the cue words; the barely trained one did not.
    assert cand["macro_f1"] > 0.9 > prod["macro_f1"]
    for block, artifact in ((cand, release_artifacts.strong), (prod, release_artifacts.weak)):
        assert block["macro_f1_ci"]["low"] <= block["macro_f1"] <= block["macro_f1_ci"]["high"]
        assert sum(map(sum, block["confusion"])) == 16 and len(block["reliability"]) == 15
        assert sum(b["count"] for b in block["reliability"]) == 16 and 0 <= block["ece"] <= 1
        assert set(block["per_language"]) == {"en", "es"}
        assert block["size"]["parameters"] > 1000
        assert block["size"]["bytes"] == sum(f.stat().st_size for f in Path(artifact.path).iterdir())
        latency = block["latency"]
        assert latency["runs"] == LATENCY_RUNS and latency["batch_size"] == 32 and latency["device"] == "cpu"
        assert 0 < latency["min_ms"] <= latency["median_ms"] <= latency["max_ms"]
    paired = results["paired"]["macro_f1"]
    assert paired["delta"] == pytest.approx(cand["macro_f1"] - prod["macro_f1"])
    assert paired["delta_ci"]["low"] <= paired["delta"] <= paired["delta_ci"]["high"]
    mc = results["mcnemar"]
    assert mc["candidate_only"] + mc["production_only"] + mc["both_right"] + mc["both_wrong"] == 16
    assert mc["candidate_only"] > mc["production_only"] and 0 <= mc["p_value"] <= 1
    assert [d["label"] for d in results["per_class_deltas"]] == LABELS
    assert {d["language"] for d in results["per_language_deltas"]} == {"en", "es"}
    disagreements = results["disagreements"]
    assert disagreements["total"] == mc["candidate_only"] + mc["production_only"] + disagreements["both_wrong"]
    listed = disagreements["items"]
    assert len(listed) == disagreements["total"] <= DISAGREEMENT_CAP
    assert {d["item_id"] for d in listed} <= set(rows.item_ids)
    assert all(d["candidate"] != d["production"] for d in listed)
    # Regressions (production right, candidate wrong) come first.
    kinds = [d["production"] == d["gold"] for d in listed]
    assert kinds == sorted(kinds, reverse=True)
    assert results["summaries"]["production"]["macro_f1"] == prod["macro_f1"]
    assert {g["gate"] for g in results["gates"]} >= {"max_regression", "max_class_regression"}
    assert job.result["comparison"] == comparison.pk and job.result["mcnemar_p"] == mc["p_value"]


def test_without_production_the_candidate_is_scored_alone_and_only_absolute_gates_apply(
    labeled_project, owner, release_artifacts
):
    policy = policy_for(project=labeled_project)
    policy.min_macro_f1 = 0.99
    policy.save()
    candidate = make_version(labeled_project, 1, release_artifacts.weak)
    comparison = _run(candidate, owner)
    results = comparison.results
    assert comparison.status == "succeeded" and comparison.production is None
    assert results["production"] is None and results["paired"] is None and results["mcnemar"] is None
    assert results["disagreements"]["items"] == [] and results["summaries"]["production"] is None
    assert [g["gate"] for g in results["gates"]] == ["min_macro_f1"]
    assert results["gates"][0]["passed"] is False and "below the minimum 0.990" in results["gates"][0]["message"]


def test_an_int8_policy_measures_the_quantization_delta_on_cpu(labeled_project, owner, release_artifacts):
    policy = policy_for(project=labeled_project)
    policy.quantize_int8 = True
    policy.save()
    comparison = _run(make_version(labeled_project, 1, release_artifacts.strong), owner)
    int8 = comparison.results["candidate"]["int8"]
    assert set(int8) >= {"accuracy_fp32", "accuracy_int8", "accuracy_delta", "agreement"}
    assert int8["accuracy_delta"] == pytest.approx(int8["accuracy_int8"] - int8["accuracy_fp32"])


def test_a_modified_artifact_fails_the_comparison_and_says_why(labeled_project, owner, release_artifacts, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(release_artifacts.strong.path, copy)
    (copy / "model.safetensors").write_bytes(b"not the weights")
    candidate = make_version(labeled_project, 1, release_artifacts.strong)
    ModelVersion.objects.filter(pk=candidate.pk).update(artifact_path=str(copy))
    comparison = _run(candidate, owner)
    job = Job.objects.get(pk=comparison.job_id)
    assert comparison.status == "failed" and job.status == Job.Status.FAILED
    assert "failed verification" in comparison.error and "model.safetensors" in comparison.error
    assert comparison.results == {}


def test_eval_labels_the_models_do_not_know_fail_the_comparison(labeled_project, owner, release_artifacts):
    extra = labeled_project.labels.create(name="neutral", order=2)
    first = Item.objects.filter(project=labeled_project, split=Item.Split.EVAL).order_by("id").first()
    Item.objects.filter(pk=first.pk).update(gold_label=extra)
    comparison = _run(make_version(labeled_project, 1, release_artifacts.strong), owner)
    assert comparison.status == "failed" and "['neutral']" in comparison.error


def test_a_second_start_while_one_is_queued_returns_it(labeled_project, owner, release_artifacts):
    candidate = make_version(labeled_project, 1, release_artifacts.strong)
    first = comparison_start(version=candidate, user=owner)
    again = comparison_start(version=candidate, user=owner)
    assert again.pk == first.pk and Comparison.objects.count() == 1
    job = Job.objects.get(pk=first.job_id)
    assert (job.kind, job.params, job.status) == (Job.Kind.COMPARE, {"comparison_id": first.pk}, Job.Status.QUEUED)
    # Once its job ended (here cancelled before running), a new start makes a new comparison.
    Job.objects.filter(pk=job.pk).update(status=Job.Status.CANCELLED)
    assert comparison_start(version=candidate, user=owner).pk != first.pk


@pytest.mark.parametrize("status", ["queued", "training", "failed", "rejected", "production", "retired"])
def test_only_candidates_and_approved_versions_are_compared(labeled_project, owner, status):
    version = make_version(labeled_project, 1, status=status)
    with pytest.raises(Conflict) as caught:
        comparison_start(version=version, user=owner)
    assert caught.value.code == "not_comparable" and f"v1 is {status}" in caught.value.message
    assert not Comparison.objects.exists() and not Job.objects.exists()


def test_reviewers_cannot_start_a_comparison(labeled_project, reviewer):
    with pytest.raises(Forbidden):
        comparison_start(version=make_version(labeled_project, 1), user=reviewer)
    assert not Comparison.objects.exists()


def test_a_rerun_of_a_succeeded_comparison_changes_nothing(labeled_project, owner, release_artifacts):
    comparison = _run(make_version(labeled_project, 1, release_artifacts.strong), owner)
    finished = comparison.finished_at
    Job.objects.filter(pk=comparison.job_id).update(status=Job.Status.RUNNING)
    compare_versions(str(comparison.job_id))
    comparison.refresh_from_db()
    assert comparison.finished_at == finished and comparison.status == "succeeded"


def test_the_comparison_task_goes_to_the_gpu_queue():
    from webapp.celery import app

    assert app.amqp.router.route({}, "modeling.tasks.compare_versions")["queue"].name == "gpu"


def test_a_version_trained_by_the_training_job_is_compared_approved_and_promoted(
    roberta_project, owner, admin_member, artifact_root
):
    from modeling.services.releases import release_approve, release_promote
    from modeling.services.training import training_start
    from modeling.tasks import train_model_version
    from tests.modeling.conftest import TINY_OVERRIDES

    version = training_start(project=roberta_project, user=owner, overrides={**TINY_OVERRIDES, "epochs": 8})
    train_model_version(str(version.job_id))
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.CANDIDATE, version.error
    comparison = _run(version, owner)
    assert comparison.status == "succeeded", comparison.error
    # Same items, same model: the comparison reproduces the training job's own evaluation.
    assert comparison.results["candidate"]["macro_f1"] == pytest.approx(version.metrics["eval"]["macro_f1"])
    assert comparison.results["candidate"]["confusion"] == version.metrics["eval"]["confusion"]
    release_approve(version=version, user=admin_member, comment="first release")
    release_promote(version=version, user=admin_member)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.PRODUCTION
    assert Alias.objects.get(project=roberta_project, name="production").version == version

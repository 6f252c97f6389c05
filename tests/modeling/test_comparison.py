"""The comparison job end to end on real tiny artifacts: both versions scored on the same frozen eval
split, the statistics, the gates, model size and latency, failures; and starting one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.urls import reverse

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


def test_an_int8_policy_measures_the_quantization_delta_with_mcnemar(labeled_project, owner, release_artifacts):
    policy = policy_for(project=labeled_project)
    policy.quantize_int8 = True
    policy.save()
    _in_production(make_version(labeled_project, 1, release_artifacts.weak))
    comparison = _run(make_version(labeled_project, 2, release_artifacts.strong), owner)
    assert comparison.status == "succeeded", comparison.error
    results = comparison.results
    int8 = results["candidate"]["int8"]
    assert results["production"]["int8"] is None  # production is served as it is; only the candidate is asked
    # The fp32 side is the candidate's own scoring (this job ran on CPU): the same accuracy and macro-F1.
    cand = results["candidate"]
    assert (int8["accuracy_fp32"], int8["macro_f1_fp32"]) == (cand["accuracy"], cand["macro_f1"])
    assert int8["n"] == results["n"] == 16
    assert int8["accuracy_delta"] == pytest.approx(int8["accuracy_int8"] - int8["accuracy_fp32"])
    assert int8["macro_f1_delta"] == pytest.approx(int8["macro_f1_int8"] - int8["macro_f1_fp32"])
    for key in ("accuracy_delta", "macro_f1_delta"):
        assert int8[f"{key}_ci"]["low"] <= int8[key] <= int8[f"{key}_ci"]["high"]
    assert int8["int8_only"] + int8["fp32_only"] + int8["both_right"] + int8["both_wrong"] == 16
    assert int8["changed"] == round((1 - int8["agreement"]) * 16) and 0 <= int8["mcnemar_p"] <= 1
    assert 0 < int8["max_probability_change"] < 0.5  # quantization perturbs the outputs, a little
    latency = int8["latency"]
    assert latency["device"] == "cpu" and latency["runs"] == LATENCY_RUNS and latency["median_ms"] > 0


def test_without_the_int8_policy_no_int8_copy_is_measured(labeled_project, owner, release_artifacts):
    comparison = _run(make_version(labeled_project, 1, release_artifacts.strong), owner)
    assert comparison.status == "succeeded" and comparison.results["candidate"]["int8"] is None


def test_the_quantization_delta_is_paired_int8_minus_fp32():
    from modeling.ml.compare import quantization_compare

    gold = [0, 0, 1, 1, 1, 0]
    # fp32 gets items 0-4 right and item 5 wrong; int8 flips item 1 (now wrong) and item 5 (now right),
    # and item 2 moves a little without changing its label.
    fp32 = [[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.1, 0.9], [0.4, 0.6]]
    int8 = [[0.9, 0.1], [0.45, 0.55], [0.35, 0.65], [0.2, 0.8], [0.1, 0.9], [0.7, 0.3]]
    delta = quantization_compare(gold, fp32, int8, 2, n_resamples=200)
    assert delta.accuracy_fp32 == delta.accuracy_int8 == pytest.approx(5 / 6) and delta.accuracy_delta == 0.0
    assert (delta.int8_only, delta.fp32_only, delta.both_right, delta.both_wrong) == (1, 1, 4, 0)
    assert (delta.changed, delta.agreement) == (2, pytest.approx(4 / 6))
    assert delta.mcnemar_p == 1.0  # one discordant pair each way: no evidence of a difference
    assert delta.max_probability_change == pytest.approx(0.3)
    # fp32 predicts [0,0,1,1,1,1]: F1 class 0 = 2*2/(2+3) = 0.8, class 1 = 2*3/(4+3) = 6/7.
    assert delta.macro_f1_fp32 == pytest.approx((0.8 + 6 / 7) / 2)
    assert delta.macro_f1_delta == pytest.approx(delta.macro_f1_int8 - delta.macro_f1_fp32)
    assert delta.macro_f1_delta_ci.low <= delta.macro_f1_delta <= delta.macro_f1_delta_ci.high
    many_wrong = quantization_compare([0] * 12, [[0.9, 0.1]] * 12, [[0.4, 0.6]] * 12, 2, n_resamples=200)
    # Twelve discordant pairs all one way: exact two-sided binomial p = 2 * 0.5**12.
    assert many_wrong.accuracy_delta == -1.0 and many_wrong.mcnemar_p == pytest.approx(2 * 0.5**12)
    with pytest.raises(ValueError, match="equal"):
        quantization_compare([0, 1], [[0.5, 0.5]] * 2, [[0.5, 0.5]] * 3, 2)


def test_the_comparison_page_shows_the_int8_delta_in_the_approval_area(
    client, labeled_project, owner, release_artifacts
):
    policy = policy_for(project=labeled_project)
    policy.quantize_int8 = True
    policy.save()
    candidate = make_version(labeled_project, 1, release_artifacts.strong)
    client.force_login(owner)
    _run(candidate, owner)
    page = client.get(reverse("modeling:comparison", args=[labeled_project.slug, 1]))
    assert page.status_code == 200
    html = page.content.decode()
    int8 = page.context["int8"]
    assert 'id="int8"' in html and 'id="int8-mcnemar"' in html
    approval = html[html.index('id="release-actions"') :]
    assert 'id="int8-approval"' in approval
    assert f"accuracy Δ <strong>{int8['accuracy_delta'] * 100:.1f}</strong> points" in approval
    assert f"macro-F1 Δ <strong>{int8['macro_f1_delta'] * 100:.1f}</strong> points" in approval


def test_the_approval_area_warns_when_the_int8_policy_came_after_the_comparison(
    client, labeled_project, owner, release_artifacts
):
    _run(make_version(labeled_project, 1, release_artifacts.strong), owner)
    client.force_login(owner)
    page = client.get(reverse("modeling:comparison", args=[labeled_project.slug, 1]))
    assert 'id="int8-approval"' not in page.content.decode()
    policy = policy_for(project=labeled_project)
    policy.quantize_int8 = True
    policy.save()
    html = client.get(reverse("modeling:comparison", args=[labeled_project.slug, 1])).content.decode()
    assert "did not measure the int8 copy: run the comparison again" in html


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

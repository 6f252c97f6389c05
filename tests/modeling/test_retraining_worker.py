"""The loop end to end through a real Celery worker: gold labels arrive, beat's task retrains, the queue follows."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import Item, Project, Role
from modeling.models import ModelVersion, Retraining
from modeling.services.training import training_start
from modeling.tasks import retrain_due_projects
from tests.factories import MembershipFactory, UserFactory
from tests.modeling.conftest import TINY_OVERRIDES, make_project
from tests.modeling.test_retraining import _label
from tests.worker_harness import running_worker, wait_until
from webapp.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
WORKER_ENV = {"HF_HUB_OFFLINE": "1"}


def _chain_done(version_number: int, project: Project):
    def done() -> bool:
        version = ModelVersion.objects.filter(project=project, number=version_number).first()
        if version is None:
            return False
        train_job = Job.objects.get(pk=version.job_id)
        if train_job.status == Job.Status.FAILED:
            raise AssertionError(f"training failed: {train_job.error}")
        score = Job.objects.filter(kind=Job.Kind.SCORE, params__model_version_id=version.pk).first()
        if score is not None and score.status == Job.Status.FAILED:
            raise AssertionError(f"scoring failed: {score.error}")
        return score is not None and score.status == Job.Status.SUCCEEDED

    return done


def test_new_gold_labels_make_beat_retrain_then_score_and_rerank_the_queue(
    tiny_checkpoints, artifact_root, tmp_path, api_client_for
):
    project = make_project("loop", tiny_checkpoints.roberta)
    Project.objects.filter(pk=project.pk).update(retrain_after_labels=6, overlap_fraction=0.0)
    project.refresh_from_db()
    owner, reviewer = UserFactory(username="owner"), UserFactory(username="reviewer")
    MembershipFactory(project=project, user=owner, role=Role.OWNER)
    MembershipFactory(project=project, user=reviewer, role=Role.REVIEWER)
    with running_worker(tmp_path, env=WORKER_ENV) as worker:
        training_start(project=project, user=owner, overrides=TINY_OVERRIDES)
        wait_until(_chain_done(1, project), timeout=240, what="v1 training then pool scoring", log=worker.log)
        assert Item.objects.filter(project=project, status=Item.Status.QUEUED, ranked_by_version=1).count() == 30
        labeled = _label(project, reviewer, 6)
        assert Project.objects.get(pk=project.pk).labels_since_training == 6
        retrain_due_projects.delay()  # what beat sends every 30 s
        wait_until(_chain_done(2, project), timeout=240, what="the automatic v2 chain", log=worker.log)

        def settled() -> bool:
            return Retraining.objects.filter(project=project, status=Retraining.Status.SUCCEEDED).exists()

        wait_until(settled, timeout=30, what="the retraining marked succeeded", log=worker.log)
        worker.wait_for_log("modeling.tasks.retrain_due_projects", timeout=10)
    v2 = ModelVersion.objects.get(project=project, number=2)
    run = Retraining.objects.get(project=project)
    assert (run.trigger, run.version, run.requested_by, run.labels_at_start) == ("auto", v2, None, 6)
    assert v2.created_by is None and v2.status == ModelVersion.Status.CANDIDATE
    assert v2.data["train"] == 48 + 6 and v2.data["new_labels"] == 6
    assert Project.objects.get(pk=project.pk).labels_since_training == 0
    queued = Item.objects.filter(project=project, status=Item.Status.QUEUED)
    assert queued.count() == 24 and set(queued.values_list("ranked_by_version", flat=True)) == {2}
    assert not queued.filter(pk__in=labeled).exists()
    # The six labeled items were in the stop set: v2 still predicted them.
    assert {str(pk) for pk in labeled} <= set(v2.stop_predictions) and len(v2.stop_predictions) == 30
    assert ModelVersion.objects.filter(project=project).count() == 2
    body = api_client_for(reviewer).get(reverse("api-learning-curve", kwargs={"slug": "loop"})).json()
    assert [(p["version"], p["gold_labels"], p["automatic"]) for p in body["points"]] == [(1, 48, False), (2, 54, True)]
    assert [(p["from_version"], p["to_version"], p["items"]) for p in body["stopping"]["pairs"]] == [(1, 2, 30)]

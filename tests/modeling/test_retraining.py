"""Retraining in the loop, run in this process: triggers, coalescing, failures, the new-label counter.

The training and scoring tasks run for real (tiny RoBERTa) by calling them directly, as a worker
would; beat's task is ``retrainings_advance_due``. Gold labels arrive through labeling's own queue
services (lease, then submit), which is what moves ``Project.labels_since_training``.
"""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.urls import reverse

from labeling.models import Item, Label, Project
from labeling.services.queue import annotation_submit, queue_next
from modeling.models import ModelVersion, Retraining
from modeling.services.retraining import retraining_advance, retraining_request, retrainings_advance_due
from modeling.services.training import training_rows_consume, training_start
from modeling.tasks import retrain_due_projects, score_pool, train_model_version
from tests.conftest import requires_postgres
from tests.modeling.conftest import _CUES, TINY_OVERRIDES
from webapp.celery import app
from webapp.errors import Forbidden, ValidationFailed
from webapp.jobs import job_cancel
from webapp.models import Job
from webapp.tasks import MAX_ATTEMPTS, reap_stale_jobs

RUNNING, PENDING = Retraining.Status.RUNNING, Retraining.Status.PENDING


@pytest.fixture
def project(roberta_project, artifact_root) -> Project:
    """Tiny RoBERTa with gold data and a private artifact root; retrain after 3 new labels; one reviewer per item."""
    roberta_project.retrain_after_labels = 3
    roberta_project.overlap_fraction = 0.0
    roberta_project.save(update_fields=["retrain_after_labels", "overlap_fraction"])
    return roberta_project


def _counter(project: Project) -> int:
    return Project.objects.values_list("labels_since_training", flat=True).get(pk=project.pk)


def _record_labels(project: Project, count: int) -> None:
    """Add to the counter exactly as labeling does when items become gold (for tests that need no items)."""
    Project.objects.filter(pk=project.pk).update(labels_since_training=F("labels_since_training") + count)


def _label(project: Project, reviewer, count: int) -> list[int]:
    """Label `count` queued items through the real queue (lease, submit) with their true label."""
    labels = {label.name: label for label in Label.objects.filter(project=project)}
    done = []
    for _ in range(count):
        lease = queue_next(project=project, user=reviewer)
        assert lease is not None, "the queue ran dry"
        item = Item.objects.get(pk=lease.item_id)
        name = "positive" if set(item.text.split()) & set(_CUES["positive"]) else "negative"
        annotation_submit(project=project, user=reviewer, item=item, label=labels[name], lease_id=lease.pk)
        done.append(item.pk)
    assert Item.objects.filter(pk__in=done, status=Item.Status.GOLD).count() == count
    return done


def _score_job(version: ModelVersion) -> Job:
    return Job.objects.get(kind=Job.Kind.SCORE, params__model_version_id=version.pk)


def _train(version: ModelVersion) -> ModelVersion:
    train_model_version(str(version.job_id))
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.CANDIDATE, version.error
    return version


def _score(version: ModelVersion) -> None:
    score_pool(str(_score_job(version).pk))
    job = _score_job(version)
    assert job.status == Job.Status.SUCCEEDED, job.error


def _versions(project: Project) -> list[int]:
    return list(ModelVersion.objects.filter(project=project).order_by("number").values_list("number", flat=True))


@pytest.fixture
def v1(project, owner) -> ModelVersion:
    """Version 1, trained by hand with the tiny hyperparameters (automatic runs reuse them) and scored."""
    version = _train(training_start(project=project, user=owner, overrides=TINY_OVERRIDES))
    _score(version)
    assert Item.objects.filter(project=project, status=Item.Status.QUEUED, ranked_by_version=1).count() == 30
    return version


@pytest.mark.django_db
def test_reaching_the_threshold_starts_exactly_one_automatic_chain(project):
    _record_labels(project, 2)
    assert retrainings_advance_due() == 0 and _versions(project) == []
    _record_labels(project, 1)
    assert retrain_due_projects() == 1  # the beat task
    for _ in range(3):
        assert retrainings_advance_due() == 0
    run = Retraining.objects.get(project=project)
    version = ModelVersion.objects.get(project=project)
    assert (run.trigger, run.status, run.version, run.requested_by, run.labels_at_start) == (
        "auto",
        RUNNING,
        version,
        None,
        3,
    )
    assert version.created_by is None and version.job.created_by is None
    assert (version.job.kind, version.job.status) == (Job.Kind.TRAIN, Job.Status.QUEUED)
    # The counter is only consumed when training reads its rows.
    assert _counter(project) == 3


@pytest.mark.django_db
def test_labels_and_presses_during_a_chain_coalesce_into_exactly_one_follow_up(
    project, v1, owner, admin_member, reviewer
):
    _label(project, reviewer, 3)
    assert retrainings_advance_due() == 1
    v2 = ModelVersion.objects.get(project=project, number=2)
    assert v2.retraining.trigger == "auto" and v2.train_config == v1.train_config
    # Two more labels before training reads its rows: they are trained on, so they are consumed too.
    _label(project, reviewer, 2)
    _train(v2)
    assert _counter(project) == 0 and v2.data["new_labels"] == 5 and v2.data["train"] == 48 + 5
    # While v2 scores the pool: labels past the threshold twice over, three presses, beat runs.
    _label(project, reviewer, 7)
    outcomes = [retraining_request(project=project, user=user) for user in (owner, admin_member, owner)]
    assert [o.action for o in outcomes] == ["coalesced"] * 3
    assert len({o.retraining.pk for o in outcomes}) == 1 and outcomes[-1].retraining.requests == 3
    assert outcomes[0].running == v2.retraining and "v2" in outcomes[0].message
    assert [retrainings_advance_due() for _ in range(3)] == [0, 0, 0]
    assert _versions(project) == [1, 2]
    _score(v2)  # the chain's end starts the single follow-up
    assert _versions(project) == [1, 2, 3]
    runs = {run.version.number: run for run in Retraining.objects.filter(project=project).select_related("version")}
    assert runs[2].status == Retraining.Status.SUCCEEDED and runs[2].finished_at is not None
    follow_up = runs[3]
    assert (follow_up.status, follow_up.trigger, follow_up.requested_by, follow_up.requests) == (
        RUNNING,
        "manual",
        owner,
        3,
    )
    assert not Retraining.objects.filter(project=project, status=PENDING).exists()
    v3 = _train(ModelVersion.objects.get(project=project, number=3))
    assert v3.created_by == owner and v3.data["new_labels"] == 7 and v3.data["train"] == 48 + 12
    _score(v3)
    assert Retraining.objects.get(version=v3).status == Retraining.Status.SUCCEEDED
    assert _counter(project) == 0 and retrainings_advance_due() == 0 and _versions(project) == [1, 2, 3]
    assert Item.objects.filter(project=project, status=Item.Status.QUEUED).exclude(ranked_by_version=3).count() == 0


@pytest.mark.django_db
def test_labels_alone_during_a_chain_start_one_automatic_follow_up_when_it_ends(project, v1, reviewer):
    _label(project, reviewer, 3)
    assert retrainings_advance_due() == 1
    v2 = _train(ModelVersion.objects.get(project=project, number=2))
    _label(project, reviewer, 9)  # three thresholds' worth
    assert retrainings_advance_due() == 0
    _score(v2)
    assert _versions(project) == [1, 2, 3]
    follow_up = Retraining.objects.get(version__number=3)
    assert (follow_up.trigger, follow_up.status, follow_up.labels_at_start) == ("auto", RUNNING, 9)
    assert retrainings_advance_due() == 0 and _versions(project) == [1, 2, 3]


@pytest.mark.django_db
def test_retrain_now_starts_at_once_when_idle_and_needs_the_owner_role(project, v1, owner, reviewer):
    with pytest.raises(Forbidden):
        retraining_request(project=project, user=reviewer)
    outcome = retraining_request(project=project, user=owner)
    assert outcome.action == "started" and outcome.running is None
    assert outcome.retraining.version.number == 2 and outcome.retraining.version.created_by == owner
    assert "v2 is queued" in outcome.message


@pytest.mark.django_db
def test_a_failed_training_ends_the_chain_is_not_retried_and_retrain_now_still_works(
    project, v1, owner, reviewer, tmp_path
):
    good_checkpoint = project.base_checkpoint
    Project.objects.filter(pk=project.pk).update(base_checkpoint=str(tmp_path / "no-such-checkpoint"))
    _label(project, reviewer, 3)
    assert retrainings_advance_due() == 1
    v2 = ModelVersion.objects.get(project=project, number=2)
    train_model_version(str(v2.job_id))
    v2.refresh_from_db()
    assert v2.status == ModelVersion.Status.FAILED
    run = Retraining.objects.get(version=v2)
    assert run.status == Retraining.Status.FAILED and run.error.startswith("Training v2 failed: ")
    # Training read (and consumed) the labels before failing: beat does not start the same chain again.
    assert _counter(project) == 0
    assert [retrainings_advance_due() for _ in range(3)] == [0, 0, 0] and _versions(project) == [1, 2]
    Project.objects.filter(pk=project.pk).update(base_checkpoint=good_checkpoint)
    project.refresh_from_db()
    outcome = retraining_request(project=project, user=owner)
    assert outcome.action == "started"
    v3 = _train(outcome.retraining.version)
    _score(v3)
    assert Retraining.objects.get(version=v3).status == Retraining.Status.SUCCEEDED


@pytest.mark.django_db
def test_a_chain_cancelled_before_training_read_its_labels_consumes_them_once(project, owner):
    _record_labels(project, 5)
    assert retrainings_advance_due() == 1
    version = ModelVersion.objects.get(project=project)
    _record_labels(project, 2)  # arrive after the start: they stay for the next run
    job_cancel(job=version.job, user=owner)
    assert retrainings_advance_due() == 0
    run = Retraining.objects.get(project=project)
    assert run.status == Retraining.Status.FAILED and "cancelled" in run.error
    assert _counter(project) == 2
    assert retrainings_advance_due() == 0 and _versions(project) == [1]
    _record_labels(project, 3)
    assert retrainings_advance_due() == 1 and _versions(project) == [1, 2]


@pytest.mark.django_db
def test_a_chain_whose_worker_died_is_settled_once_the_reaper_fails_its_job(project):
    _record_labels(project, 3)
    retrainings_advance_due()
    version = ModelVersion.objects.get(project=project)
    Job.objects.filter(pk=version.job_id).update(status=Job.Status.RUNNING, attempts=MAX_ATTEMPTS + 1)
    assert retrainings_advance_due() == 0
    assert Retraining.objects.get(project=project).status == RUNNING  # still in flight until reaped
    reap_stale_jobs()
    assert retrainings_advance_due() == 0
    run = Retraining.objects.get(project=project)
    assert run.status == Retraining.Status.FAILED and "died" in run.error
    assert _counter(project) == 0


@pytest.mark.django_db
def test_a_project_without_enough_data_records_one_failed_start_and_does_not_loop(project, owner):
    Item.objects.filter(project=project, split=Item.Split.EVAL).update(gold_label=None)
    with pytest.raises(ValidationFailed, match="gold items in the eval split"):
        retraining_request(project=project, user=owner)
    assert not Retraining.objects.exists() and _versions(project) == []
    _record_labels(project, 4)
    assert retrainings_advance_due() == 0
    run = Retraining.objects.get(project=project)
    assert (run.status, run.trigger, run.version, run.labels_at_start) == (Retraining.Status.FAILED, "auto", None, 4)
    assert run.error.startswith("Could not start: Not enough labelled data")
    assert _counter(project) == 0
    assert [retrainings_advance_due() for _ in range(3)] == [0, 0, 0] and Retraining.objects.count() == 1


@pytest.mark.django_db
def test_a_manual_training_in_flight_makes_a_press_wait_as_the_follow_up(project, owner):
    manual = training_start(project=project, user=owner, overrides=TINY_OVERRIDES)
    outcome = retraining_request(project=project, user=owner)
    assert outcome.action == "coalesced" and outcome.running is None
    assert "the training in progress" in outcome.message
    assert retrainings_advance_due() == 0 and _versions(project) == [1]
    _train(manual)
    assert _versions(project) == [1]  # scoring is still part of the manual chain
    _score(manual)
    run = Retraining.objects.get(project=project)
    assert (run.status, run.version.number, run.trigger) == (RUNNING, 2, "manual")


@pytest.mark.django_db
def test_training_takes_the_labels_it_read_off_the_counter(project, owner):
    version = training_start(project=project, user=owner, overrides=TINY_OVERRIDES)
    _record_labels(project, 7)
    rows = training_rows_consume(version)
    assert len(rows.train_texts) == 48 and _counter(project) == 0
    _record_labels(project, 3)  # labels after the read wait for the next training
    assert _counter(project) == 3
    training_rows_consume(version)  # a rerun after a crash reads (and takes) them too
    version.refresh_from_db()
    assert version.data["new_labels"] == 10 and _counter(project) == 0
    training_rows_consume(version)
    assert _counter(project) == 0  # never below zero


@pytest.mark.django_db
def test_the_database_allows_one_running_and_one_pending_retraining_per_project(project, other_project):
    for status in (RUNNING, PENDING):
        Retraining.objects.create(project=project, trigger="auto", status=status)
        with pytest.raises(IntegrityError), transaction.atomic():
            Retraining.objects.create(project=project, trigger="manual", status=status)
        Retraining.objects.create(project=other_project, trigger="auto", status=status)
    Retraining.objects.create(project=project, trigger="auto", status=Retraining.Status.FAILED)
    Retraining.objects.create(project=project, trigger="auto", status=Retraining.Status.FAILED)


def test_beat_runs_the_due_check_every_30_seconds_on_the_default_queue():
    app.loader.import_default_modules()
    entry = app.conf.beat_schedule["retrain-due-projects"]
    assert entry == {"task": "modeling.tasks.retrain_due_projects", "schedule": 30.0}
    task = app.tasks[entry["task"]]
    assert app.amqp.router.route({}, task.name)["queue"].name == "default"


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_beat_runs_and_presses_start_one_chain(project, owner, admin_member):
    _record_labels(project, 3)
    callers = 8
    barrier = threading.Barrier(callers)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def beat() -> str:
        return "started" if retraining_advance(project_id=project.pk) is not None else "idle"

    def press(user) -> str:
        return retraining_request(project=project, user=user).action

    def call(target) -> None:
        barrier.wait()
        try:
            outcomes.append(target())
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    targets = [beat] * 4 + [lambda: press(owner)] * 2 + [lambda: press(admin_member)] * 2
    threads = [threading.Thread(target=call, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(outcomes) == callers
    assert outcomes.count("started") == 1
    assert _versions(project) == [1]
    assert Retraining.objects.filter(project=project, status=RUNNING).count() == 1
    pending = Retraining.objects.filter(project=project, status=PENDING)
    assert pending.count() <= 1
    assert sum(run.requests for run in pending) == outcomes.count("coalesced")


@pytest.mark.django_db
def test_operators_see_retrainings_in_the_admin_read_only(project, superuser, client_for):
    run = Retraining.objects.create(project=project, trigger="auto", status=Retraining.Status.FAILED, error="boom")
    client = client_for(superuser)
    listing = client.get(reverse("admin:modeling_retraining_changelist"))
    assert listing.status_code == 200 and "Automatic retraining of" in listing.content.decode()
    assert client.get(reverse("admin:modeling_retraining_add")).status_code == 403
    assert client.post(reverse("admin:modeling_retraining_delete", args=[run.pk]), {"post": "yes"}).status_code == 403
    assert Retraining.objects.filter(pk=run.pk).exists()

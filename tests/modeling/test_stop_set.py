"""The fixed stop set, each version's predictions on it, and kappa between successive versions."""

from __future__ import annotations

import hashlib

import pytest

from labeling.models import Item, Label, Project
from modeling.models import ModelVersion, Prediction, StopSet
from modeling.selectors import learning_curve
from modeling.services.stop_set import stop_set_ensure, stop_set_item_ids
from modeling.services.training import training_start
from modeling.tasks import score_pool, train_model_version
from tests.factories import ProjectFactory
from tests.modeling.conftest import TINY_OVERRIDES
from webapp.models import Job

pytestmark = pytest.mark.django_db


def _items(project: Project, count: int, *, split: str = Item.Split.POOL, status: str = Item.Status.UNLABELED):
    rows = []
    for _ in range(count):
        text = f"text {Item.objects.count() + len(rows)} of {project.slug}"
        rows.append(
            Item(
                project=project,
                text=text,
                content_hash=hashlib.sha256(text.encode()).hexdigest(),
                split=split,
                status=status,
            )
        )
    return [item.pk for item in Item.objects.bulk_create(rows)]


def test_the_stop_set_is_chosen_once_by_a_hash_of_the_id_from_the_unlabeled_pool(settings):
    settings.MODELING_STOP_SET_SIZE = 10
    project = ProjectFactory()
    pool = _items(project, 30) + _items(project, 5, status=Item.Status.QUEUED)
    _items(project, 5, status=Item.Status.GOLD)  # labeled already: never chosen
    _items(project, 5, split=Item.Split.EVAL)
    # By hand: the ten pool ids with the smallest id * 2654435761 mod 2^32 (Fibonacci hashing).
    expected = sorted(sorted(pool, key=lambda i: ((i * 2654435761) % 2**32, i))[:10])
    assert stop_set_ensure(project_id=project.pk) == expected
    assert expected != sorted(pool)[:10]  # spread over the pool, not the first items imported
    # Later: items labeled, new items imported, a bigger setting. The set stays as it was.
    Item.objects.filter(pk__in=expected[:4]).update(status=Item.Status.GOLD)
    _items(project, 20)
    settings.MODELING_STOP_SET_SIZE = 1000
    assert stop_set_ensure(project_id=project.pk) == expected == stop_set_item_ids(project_id=project.pk)


def test_an_empty_pool_chooses_nothing_and_a_later_scoring_chooses(settings):
    project = ProjectFactory()
    _items(project, 3, status=Item.Status.GOLD)
    assert stop_set_ensure(project_id=project.pk) == []
    assert not StopSet.objects.filter(pk=project.pk).exists()
    pool = _items(project, 4)
    assert stop_set_ensure(project_id=project.pk) == pool  # fewer items than the set size: all of them


def test_every_scored_version_predicts_every_stop_set_item_even_after_it_is_labeled(
    roberta_project, owner, artifact_root
):
    stop_ids = []
    for number in (1, 2):
        version = training_start(project=roberta_project, user=owner, overrides=TINY_OVERRIDES)
        train_model_version(str(version.job_id))
        score_pool(str(Job.objects.get(kind=Job.Kind.SCORE, params__model_version_id=version.pk).pk))
        version.refresh_from_db()
        stop_ids = stop_set_item_ids(project_id=roberta_project.pk)
        assert len(stop_ids) == 30 and version.number == number
        assert sorted(int(key) for key in version.stop_predictions) == stop_ids
        pooled = dict(Prediction.objects.filter(model_version=version).values_list("item_id", "label_id"))
        label_ids = set(Label.objects.filter(project=roberta_project).values_list("id", flat=True))
        for key, label_id in version.stop_predictions.items():
            assert label_id in label_ids
            if int(key) in pooled:  # still in the pool: the same prediction the queue ranks by
                assert pooled[int(key)] == label_id
        if number == 1:
            # Five stop-set items become gold before version 2: it no longer scores them for the pool.
            positive = Label.objects.get(project=roberta_project, name="positive")
            Item.objects.filter(pk__in=stop_ids[:5]).update(status=Item.Status.GOLD, gold_label=positive)
    assert Prediction.objects.filter(model_version=version).count() == 25
    assert {str(i) for i in stop_ids[:5]} <= set(version.stop_predictions)


# Hand-made stop-set predictions over ten items, labels "a" and "b" (ids filled in per test).
V1 = "aaaaabbbbb"
V2 = "aaaabbbbbb"  # vs V1: observed 0.9; expected 0.5*0.4 + 0.5*0.6 = 0.5; kappa (0.9-0.5)/0.5 = 0.8
V3 = V2  # vs V2: observed 1, expected 0.52: kappa 1
V4 = "aaabbbbbbb"  # vs V3: observed 0.9; expected 0.4*0.3 + 0.6*0.7 = 0.54; kappa 0.36/0.46 = 0.7826087


def _version(project: Project, number: int, predictions: str, ids: list[int], labels: dict[str, int], **fields):
    stop = {str(item_id): labels[name] for item_id, name in zip(ids, predictions, strict=True)}
    return ModelVersion.objects.create(
        project=project, number=number, base_checkpoint="x", status="candidate", stop_predictions=stop, **fields
    )


def test_kappa_between_successive_versions_matches_hand_computed_values():
    project = ProjectFactory(labels=["a", "b"])
    ids = _items(project, 10)
    assert stop_set_ensure(project_id=project.pk) == ids
    labels = dict(Label.objects.filter(project=project).values_list("name", "id"))
    _version(project, 1, V1, ids, labels)
    _version(project, 2, V2, ids, labels)
    # A failed version scores nothing: the pairs skip it.
    ModelVersion.objects.create(project=project, number=3, base_checkpoint="x", status="failed")
    _version(project, 4, V3, ids, labels)
    _version(project, 5, V4, ids, labels)
    curve = learning_curve(project=project)
    assert [(p.from_version, p.to_version, p.items) for p in curve.pairs] == [(1, 2, 10), (2, 4, 10), (4, 5, 10)]
    assert [p.kappa for p in curve.pairs] == pytest.approx([0.8, 1.0, 0.36 / 0.46])
    assert [p.observed for p in curve.pairs] == pytest.approx([0.9, 1.0, 0.9])
    assert curve.decision.stop is False and curve.decision.mean_kappa == pytest.approx((0.8 + 1 + 0.36 / 0.46) / 3)
    assert curve.stop_set_size == 10
    # Three more versions predicting exactly as v5: the last three kappas are 1, so labeling can stop.
    for number in (6, 7, 8):
        _version(project, number, V4, ids, labels)
    curve = learning_curve(project=project)
    assert [p.kappa for p in curve.pairs][-3:] == [1.0, 1.0, 1.0] and curve.decision.stop is True


def test_kappa_uses_the_items_both_versions_predicted_and_the_threshold_setting(settings):
    project = ProjectFactory(labels=["a", "b"])
    ids = _items(project, 10)
    stop_set_ensure(project_id=project.pk)
    labels = dict(Label.objects.filter(project=project).values_list("name", "id"))
    first = _version(project, 1, V1, ids, labels)
    _version(project, 2, V2, ids, labels)
    # An item deleted from the project leaves the stop set; the first version also missed one item.
    Item.objects.filter(pk=ids[9]).delete()
    first.stop_predictions.pop(str(ids[0]))
    first.save(update_fields=["stop_predictions"])
    settings.MODELING_STOP_KAPPA, settings.MODELING_STOP_WINDOW = 0.5, 1
    curve = learning_curve(project=project)
    # Items 2..9 (8): v1 "aaaabbbb", v2 "aaabbbbb": observed 7/8; expected 0.5*0.375 + 0.5*0.625 = 0.5.
    assert curve.pairs[0].items == 8 and curve.pairs[0].kappa == pytest.approx((7 / 8 - 0.5) / 0.5)
    assert curve.decision.stop is True and curve.decision.threshold == 0.5 and curve.decision.window == 1

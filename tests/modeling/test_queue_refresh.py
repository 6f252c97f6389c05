"""Queue refresh: a version's pool predictions become queue priorities through the sampling strategy."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.models import Item, ProjectCounts
from labeling.services.counts import project_recount
from labeling.services.queue import queue_next
from modeling.models import ModelVersion, Prediction
from modeling.services.queue_refresh import queue_refresh
from modeling.tasks import score_pool
from tests.factories import ItemFactory
from tests.modeling.test_scoring import trained  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db


def scored_pool(
    project, margins: list[float], *, embeddings: bool = True, number: int = 1
) -> tuple[ModelVersion, list[Item]]:
    """Unlabeled pool items and one candidate version's predictions with the given top1 - top2 margins."""
    items = [ItemFactory(project=project) for _ in margins]
    ProjectCounts.objects.filter(project=project).update(items=len(items), unlabeled=len(items))
    version = ModelVersion.objects.create(
        project=project, number=number, base_checkpoint="tiny", status=ModelVersion.Status.CANDIDATE
    )
    label = project.labels.first()
    rng = np.random.default_rng(0)
    for item, m in zip(items, margins, strict=True):
        top, second = (1 + m) / 2 - 0.01, (1 - m) / 2 - 0.01
        probs = [top, second, 0.02]
        vector = rng.normal(size=8).astype("<f2").tobytes() if embeddings else None
        Prediction.objects.create(
            model_version=version,
            item=item,
            label=label,
            probs=probs,
            confidence=top,
            margin=top - second,
            entropy=0.5,
            embedding=vector,
        )
    return version, items


def counts_match_recount(project) -> bool:
    def snapshot():
        c = ProjectCounts.objects.get(project=project)
        return (c.items, c.unlabeled, c.queued, c.leased, c.labeled, c.in_review, c.gold)

    kept = snapshot()
    project_recount(project=project)
    return kept == snapshot()


def test_the_most_uncertain_items_come_first(project, reviewer):
    project.al_strategy, project.al_batch_size, project.random_fraction = "margin", 3, 0.0
    project.overlap_fraction = 0.0
    project.save()
    margins = [0.9, 0.05, 0.6, 0.3, 0.8]
    version, items = scored_pool(project, margins)
    assert queue_refresh(version=version) == 3
    queued = list(Item.objects.filter(project=project, status=Item.Status.QUEUED).order_by("-priority"))
    assert [i.pk for i in queued] == [items[1].pk, items[3].pk, items[2].pk]
    assert all(i.ranked_by_version == 1 and not i.is_random_pick for i in queued)
    lease = queue_next(project=project, user=reviewer)
    assert lease is not None and lease.item_id == items[1].pk
    assert counts_match_recount(project)


def test_random_audit_picks_are_marked(project):
    project.al_strategy, project.al_batch_size, project.random_fraction = "margin", 10, 0.2
    project.save()
    version, _ = scored_pool(project, [i / 40 for i in range(40)])
    assert queue_refresh(version=version) == 10
    queued = Item.objects.filter(project=project, status=Item.Status.QUEUED)
    assert queued.count() == 10 and queued.filter(is_random_pick=True).count() == 2
    model_picks = list(queued.filter(is_random_pick=False).order_by("-priority").values_list("pk", flat=True))
    by_margin = sorted(model_picks, key=lambda pk: Prediction.objects.get(item_id=pk).margin)
    assert model_picks == by_margin
    assert counts_match_recount(project)


def test_the_default_diversity_strategy_uses_the_stored_embeddings(project):
    project.al_batch_size, project.random_fraction = 4, 0.25
    project.save()
    assert project.al_strategy == "margin_diversity"
    version, _ = scored_pool(project, [i / 20 for i in range(20)])
    assert queue_refresh(version=version) == 4
    assert Item.objects.filter(project=project, status=Item.Status.QUEUED, is_random_pick=True).count() == 1


def test_without_embeddings_a_diversity_strategy_falls_back_to_margin(project):
    project.al_batch_size, project.random_fraction = 2, 0.0
    project.save()
    version, items = scored_pool(project, [0.7, 0.1, 0.5, 0.2], embeddings=False)
    assert queue_refresh(version=version) == 2
    queued = Item.objects.filter(project=project, status=Item.Status.QUEUED).order_by("-priority")
    assert list(queued.values_list("pk", flat=True)) == [items[1].pk, items[3].pk]


def test_a_newer_version_replaces_the_queue_and_leaves_labeled_items_alone(project):
    project.al_strategy, project.al_batch_size, project.random_fraction = "margin", 2, 0.0
    project.save()
    first, items = scored_pool(project, [0.1, 0.2, 0.9, 0.8])
    queue_refresh(version=first)
    Item.objects.filter(pk=items[1].pk).update(status=Item.Status.GOLD)
    ProjectCounts.objects.filter(project=project).update(queued=1, gold=1)
    second = ModelVersion.objects.create(
        project=project, number=2, base_checkpoint="tiny", status=ModelVersion.Status.CANDIDATE
    )
    label = project.labels.first()
    for item, (top, low) in zip(items, [(0.9, 0.05), (0.5, 0.45), (0.5, 0.48), (0.6, 0.38)], strict=True):
        Prediction.objects.create(
            model_version=second, item=item, label=label, probs=[top, low, 1 - top - low], confidence=top,
            margin=top - low, entropy=0.5,
        )  # fmt: skip
    assert queue_refresh(version=second) == 2
    statuses = {i.pk: (i.status, i.ranked_by_version) for i in Item.objects.filter(project=project)}
    assert statuses[items[0].pk] == (Item.Status.UNLABELED, None)
    assert statuses[items[1].pk][0] == Item.Status.GOLD
    assert statuses[items[2].pk] == statuses[items[3].pk] == (Item.Status.QUEUED, 2)
    assert counts_match_recount(project)


def test_pool_scoring_ranks_the_queue(trained):  # noqa: F811 - the imported fixture
    version, job = trained
    score_pool(str(job.pk))
    pool = Item.objects.filter(project=version.project, split=Item.Split.POOL)
    queued = pool.filter(status=Item.Status.QUEUED, ranked_by_version=version.number, priority__isnull=False)
    assert queued.count() == 30 and pool.filter(status=Item.Status.UNLABELED).count() == 0
    assert queued.filter(is_random_pick=True).count() == 2  # 5% of 30, rounded half up


def multilingual_pool(project, *, english: int, swahili: int) -> tuple[ModelVersion, list[Item], list[Item]]:
    """English items all more uncertain than any Swahili item: margin alone never picks Swahili."""
    english_margins = [0.01 + 0.01 * i for i in range(english)]
    swahili_margins = [0.5 + 0.04 * i for i in range(swahili)]
    version, items = scored_pool(project, english_margins + swahili_margins)
    en, sw = items[:english], items[english:]
    Item.objects.filter(pk__in=[i.pk for i in en]).update(language="en")
    Item.objects.filter(pk__in=[i.pk for i in sw]).update(language="sw")
    return version, en, sw


def queued_ids(project) -> set[int]:
    return set(Item.objects.filter(project=project, status=Item.Status.QUEUED).values_list("pk", flat=True))


@pytest.mark.parametrize(("quota", "expected"), [(0.3, 3), (2, 2)])
def test_a_language_quota_gets_a_starved_language_its_share(project, quota, expected):
    project.al_strategy, project.al_batch_size, project.random_fraction = "margin", 10, 0.0
    project.languages, project.language_quotas = ["en", "sw"], {"sw": quota}
    project.save()
    version, en, sw = multilingual_pool(project, english=24, swahili=6)
    assert queue_refresh(version=version) == 10
    queued = queued_ids(project)
    # Swahili's most uncertain items fill its quota; English's most uncertain fill the rest.
    assert queued & {i.pk for i in sw} == {i.pk for i in sw[:expected]}
    assert queued & {i.pk for i in en} == {i.pk for i in en[: 10 - expected]}
    assert counts_match_recount(project)


def test_without_a_quota_the_same_pool_starves_the_small_language(project):
    project.al_strategy, project.al_batch_size, project.random_fraction = "margin", 10, 0.0
    project.languages = ["en", "sw"]
    project.save()
    version, en, _ = multilingual_pool(project, english=24, swahili=6)
    assert queue_refresh(version=version) == 10
    assert queued_ids(project) == {i.pk for i in en[:10]}


def test_the_default_diversity_strategy_honours_a_quota_too(project):
    project.al_batch_size, project.random_fraction = 8, 0.0
    project.languages, project.language_quotas = ["en", "sw"], {"sw": 0.25, "en": 0}
    project.save()
    assert project.al_strategy == "margin_diversity"
    # 90 English items fill the strategy's 10 x batch candidate window: without the quota, no Swahili.
    version, _, sw = multilingual_pool(project, english=90, swahili=5)
    assert queue_refresh(version=version) == 8
    assert len(queued_ids(project) & {i.pk for i in sw}) == 2


def test_a_quota_written_around_validation_fails_the_refresh_loudly(project):
    project.al_strategy, project.al_batch_size = "margin", 5
    project.languages, project.language_quotas = ["en", "sw"], {"sw": 1.5}
    project.save()
    version, _, _ = multilingual_pool(project, english=6, swahili=3)
    with pytest.raises(ValueError, match="quota share"):
        queue_refresh(version=version)
    assert not queued_ids(project)


def _placed_pool(project, points: list[tuple[float, list[float]]]) -> tuple[ModelVersion, list[Item]]:
    """Pool items with the given (margin, embedding) predictions of one candidate version."""
    version, items = scored_pool(project, [margin for margin, _ in points])
    for item, (_, vector) in zip(items, points, strict=True):
        embedding = np.asarray(vector, dtype="<f2").tobytes()
        Prediction.objects.filter(model_version=version, item=item).update(embedding=embedding)
    return version, items


def test_few_labeled_items_steer_the_default_away_from_what_is_labeled(project):
    project.al_batch_size, project.random_fraction = 1, 0.0
    project.save()
    # Five uncertain items near the origin, three less uncertain ones far away.
    near = [(0.10 + 0.01 * i, [0.1 * i, 0, 0, 0]) for i in range(5)]
    far = [(0.30 + 0.01 * i, [10.0, 0.1 * i, 0, 0]) for i in range(3)]
    version, items = _placed_pool(project, near + far)
    # No labeled items given: the uncertainty-weighted centre sits among the near items.
    queue_refresh(version=version)
    assert queued_ids(project) <= {i.pk for i in items[:5]}
    # One labeled item at the origin (fewer than 40 x 3 labels): the batch covers what is farthest from it.
    queue_refresh(version=version, labeled_embeddings=np.zeros((1, 4), dtype=np.float32))
    assert queued_ids(project) <= {i.pk for i in items[5:]}

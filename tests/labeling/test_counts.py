import pytest
from django.core.management import call_command

from labeling.models import Item, ProjectCounts
from labeling.services.counts import project_recount, status_deltas
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


def test_status_deltas_for_insert_move_and_delete():
    assert status_deltas(None, "gold", 5) == {"items": 5, "gold": 5}
    assert status_deltas("queued", "leased") == {"queued": -1, "leased": 1}
    assert status_deltas("unlabeled", None, 2) == {"items": -2, "unlabeled": -2}
    assert status_deltas("gold", "gold") == {}


def test_recount_repairs_drifted_counters(project):
    ItemFactory.create_batch(3, project=project, status=Item.Status.UNLABELED)
    ItemFactory(project=project, status=Item.Status.GOLD)
    ProjectCounts.objects.filter(project=project).update(items=99, unlabeled=-4)
    counts = project_recount(project=project)
    assert (counts.items, counts.unlabeled, counts.gold, counts.queued) == (4, 3, 1, 0)


def test_add_applies_deltas_atomically(project):
    counts = project.counts
    counts.add(status_deltas(None, "unlabeled", 7))
    counts.refresh_from_db()
    assert (counts.items, counts.unlabeled) == (7, 7)


def test_recount_command_prints_each_project(project, capsys):
    ItemFactory(project=project)
    call_command("recount_projects", project.slug)
    assert "acme-sentiment: 1 items" in capsys.readouterr().out

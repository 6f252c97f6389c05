"""The operators' admin: every model's list and detail pages render; items and jobs are read-only."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from labeling.models import Dataset, Item, Membership, Project, ProjectCounts
from modeling.models import ModelVersion
from tests.factories import DatasetFactory, ItemFactory, JobFactory
from webapp.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(project, owner):
    negative = project.labels.first()
    item = ItemFactory(project=project, text="x" * 300, gold_label=negative, status="gold")
    return {
        Project: project,
        Item: item,
        Membership: project.memberships.first(),
        ProjectCounts: project.counts,
        Dataset: DatasetFactory(project=project),
        Job: JobFactory(project=project),
        ModelVersion: ModelVersion.objects.create(project=project, number=1, base_checkpoint="roberta-base"),
    }


@pytest.mark.parametrize("model", [Project, Item, Membership, ProjectCounts, Dataset, Job, ModelVersion])
def test_list_search_and_detail_pages_render(rows, superuser, client_for, model):
    assert admin.site.is_registered(model)
    client = client_for(superuser)
    meta = model._meta
    changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    assert client.get(changelist).status_code == 200
    assert client.get(changelist, {"q": "acme"}).status_code == 200
    change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[rows[model].pk])
    assert client.get(change).status_code == 200


@pytest.mark.parametrize("model", [Item, Job, Dataset, ProjectCounts])
def test_items_jobs_and_records_are_read_only(rows, superuser, client_for, model):
    client = client_for(superuser)
    meta = model._meta
    assert client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_add")).status_code == 403
    change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[rows[model].pk])
    assert 'name="_save"' not in client.get(change).content.decode()
    delete = reverse(f"admin:{meta.app_label}_{meta.model_name}_delete", args=[rows[model].pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=rows[model].pk).exists()


def test_item_list_shows_a_short_text(rows, superuser, client_for):
    page = client_for(superuser).get(reverse("admin:labeling_item_changelist")).content.decode()
    assert "x" * 79 + "…" in page and "x" * 100 not in page


def test_non_staff_members_cannot_open_the_admin(rows, admin_member, client_for):
    response = client_for(admin_member).get(reverse("admin:labeling_item_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]

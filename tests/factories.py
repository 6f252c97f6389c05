"""factory_boy factories for the models tests create most often."""

from __future__ import annotations

import hashlib

import factory
from django.contrib.auth import get_user_model

from labeling.models import Item, Label, Membership, Project, ProjectCounts, Role


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")
    base_checkpoint = "roberta-base"
    guidelines = "Label the **sentiment** of the text."

    @factory.post_generation
    def labels(obj, create, extracted, **kwargs):
        if not create:
            return
        names = extracted or ["negative", "neutral", "positive"]
        for i, name in enumerate(names):
            Label.objects.create(project=obj, name=name, hotkey=str(i + 1), order=i)
        ProjectCounts.objects.get_or_create(project=obj)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.REVIEWER


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    project = factory.SubFactory(ProjectFactory)
    text = factory.Sequence(lambda n: f"Sample text number {n}")
    content_hash = factory.LazyAttribute(lambda i: hashlib.sha256(i.text.encode()).hexdigest())


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "webapp.Job"

    kind = "import"
    project = factory.SubFactory(ProjectFactory)


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "labeling.Dataset"

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"dataset-{n}.csv")
    format = "csv"

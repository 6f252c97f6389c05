"""Writes on projects, their label sets and memberships."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from labeling.models import COLOR_VALIDATOR, ROLE_RANK, SLUG_VALIDATOR, Label, Membership, Project, ProjectCounts, Role
from webapp.errors import Conflict, ValidationFailed

MIN_LABELS, MAX_LABELS = 2, 50
PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac"]


@dataclass(frozen=True)
class LabelSpec:
    name: str
    description: str = ""
    hotkey: str = ""
    color: str = ""


@dataclass
class ProjectSpec:
    name: str
    slug: str
    base_checkpoint: str
    labels: Sequence[LabelSpec]
    description: str = ""
    guidelines: str = ""
    languages: list[str] = field(default_factory=list)
    task_type: str = Project.TaskType.SINGLE_LABEL
    max_text_chars: int = 20_000
    al_strategy: str = Project.Strategy.MARGIN_DIVERSITY
    al_batch_size: int = 50
    retrain_after_labels: int = 200


def validate_label_set(labels: Sequence[LabelSpec]) -> list[LabelSpec]:
    """Return the label set with default hotkeys and colours filled in; raise on a bad set."""
    errors: dict[str, str] = {}
    names = [spec.name.strip() for spec in labels]
    if not MIN_LABELS <= len(names) <= MAX_LABELS:
        errors["labels"] = f"A project needs {MIN_LABELS} to {MAX_LABELS} labels; got {len(names)}."
    if any(not name for name in names):
        errors["labels.name"] = "Every label needs a name."
    if len({name.casefold() for name in names}) != len(names):
        errors["labels.duplicates"] = "Label names must be unique (case-insensitively)."
    hotkeys = [spec.hotkey for spec in labels if spec.hotkey]
    if len(set(hotkeys)) != len(hotkeys):
        errors["labels.hotkey"] = "Two labels share a hotkey."
    if any(len(key) != 1 or key.isspace() or key in "suU?" for key in hotkeys):
        errors["labels.hotkey"] = "A hotkey is one character, and s, u and ? are reserved for skip, undo and help."
    for spec in labels:
        if spec.color:
            try:
                COLOR_VALIDATOR(spec.color)
            except DjangoValidationError:
                errors["labels.color"] = f"{spec.color!r} is not a colour like #1f77b4."
    if errors:
        raise ValidationFailed("The label set is invalid.", details=errors)
    free_keys = [str(i) for i in range(1, 10) if str(i) not in hotkeys]
    result = []
    for index, (spec, name) in enumerate(zip(labels, names, strict=True)):
        hotkey = spec.hotkey or (free_keys.pop(0) if free_keys else "")
        result.append(LabelSpec(name, spec.description.strip(), hotkey, spec.color or PALETTE[index % len(PALETTE)]))
    return result


def _check_project_fields(spec: ProjectSpec) -> None:
    errors: dict[str, str] = {}
    if not spec.name.strip():
        errors["name"] = "A project needs a name."
    try:
        SLUG_VALIDATOR(spec.slug)
    except DjangoValidationError:
        errors["slug"] = "Use lowercase letters, digits and single hyphens for the slug."
    if not spec.base_checkpoint.strip():
        errors["base_checkpoint"] = "Name a base checkpoint: a local directory or a hub id."
    if spec.task_type not in Project.TaskType.values:
        errors["task_type"] = f"Unknown task type {spec.task_type!r}."
    elif spec.task_type != Project.TaskType.SINGLE_LABEL:
        errors["task_type"] = "Only single-label classification is supported so far."
    if spec.al_strategy not in Project.Strategy.values:
        errors["al_strategy"] = f"Unknown strategy {spec.al_strategy!r}."
    if not 1 <= spec.max_text_chars <= 1_000_000:
        errors["max_text_chars"] = "The text limit must be between 1 and 1,000,000 characters."
    if errors:
        raise ValidationFailed("The project is invalid.", details=errors)


@transaction.atomic
def project_create(*, spec: ProjectSpec, user: AbstractBaseUser) -> Project:
    """Create a project with its label set; the creator becomes its admin."""
    _check_project_fields(spec)
    labels = validate_label_set(spec.labels)
    if Project.objects.filter(slug=spec.slug).exists():
        raise Conflict(f"The slug {spec.slug!r} is taken; choose another.", details={"slug": "taken"})
    project = Project.objects.create(
        name=spec.name.strip(),
        slug=spec.slug,
        description=spec.description,
        guidelines=spec.guidelines,
        languages=spec.languages,
        task_type=spec.task_type,
        base_checkpoint=spec.base_checkpoint.strip(),
        max_text_chars=spec.max_text_chars,
        al_strategy=spec.al_strategy,
        al_batch_size=spec.al_batch_size,
        retrain_after_labels=spec.retrain_after_labels,
        created_by=user,
    )
    Label.objects.bulk_create(
        Label(project=project, name=s.name, description=s.description, hotkey=s.hotkey, color=s.color, order=i)
        for i, s in enumerate(labels)
    )
    ProjectCounts.objects.create(project=project)
    Membership.objects.create(project=project, user=user, role=Role.ADMIN)
    return project


_EDITABLE = (
    "name",
    "description",
    "guidelines",
    "languages",
    "base_checkpoint",
    "max_text_chars",
    "al_strategy",
    "al_batch_size",
    "retrain_after_labels",
)


@transaction.atomic
def project_update(*, project: Project, changes: dict[str, Any], labels: Sequence[LabelSpec] | None = None) -> Project:
    """Change a project's settings and, optionally, its label set.

    Labels are matched by name: existing ones are updated in place, new ones added. A label that
    gold labels or annotations already use cannot be removed (that would lose them): rename it instead.
    """
    unknown = set(changes) - set(_EDITABLE)
    if unknown:
        raise ValidationFailed("Some fields cannot be changed.", details={f: "not editable" for f in sorted(unknown)})
    for key, value in changes.items():
        setattr(project, key, value)
    _check_project_fields(
        ProjectSpec(
            **{
                f: getattr(project, f)
                for f in ("name", "slug", "base_checkpoint", "task_type", "max_text_chars", "al_strategy")
            },
            labels=[],
        )
    )
    project.save()
    if labels is not None:
        _replace_labels(project, validate_label_set(labels))
    return project


def _replace_labels(project: Project, labels: list[LabelSpec]) -> None:
    existing = {label.name: label for label in project.labels.all()}
    wanted = {spec.name for spec in labels}
    removed = [label for name, label in existing.items() if name not in wanted]
    in_use = [label.name for label in removed if project.items.filter(gold_label=label).exists()]
    if in_use:
        raise Conflict("Labels in use cannot be removed; rename them instead.", details={"in_use": in_use})
    Label.objects.filter(pk__in=[label.pk for label in removed]).delete()
    # Clear hotkeys first so a swap of hotkeys between two labels does not trip the unique constraint.
    project.labels.update(hotkey="")
    for order, spec in enumerate(labels):
        Label.objects.update_or_create(
            project=project,
            name=spec.name,
            defaults={"description": spec.description, "hotkey": spec.hotkey, "color": spec.color, "order": order},
        )


@transaction.atomic
def membership_set(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    """Add ``user`` to the project with ``role``, or change their role."""
    if role not in ROLE_RANK:
        raise ValidationFailed(f"Unknown role {role!r}.", details={"role": f"one of {', '.join(ROLE_RANK)}"})
    current = Membership.objects.select_for_update().filter(project=project, user=user).first()
    if current and current.role == Role.ADMIN and role != Role.ADMIN:
        _ensure_another_admin(project, user)
    try:
        membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    except IntegrityError:
        raise Conflict("The membership changed meanwhile; reload and try again.") from None
    return membership


@transaction.atomic
def membership_remove(*, project: Project, user: AbstractBaseUser) -> None:
    """Remove ``user`` from the project; the last admin cannot be removed."""
    current = Membership.objects.select_for_update().filter(project=project, user=user).first()
    if current is None:
        raise ValidationFailed("That user is not a member of this project.")
    if current.role == Role.ADMIN:
        _ensure_another_admin(project, user)
    current.delete()


def _ensure_another_admin(project: Project, user: AbstractBaseUser) -> None:
    if not Membership.objects.filter(project=project, role=Role.ADMIN).exclude(user=user).exists():
        raise Conflict("A project needs at least one admin; make someone else admin first.")

"""Writes on projects, their label sets and memberships."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, RestrictedError

from labeling.models import COLOR_VALIDATOR, ROLE_RANK, SLUG_VALIDATOR, Label, Membership, Project, ProjectCounts, Role
from webapp.errors import Conflict, NotFound, ValidationFailed

MIN_LABELS, MAX_LABELS = 2, 50
MAX_GUIDELINES_CHARS = 100_000
PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac"]
RESERVED_HOTKEYS = "suU?"  # skip, undo (both cases) and help on the labeling page
# An ISO 639-1/639-3 code, optionally with a region or script subtag: "en", "pt-BR", "zh-Hant".
# Slugs that the page URLs use as path segments under /projects/ (a project "new" would be shadowed).
RESERVED_SLUGS = frozenset({"new"})
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
MAX_QUOTA_COUNT = 10_000  # the largest active-learning batch


@dataclass(frozen=True)
class LabelSpec:
    """One label of a label set; ``id`` names an existing label to keep (and maybe rename)."""

    name: str
    description: str = ""
    hotkey: str = ""
    color: str = ""
    id: int | None = None


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
    language_quotas: dict[str, float | int] = field(default_factory=dict)


def validate_label_set(labels: Sequence[LabelSpec]) -> list[LabelSpec]:
    """Return the label set with names trimmed and default hotkeys and colours filled in.

    Raises ``ValidationFailed`` with one message per problem (keyed ``labels``, ``labels.name``, …).
    """
    errors: dict[str, str] = {}
    names = [spec.name.strip() for spec in labels]
    if not MIN_LABELS <= len(names) <= MAX_LABELS:
        errors["labels"] = f"A project needs {MIN_LABELS} to {MAX_LABELS} labels; got {len(names)}."
    if any(not name for name in names):
        errors["labels.name"] = "Every label needs a name."
    elif any(len(name) > 100 for name in names):
        errors["labels.name"] = "A label name is at most 100 characters."
    folded = [name.casefold() for name in names]
    if len(set(folded)) != len(folded):
        duplicates = sorted({name for name in names if folded.count(name.casefold()) > 1})
        errors["labels.duplicates"] = f"Label names must be unique (case-insensitively): {', '.join(duplicates)}."
    if any(len(spec.description.strip()) > 500 for spec in labels):
        errors["labels.description"] = "A label description is at most 500 characters."
    hotkeys = [spec.hotkey for spec in labels if spec.hotkey]
    if any(len(key) != 1 or key.isspace() or key in RESERVED_HOTKEYS for key in hotkeys):
        errors["labels.hotkey"] = "A hotkey is one character, and s, u and ? are reserved for skip, undo and help."
    elif len(set(hotkeys)) != len(hotkeys):
        errors["labels.hotkey"] = "Two labels share a hotkey."
    bad_colors = [spec.color for spec in labels if spec.color and not _is_color(spec.color)]
    if bad_colors:
        errors["labels.color"] = f"{bad_colors[0]!r} is not a colour like #1f77b4."
    ids = [spec.id for spec in labels if spec.id is not None]
    if len(set(ids)) != len(ids):
        errors["labels.id"] = "The same existing label appears twice."
    if errors:
        raise ValidationFailed("The label set is invalid.", details=errors)
    free_keys = [str(i) for i in range(1, 10) if str(i) not in hotkeys]
    result = []
    for index, (spec, name) in enumerate(zip(labels, names, strict=True)):
        hotkey = spec.hotkey or (free_keys.pop(0) if free_keys else "")
        color = spec.color.lower() if spec.color else PALETTE[index % len(PALETTE)]
        result.append(LabelSpec(name, spec.description.strip(), hotkey, color, spec.id))
    return result


def _is_color(value: str) -> bool:
    try:
        COLOR_VALIDATOR(value)
    except DjangoValidationError:
        return False
    return True


def _project_field_errors(values: Mapping[str, Any], current: Project | None = None) -> dict[str, str]:
    """Check the project fields present in ``values``; return field → message for each problem.

    Language quotas are checked against the languages in ``values``, else ``current``'s.
    """
    errors: dict[str, str] = {}
    checks = {
        "name": _check_name,
        "slug": _check_slug,
        "base_checkpoint": _check_checkpoint,
        "task_type": _check_task_type,
        "al_strategy": _check_strategy,
        "languages": _check_languages,
        "guidelines": _check_guidelines,
        "description": _check_description,
        "max_text_chars": _bounded(1, 1_000_000, "The text limit must be between 1 and 1,000,000 characters."),
        "al_batch_size": _bounded(1, 10_000, "The active-learning batch size must be between 1 and 10,000."),
        "retrain_after_labels": _bounded(1, 1_000_000, "Retrain after between 1 and 1,000,000 new labels."),
    }
    for name, value in values.items():
        check = checks.get(name)
        message = check(value) if check else None
        if message:
            errors[name] = message
    if {"languages", "language_quotas"} & set(values) and "languages" not in errors:
        languages = values.get("languages", current.languages if current else [])
        quotas = values.get("language_quotas", current.language_quotas if current else {})
        message = _check_language_quotas(quotas, languages)
        if message:
            errors["language_quotas"] = message
    return errors


def _check_name(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "A project needs a name."
    return "A project name is at most 120 characters." if len(value.strip()) > 120 else None


def _check_slug(value: Any) -> str | None:
    try:
        SLUG_VALIDATOR(value)
    except (DjangoValidationError, TypeError):
        return "Use lowercase letters, digits and single hyphens for the slug."
    if value in RESERVED_SLUGS:
        return f"The slug {value!r} is reserved; choose another."
    return "A slug is at most 60 characters." if len(value) > 60 else None


def _check_checkpoint(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "Name a base checkpoint: a local directory or a hub id."
    return "A checkpoint path is at most 500 characters." if len(value.strip()) > 500 else None


def _check_task_type(value: Any) -> str | None:
    if value not in Project.TaskType.values:
        return f"Unknown task type {value!r}; use {', '.join(Project.TaskType.values)}."
    if value != Project.TaskType.SINGLE_LABEL:
        return "Only single-label classification is supported so far."
    return None


def _check_strategy(value: Any) -> str | None:
    if value not in Project.Strategy.values:
        return f"Unknown strategy {value!r}; use one of {', '.join(Project.Strategy.values)}."
    return None


def _check_languages(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        return "Languages are a list of codes like ['en', 'de']."
    bad = [code for code in value if len(code) > 16 or not LANGUAGE_CODE.match(code)]
    if bad:
        return f"Not a language code: {', '.join(repr(code) for code in bad[:5])}; use codes like en, de, pt-BR."
    return "A language is listed twice." if len(set(value)) != len(value) else None


def _check_language_quotas(quotas: Any, languages: list[str]) -> str | None:
    """Check quotas of the shape {code: share in [0, 1] (a float) or count >= 0 (an int)}, codes from ``languages``."""
    if not isinstance(quotas, dict):
        return 'Language quotas are an object of language code → share or count, like {"sw": 0.2, "de": 5}.'
    unknown = [code for code in quotas if code not in languages]
    if unknown:
        listed = ", ".join(languages) if languages else "none yet"
        return (
            f"Quotas name languages the project does not list: {', '.join(map(repr, unknown[:5]))}. "
            f"The project's languages: {listed}; add the language first, or remove its quota."
        )
    for code, quota in quotas.items():
        is_count = isinstance(quota, int) and not isinstance(quota, bool)
        if is_count and not 0 <= quota <= MAX_QUOTA_COUNT:
            return f"The quota count for {code!r} must be between 0 and {MAX_QUOTA_COUNT:,} items; got {quota}."
        if not is_count and not (isinstance(quota, float) and math.isfinite(quota) and 0.0 <= quota <= 1.0):
            return (
                f"The quota for {code!r} must be a share between 0 and 1 (like 0.2) or a count (like 5); got {quota!r}."
            )
    shares = sum(quota for quota in quotas.values() if isinstance(quota, float))
    if shares > 1.0 + 1e-9:
        return f"Quota shares add up to {shares:g}; together they can take at most the whole batch (1)."
    return None


def _check_guidelines(value: Any) -> str | None:
    if not isinstance(value, str):
        return "Guidelines are markdown text."
    return f"Guidelines are at most {MAX_GUIDELINES_CHARS:,} characters." if len(value) > MAX_GUIDELINES_CHARS else None


def _check_description(value: Any) -> str | None:
    return None if isinstance(value, str) else "A description is text."


def _bounded(low: int, high: int, message: str):
    def check(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return None if ok else message

    return check


@transaction.atomic
def project_create(*, spec: ProjectSpec, user: AbstractBaseUser) -> Project:
    """Create a project with its label set and counters; the creator becomes its admin.

    Raises ``ValidationFailed`` (field → message in ``details``) or ``Conflict`` for a taken slug.
    """
    values = {name: getattr(spec, name) for name in (*_EDITABLE, "slug", "task_type")}
    errors = _project_field_errors(values)
    try:
        labels = validate_label_set(spec.labels)
    except ValidationFailed as exc:
        errors.update(exc.details)
        labels = []
    if errors:
        raise ValidationFailed("The project is invalid; see details for each field.", details=errors)
    if any(label.id is not None for label in labels):
        raise ValidationFailed("A new project's labels cannot name existing labels.", details={"labels.id": "unset"})
    if Project.objects.filter(slug=spec.slug).exists():
        raise _slug_taken(spec.slug)
    values["name"], values["base_checkpoint"] = spec.name.strip(), spec.base_checkpoint.strip()
    try:
        # A savepoint, so that losing a race for the slug leaves the outer transaction usable.
        with transaction.atomic():
            project = Project.objects.create(**values, created_by=user)
    except IntegrityError:
        raise _slug_taken(spec.slug) from None
    Label.objects.bulk_create(
        Label(project=project, name=s.name, description=s.description, hotkey=s.hotkey, color=s.color, order=i)
        for i, s in enumerate(labels)
    )
    ProjectCounts.objects.create(project=project)
    Membership.objects.create(project=project, user=user, role=Role.ADMIN)
    return project


def _slug_taken(slug: str) -> Conflict:
    return Conflict(f"The slug {slug!r} is taken; choose another.", details={"slug": "taken"})


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
    "language_quotas",
)
EDITABLE_FIELDS = _EDITABLE


@transaction.atomic
def project_update(
    *, project: Project, changes: Mapping[str, Any], labels: Sequence[LabelSpec] | None = None
) -> Project:
    """Change a project's settings and, optionally, replace its label set.

    Labels with an ``id`` update that label (a rename keeps its gold labels); labels without one
    are matched by name, else added. A label left out is deleted, unless items or annotations use
    it: that raises ``Conflict`` and changes nothing. Invalid changes leave ``project`` untouched.
    """
    unknown = set(changes) - set(_EDITABLE)
    if unknown:
        raise ValidationFailed("Some fields cannot be changed.", details={f: "not editable" for f in sorted(unknown)})
    errors = _project_field_errors(changes, current=project)
    label_set: list[LabelSpec] | None = None
    if labels is not None:
        try:
            label_set = validate_label_set(labels)
        except ValidationFailed as exc:
            errors.update(exc.details)
    if errors:
        raise ValidationFailed("The project is invalid; see details for each field.", details=errors)
    for key, value in changes.items():
        setattr(project, key, value.strip() if key in {"name", "base_checkpoint"} else value)
    if changes:
        project.save(update_fields=[*changes, "updated_at"])
    if label_set is not None:
        _replace_labels(project, label_set)
    return project


def _replace_labels(project: Project, labels: list[LabelSpec]) -> None:
    existing = {label.pk: label for label in Label.objects.select_for_update().filter(project=project)}
    by_name = {label.name: label for label in existing.values()}
    unknown_ids = [spec.id for spec in labels if spec.id is not None and spec.id not in existing]
    if unknown_ids:
        raise ValidationFailed(
            "Some labels do not belong to this project; reload the page.", details={"labels.id": unknown_ids}
        )
    targets = [existing[spec.id] if spec.id is not None else by_name.get(spec.name) for spec in labels]
    kept = {label.pk for label in targets if label is not None}
    if len(kept) != len([t for t in targets if t is not None]):
        raise ValidationFailed("Two rows update the same label.", details={"labels.id": "duplicate"})
    removed = [label for pk, label in existing.items() if pk not in kept]
    in_use = [label.name for label in removed if project.items.filter(gold_label=label).exists()]
    if in_use:
        raise Conflict("Labels in use cannot be removed; rename them instead.", details={"in_use": in_use})
    try:
        Label.objects.filter(pk__in=[label.pk for label in removed]).delete()
    except (ProtectedError, RestrictedError):  # annotations or predictions (later apps) still use one
        raise Conflict("Labels in use cannot be removed; rename them instead.") from None
    # Park hotkeys and names first, so swapping them between two labels never trips a unique
    # constraint. A parked name starts with a space, which validated (stripped) names never do.
    Label.objects.filter(pk__in=kept).update(hotkey="")
    for label in targets:
        if label is not None:
            Label.objects.filter(pk=label.pk).update(name=f" renaming {label.pk}")
    for order, (spec, label) in enumerate(zip(labels, targets, strict=True)):
        values = {"name": spec.name, "description": spec.description, "hotkey": spec.hotkey, "color": spec.color}
        if label is None:
            Label.objects.create(project=project, order=order, **values)
        else:
            Label.objects.filter(pk=label.pk).update(order=order, **values)


def _lock_project(project: Project) -> None:
    # Serialise membership changes per project: two admins demoting each other at once must not
    # both see "another admin exists" and leave the project without one.
    Project.objects.select_for_update().filter(pk=project.pk).values_list("pk", flat=True).first()


@transaction.atomic
def membership_set(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    """Add ``user`` to the project with ``role``, or change their role; the last admin stays admin."""
    if role not in ROLE_RANK:
        raise ValidationFailed(f"Unknown role {role!r}.", details={"role": f"one of {', '.join(ROLE_RANK)}"})
    if not user.is_active:
        raise ValidationFailed(f"{user.get_username()} is deactivated.", details={"username": "inactive"})
    _lock_project(project)
    current = Membership.objects.filter(project=project, user=user).first()
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
    _lock_project(project)
    current = Membership.objects.filter(project=project, user=user).first()
    if current is None:
        raise NotFound(f"{user.get_username()} is not a member of this project.")
    if current.role == Role.ADMIN:
        _ensure_another_admin(project, user)
    current.delete()


def _ensure_another_admin(project: Project, user: AbstractBaseUser) -> None:
    if not Membership.objects.filter(project=project, role=Role.ADMIN).exclude(user=user).exists():
        raise Conflict("A project needs at least one admin; make someone else admin first.")

"""Who may act and on what: the project lock, the manager check, the version and alias locks, and
the checks on a comment's text and an alias name.

Lock order, the same in every action: the project row first (one release action per project at a
time: two promotions never interleave), then the alias rows, then the versions. Owners and admins act;
reviewers get 403 and outsiders 404, here as in the views, so a service called from elsewhere is
just as safe.
"""

from __future__ import annotations

from typing import Any

from labeling.models import ROLE_RANK, Project, Role
from labeling.selectors import role_for_user
from modeling.models import Alias, ModelVersion
from webapp.errors import Forbidden, NotFound, ValidationFailed

SETTABLE_ALIASES = (Alias.Name.CANARY.value, Alias.Name.SHADOW.value)
MAX_TEXT = 5_000


def lock_project(project_id: int) -> Project:
    return Project.objects.select_for_update().get(pk=project_id)


def require_manager(project: Project, user: Any, action: str) -> str:
    """Return the user's role; outsiders get 404 (as for a missing project), reviewers 403."""
    role = role_for_user(user=user, project=project)
    if role is None:
        raise NotFound("Project not found.")
    if ROLE_RANK[role] < ROLE_RANK[Role.OWNER]:
        raise Forbidden(f"{action} needs the model owner or admin role in this project; you are a reviewer.")
    return role


def _lock_version(version: ModelVersion) -> ModelVersion:
    return ModelVersion.objects.select_for_update().select_related("project").get(pk=version.pk)


def _text(value: Any, name: str) -> str:
    """Return a stripped comment or reason, refusing non-text and text over ``MAX_TEXT`` characters."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be text.", details={name: ["Must be text."]})
    if len(value) > MAX_TEXT:
        raise ValidationFailed(
            f"{name} is at most {MAX_TEXT} characters.", details={name: [f"At most {MAX_TEXT} characters."]}
        )
    return value.strip()


def _locked_alias(project: Project, name: str) -> Alias | None:
    return Alias.objects.select_for_update().filter(project=project, name=name).select_related("version").first()


def check_alias_name(name: str) -> None:
    if name == Alias.Name.PRODUCTION:
        raise ValidationFailed(
            "The production alias moves only by promoting or rolling back.", details={"name": [name]}, code="bad_alias"
        )
    if name not in SETTABLE_ALIASES:
        raise ValidationFailed(
            f"Unknown alias {name!r}; the settable aliases are canary and shadow.",
            details={"name": [name]},
            code="bad_alias",
        )

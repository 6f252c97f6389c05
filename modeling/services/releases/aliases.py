"""The ``canary`` and ``shadow`` aliases: pointing one at a candidate or approved version, and
clearing it. ``production`` moves only by promotion or rollback (``promotion``).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from labeling.models import Project
from modeling.models import Alias, ModelVersion
from modeling.services.releases.events import _move_alias
from modeling.services.releases.guards import (
    _lock_version,
    _locked_alias,
    _text,
    check_alias_name,
    lock_project,
    require_manager,
)
from webapp.errors import Conflict, NotFound

Status = ModelVersion.Status


ALIASABLE = (Status.CANDIDATE, Status.APPROVED)


@transaction.atomic
def alias_set(*, project: Project, user: Any, name: str, version: ModelVersion, comment: str = "") -> Alias:
    """Point the ``canary`` or ``shadow`` alias at a candidate or approved version (no event when unchanged)."""
    check_alias_name(name)
    project = lock_project(project.pk)
    require_manager(project, user, f"Setting the {name} alias")
    comment = _text(comment, "comment")
    alias = _locked_alias(project, name)
    version = _lock_version(version)
    if version.project_id != project.pk:
        raise NotFound("Model version not found.")
    if version.status not in ALIASABLE:
        raise Conflict(
            f"v{version.number} is {version.get_status_display().lower()}; "
            f"only a candidate or approved version can be the {name}.",
            code="not_aliasable",
        )
    if alias is not None and alias.version_id == version.pk:
        return alias
    _move_alias(project, name, alias, version, user, comment=comment)
    return Alias.objects.get(project=project, name=name)


@transaction.atomic
def alias_clear(*, project: Project, user: Any, name: str, comment: str = "") -> bool:
    """Remove the ``canary`` or ``shadow`` alias; return whether there was one (removing none is no change)."""
    check_alias_name(name)
    project = lock_project(project.pk)
    require_manager(project, user, f"Clearing the {name} alias")
    comment = _text(comment, "comment")
    alias = _locked_alias(project, name)
    if alias is None:
        return False
    _move_alias(project, name, alias, None, user, comment=comment)
    return True

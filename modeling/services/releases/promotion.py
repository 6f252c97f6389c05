"""Moving the ``production`` alias: promoting an approved version (the one it replaces is retired)
and rolling back to the version that was in production before the current one.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from labeling.models import Project
from modeling.models import Alias, ModelVersion
from modeling.services.releases.events import _drop_side_aliases, _move_alias, _set_status
from modeling.services.releases.guards import _lock_version, _locked_alias, _text, lock_project, require_manager
from modeling.services.releases.history import PROMOTE, ROLLBACK, _production_moves, production_stack
from modeling.services.releases.policy import policy_for
from webapp.errors import Conflict

Status = ModelVersion.Status


def _promote_to(
    project: Project, version: ModelVersion, user: Any, comment: str, action: str, alias: Alias | None
) -> None:
    """Retire the version in production, make ``version`` production and move the alias to it."""
    old = ModelVersion.objects.select_for_update().get(pk=alias.version_id) if alias else None
    if old is not None:
        _set_status(old, Status.RETIRED, user, comment, {"action": action, "replaced_by": version.number})
    _drop_side_aliases(project, version, user, f"v{version.number} went to production")
    _set_status(version, Status.PRODUCTION, user, comment, {"action": action})
    _move_alias(project, Alias.Name.PRODUCTION, alias, version, user, comment=comment, details={"action": action})


@transaction.atomic
def release_promote(*, version: ModelVersion, user: Any, comment: str = "") -> ModelVersion:
    """Move the ``production`` alias to an approved version; the previous production version is retired."""
    project = lock_project(version.project_id)
    require_manager(project, user, "Promoting a version")
    comment = _text(comment, "comment")
    alias = _locked_alias(project, Alias.Name.PRODUCTION)
    version = _lock_version(version)
    if version.status == Status.PRODUCTION:
        raise Conflict(f"v{version.number} is already in production.", code="already_in_production")
    if version.status != Status.APPROVED:
        more = ""
        if version.status == Status.CANDIDATE:
            policy = policy_for(project=project)
            missing = policy.required_approvals - version.approvals.count()
            more = f" (it needs {missing} more approval{'s' if missing != 1 else ''})"
        raise Conflict(
            f"v{version.number} is {version.get_status_display().lower()}{more}; "
            "only an approved version can be promoted.",
            code="not_approved",
        )
    _promote_to(project, version, user, comment, PROMOTE, alias)
    return version


@transaction.atomic
def release_rollback(*, project: Project, user: Any, comment: str = "") -> ModelVersion:
    """Move ``production`` back to the version that was in production before the current one; return it."""
    project = lock_project(project.pk)
    require_manager(project, user, "Rolling back")
    comment = _text(comment, "comment")
    alias = _locked_alias(project, Alias.Name.PRODUCTION)
    stack = production_stack(_production_moves(project))
    if alias is None or len(stack) < 2:
        raise Conflict("There is no earlier production version to roll back to.", code="nothing_to_roll_back")
    target = ModelVersion.objects.select_for_update().filter(project=project, number=stack[-2]).first()
    if target is None or not target.artifact_path:
        raise Conflict(f"v{stack[-2]} no longer has an artifact; it cannot serve again.", code="nothing_to_roll_back")
    _promote_to(project, target, user, comment, ROLLBACK, alias)
    return target

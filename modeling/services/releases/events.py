"""Recording the release trail: every status change and every alias move writes one append-only
``ReleaseEvent`` in the same transaction as the change, so the audit trail and the state can never
disagree.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from labeling.models import Project
from modeling.models import Alias, ModelVersion, ReleaseEvent
from modeling.services.releases.guards import SETTABLE_ALIASES, _locked_alias

Kind = ReleaseEvent.Kind


def _event(
    project: Project,
    version: ModelVersion | None,
    kind: str,
    actor: Any,
    *,
    subject: str = "",
    from_value: str = "",
    to_value: str = "",
    comment: str = "",
    details: dict[str, Any] | None = None,
) -> ReleaseEvent:
    return ReleaseEvent.objects.create(
        project=project,
        version=version,
        kind=kind,
        subject=subject,
        from_value=from_value,
        to_value=to_value,
        actor=actor,
        comment=comment,
        details=details or {},
    )


def _set_status(
    version: ModelVersion, status: str, actor: Any, comment: str = "", details: dict[str, Any] | None = None
) -> None:
    """Change the version's status and record the change."""
    before = version.status
    version.status = status
    version.save(update_fields=["status", "updated_at"])
    _event(
        version.project,
        version,
        Kind.STATUS,
        actor,
        from_value=before,
        to_value=status,
        comment=comment,
        details=details,
    )


def _move_alias(
    project: Project, name: str, alias: Alias | None, target: ModelVersion | None, actor: Any, **event: Any
) -> None:
    """Point the alias at ``target`` (None removes it) and record the move."""
    before = str(alias.version.number) if alias else ""
    if target is None:
        if alias is not None:
            alias.delete()
    elif alias is None:
        Alias.objects.create(project=project, name=name, version=target)
    else:
        alias.version, alias.updated_at = target, timezone.now()
        alias.save(update_fields=["version", "updated_at"])
    after = str(target.number) if target else ""
    _event(project, target or (alias.version if alias else None), Kind.ALIAS, actor, subject=name,
           from_value=before, to_value=after, **event)  # fmt: skip


def _drop_side_aliases(project: Project, version: ModelVersion, actor: Any, why: str) -> None:
    """Remove the canary/shadow aliases that point at ``version`` (it left candidacy), recording each."""
    for name in SETTABLE_ALIASES:
        alias = _locked_alias(project, name)
        if alias is not None and alias.version_id == version.pk:
            _move_alias(project, name, alias, None, actor, comment=why)

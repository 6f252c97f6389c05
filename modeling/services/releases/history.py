"""What was in production when: the ``production`` alias moves read back as a timeline, the stack a
rollback walks back through, and the project's release events newest first, a page at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from labeling.models import Project
from modeling.models import Alias, ModelVersion, ReleaseEvent
from modeling.services.releases.state import aliases_of

Kind = ReleaseEvent.Kind


PROMOTE, ROLLBACK = "promote", "rollback"


@dataclass(frozen=True)
class ProductionPeriod:
    """One stretch of time a version was in production; ``ended_at`` None is now."""

    version: int
    started_at: datetime
    ended_at: datetime | None
    action: str
    actor: Any
    comment: str


@dataclass(frozen=True)
class ReleaseHistory:
    timeline: list[ProductionPeriod]
    events: list[ReleaseEvent]
    aliases: dict[str, ModelVersion]
    rollback_to: int | None
    has_more: bool = False
    next_before: int | None = None


def _production_moves(project: Project) -> list[ReleaseEvent]:
    return list(
        ReleaseEvent.objects.filter(project=project, kind=Kind.ALIAS, subject=Alias.Name.PRODUCTION)
        .select_related("actor")
        .order_by("created_at", "id")
    )


def production_stack(moves: list[ReleaseEvent]) -> list[int]:
    """Return the production versions a rollback can walk back through, the current one last.

    A promotion pushes its version; a rollback pops the current one. Two rollbacks in a row go two
    steps back (v3 → v2 → v1), never back and forth between the last two versions.
    """
    stack: list[int] = []
    for move in moves:
        if move.details.get("action") == ROLLBACK:
            if stack:
                stack.pop()
        elif move.to_value:
            stack.append(int(move.to_value))
    return stack


def release_history(*, project: Project, limit: int = 200, before: int | None = None) -> ReleaseHistory:
    """Return what was in production when, the newest ``limit`` events (before event id ``before``), the aliases."""
    moves = _production_moves(project)
    timeline = [
        ProductionPeriod(
            version=int(move.to_value),
            started_at=move.created_at,
            ended_at=moves[i + 1].created_at if i + 1 < len(moves) else None,
            action=str(move.details.get("action", PROMOTE)),
            actor=move.actor,
            comment=move.comment,
        )
        for i, move in enumerate(moves)
        if move.to_value
    ]
    events = ReleaseEvent.objects.filter(project=project).select_related("actor", "version")
    if before is not None:
        events = events.filter(id__lt=before)
    page = list(events.order_by("-created_at", "-id")[: limit + 1])
    stack = production_stack(moves)
    return ReleaseHistory(
        timeline=list(reversed(timeline)),
        events=page[:limit],
        aliases=aliases_of(project=project),
        rollback_to=stack[-2] if len(stack) >= 2 else None,
        has_more=len(page) > limit,
        next_before=page[limit - 1].pk if len(page) > limit else None,
    )

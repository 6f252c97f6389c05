"""The release flow: approval under the project's gates, rejection, promotion and rollback of the
``production`` alias, the ``canary`` and ``shadow`` aliases, and the release policy.

Statuses move ``candidate`` → ``approved`` | ``rejected``; ``approved`` → ``production`` (promote) |
``rejected``; ``production`` → ``retired`` (a later promotion or a rollback). Every status change and
every alias move writes one append-only ``ReleaseEvent`` in the same transaction as the change, so the
audit trail and the state can never disagree.

Lock order, the same in every action: the project row first (one release action per project at a
time: two promotions never interleave), then the alias rows, then the versions. Owners and admins act;
reviewers get 403 and outsiders 404, here as in the views, so a service called from elsewhere is
just as safe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from labeling.models import ROLE_RANK, Project, Role
from labeling.selectors import role_for_user
from labeling.services.review_batches import ReviewBatch, review_batch_send
from modeling.gates import EvalSummary, GateResult, GateSettings, evaluate_gates, failures
from modeling.models import Alias, Approval, Comparison, ModelVersion, ReleaseEvent, ReleasePolicy
from webapp.errors import Conflict, Forbidden, NotFound, ValidationFailed

Status = ModelVersion.Status
Kind = ReleaseEvent.Kind
SETTABLE_ALIASES = (Alias.Name.CANARY.value, Alias.Name.SHADOW.value)
ALIASABLE = (Status.CANDIDATE, Status.APPROVED)
MAX_TEXT = 5_000
PROMOTE, ROLLBACK = "promote", "rollback"

GATE_FIELDS = (
    "min_macro_f1",
    "max_regression_points",
    "max_class_regression_points",
    "max_language_regression_points",
    "max_ece",
    "min_slice_items",
)
APPROVAL_FIELDS = ("required_approvals", "two_person_rule")
SERVING_FIELDS = (
    "canary_percent",
    "shadow_enabled",
    "max_texts_per_request",
    "max_text_chars",
    "rate_limit_per_minute",
    "quantize_int8",
    "log_texts",
)
POLICY_FIELDS = GATE_FIELDS + APPROVAL_FIELDS + SERVING_FIELDS


class GatesFailed(Conflict):
    """Approval refused: at least one blocking gate fails (``details.failed`` lists them)."""

    code = "gates_failed"


# --- reads ----------------------------------------------------------------------------------------


def policy_for(*, project: Project) -> ReleasePolicy:
    """Return the project's release policy, creating the default one on first use."""
    policy, _ = ReleasePolicy.objects.get_or_create(project=project)
    return policy


def gate_settings(policy: ReleasePolicy) -> GateSettings:
    """Return the policy's gates as the plain settings ``modeling.gates`` reads."""
    return GateSettings(**{name: getattr(policy, name) for name in GATE_FIELDS})


def eval_summary(data: Mapping[str, Any]) -> EvalSummary:
    """Return an ``EvalSummary`` from its stored JSON (``Comparison.results["summaries"][...]``)."""
    return EvalSummary(
        macro_f1=float(data["macro_f1"]),
        ece=float(data["ece"]),
        per_class_f1=dict(data.get("per_class_f1") or {}),
        class_support=dict(data.get("class_support") or {}),
        per_language_f1=dict(data.get("per_language_f1") or {}),
        language_support=dict(data.get("language_support") or {}),
    )


def comparison_gates(*, comparison: Comparison, policy: ReleasePolicy) -> list[GateResult]:
    """Return the gates' verdicts on a finished comparison under the policy as it is now."""
    summaries = comparison.results["summaries"]
    production = summaries.get("production")
    return evaluate_gates(
        gate_settings(policy), eval_summary(summaries["candidate"]), eval_summary(production) if production else None
    )


def gate_dict(result: GateResult) -> dict[str, Any]:
    """Return a gate verdict as JSON-ready data."""
    return dataclasses.asdict(result)


def aliases_of(*, project: Project) -> dict[str, ModelVersion]:
    """Return {alias name: version} for the project's aliases that exist now."""
    rows = Alias.objects.filter(project=project).select_related("version")
    return {alias.name: alias.version for alias in rows}


def production_version(*, project: Project) -> ModelVersion | None:
    """Return the version the project's ``production`` alias points at, if any."""
    alias = Alias.objects.filter(project=project, name=Alias.Name.PRODUCTION).select_related("version").first()
    return alias.version if alias else None


def latest_comparison(*, version: ModelVersion, succeeded: bool = False) -> Comparison | None:
    """Return the version's newest comparison (only a succeeded one when ``succeeded``)."""
    rows = Comparison.objects.filter(candidate=version).select_related("production", "job", "created_by")
    if succeeded:
        rows = rows.filter(status=Comparison.Status.SUCCEEDED)
    return rows.order_by("-created_at", "-id").first()


@dataclass(frozen=True)
class ReleaseState:
    """Everything the comparison page and API show about one version's release."""

    version: ModelVersion
    policy: ReleasePolicy
    aliases: dict[str, ModelVersion]
    production: ModelVersion | None
    comparison: Comparison | None
    usable: Comparison | None
    stale: bool
    gates: list[GateResult] | None
    approvals: list[Approval]

    @property
    def failed(self) -> list[GateResult]:
        return failures(self.gates or [])

    @property
    def required(self) -> int:
        return int(self.policy.required_approvals)

    @property
    def alias_names(self) -> list[str]:
        return [name for name, target in self.aliases.items() if target.pk == self.version.pk]


def release_state(*, version: ModelVersion) -> ReleaseState:
    """Return the version's release state: aliases, newest comparison, gate verdicts now, approvals."""
    project = version.project
    policy = policy_for(project=project)
    aliases = aliases_of(project=project)
    production = aliases.get(Alias.Name.PRODUCTION)
    usable = latest_comparison(version=version, succeeded=True)
    stale = usable is not None and usable.production_id != (production.pk if production else None)
    gates = comparison_gates(comparison=usable, policy=policy) if usable is not None else None
    return ReleaseState(
        version=version,
        policy=policy,
        aliases=aliases,
        production=production,
        comparison=latest_comparison(version=version),
        usable=usable,
        stale=stale,
        gates=gates,
        approvals=list(version.approvals.select_related("user").order_by("created_at", "id")),
    )


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


# --- writes ---------------------------------------------------------------------------------------


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


def _locked_alias(project: Project, name: str) -> Alias | None:
    return Alias.objects.select_for_update().filter(project=project, name=name).select_related("version").first()


def _drop_side_aliases(project: Project, version: ModelVersion, actor: Any, why: str) -> None:
    """Remove the canary/shadow aliases that point at ``version`` (it left candidacy), recording each."""
    for name in SETTABLE_ALIASES:
        alias = _locked_alias(project, name)
        if alias is not None and alias.version_id == version.pk:
            _move_alias(project, name, alias, None, actor, comment=why)


def _usable_comparison(version: ModelVersion, production: ModelVersion | None) -> Comparison:
    """Return the version's newest succeeded comparison, refusing none or one against another production."""
    comparison = latest_comparison(version=version, succeeded=True)
    if comparison is None:
        raise Conflict(
            f"v{version.number} has no finished comparison with production: run one before approving it.",
            code="comparison_required",
        )
    if comparison.production_id != (production.pk if production else None):
        was = f"v{comparison.production.number}" if comparison.production else "no production version"
        now = f"v{production.number}" if production else "no production version"
        raise Conflict(
            f"v{version.number}'s comparison was made against {was}, but production is now {now}: run it again.",
            code="comparison_stale",
        )
    return comparison


def _gates_message(failed: list[GateResult]) -> str:
    gates = "gate" if len(failed) == 1 else "gates"
    listed = "; ".join(f"{result.gate}: {result.message}" for result in failed)
    return (
        f"Approval is blocked by {len(failed)} failing {gates}: {listed}. "
        "An admin can approve anyway with a written override reason."
    )


@dataclass(frozen=True)
class ApprovalOutcome:
    """One approval: how many the version has now, how many it needs, and the gates it overrode."""

    version: ModelVersion
    approval: Approval
    approvals: int
    required: int
    overridden: list[GateResult]

    @property
    def approved(self) -> bool:
        return self.version.status == Status.APPROVED


def _check_approver(version: ModelVersion, user: Any, policy: ReleasePolicy) -> None:
    if version.status == Status.APPROVED:
        raise Conflict(f"v{version.number} is already approved; promote it or reject it.", code="already_approved")
    if version.status != Status.CANDIDATE:
        raise Conflict(
            f"v{version.number} is {version.get_status_display().lower()}; only a candidate can be approved.",
            code="not_a_candidate",
        )
    if policy.two_person_rule and version.created_by_id is not None and version.created_by_id == user.pk:
        raise Forbidden(
            f"The two-person rule is on: you trained v{version.number}, so someone else must approve it.",
            code="two_person_rule",
        )
    if Approval.objects.filter(version=version, user=user).exists():
        raise Conflict(
            f"You already approved v{version.number}; it needs approvals from other people.", code="already_approved"
        )


@transaction.atomic
def release_approve(
    *, version: ModelVersion, user: Any, comment: str = "", override_reason: str = ""
) -> ApprovalOutcome:
    """Record the user's approval of a candidate, and approve it once the policy's count is reached.

    Needs a finished comparison against the current production version; its gates are evaluated under
    the policy as it is now. A failing gate blocks (409 ``gates_failed``, saying which gate and by how
    much) unless an admin gives a written ``override_reason``, which is recorded as an override event.
    """
    project = lock_project(version.project_id)
    role = require_manager(project, user, "Approving a version")
    comment, override_reason = _text(comment, "comment"), _text(override_reason, "override_reason")
    version = _lock_version(version)
    policy = policy_for(project=project)
    _check_approver(version, user, policy)
    production = production_version(project=project)
    comparison = _usable_comparison(version, production)
    verdicts = comparison_gates(comparison=comparison, policy=policy)
    failed = failures(verdicts)
    if failed and not override_reason:
        raise GatesFailed(
            _gates_message(failed),
            details={"failed": [gate_dict(g) for g in failed], "gates": [gate_dict(g) for g in verdicts]},
        )
    if failed and role != Role.ADMIN:
        raise Forbidden("Only an admin can approve a version whose gates fail.", code="override_needs_admin")
    approval = Approval.objects.create(
        version=version, user=user, comment=comment, override_reason=override_reason if failed else ""
    )
    count = Approval.objects.filter(version=version).count()
    gate_details = {
        "comparison": comparison.pk,
        "production": production.number if production else None,
        "gates": [gate_dict(g) for g in verdicts],
        "approvals": count,
        "required": policy.required_approvals,
    }
    _event(project, version, Kind.APPROVAL, user, comment=comment, details=gate_details)
    if failed:
        _event(project, version, Kind.OVERRIDE, user, comment=override_reason,
               details={"failed": [gate_dict(g) for g in failed], "comparison": comparison.pk})  # fmt: skip
    if count >= policy.required_approvals:
        _set_status(
            version, Status.APPROVED, user, comment, {"approvals": count, "required": policy.required_approvals}
        )
    return ApprovalOutcome(version, approval, count, policy.required_approvals, failed)


@transaction.atomic
def release_reject(*, version: ModelVersion, user: Any, comment: str = "") -> ModelVersion:
    """Reject a candidate or approved version; its canary/shadow aliases are removed (both recorded)."""
    project = lock_project(version.project_id)
    require_manager(project, user, "Rejecting a version")
    comment = _text(comment, "comment")
    version = _lock_version(version)
    if version.status not in (Status.CANDIDATE, Status.APPROVED):
        hint = " Roll back instead." if version.status == Status.PRODUCTION else ""
        raise Conflict(
            f"v{version.number} is {version.get_status_display().lower()}; "
            f"only a candidate or approved version can be rejected.{hint}",
            code="not_rejectable",
        )
    _drop_side_aliases(project, version, user, f"v{version.number} was rejected")
    _set_status(version, Status.REJECTED, user, comment)
    return version


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


@transaction.atomic
def disagreements_send_to_review(*, version: ModelVersion, user: Any) -> ReviewBatch:
    """Send the items of the version's newest comparison on which it and production disagree to review.

    Owners adjudicate them on the labeling review page; their gold labels stay until then.
    """
    require_manager(version.project, user, "Sending items to review")
    comparison = latest_comparison(version=version, succeeded=True)
    listed = comparison.results.get("disagreements", {}).get("items", []) if comparison else []
    if not listed:
        raise Conflict(
            f"v{version.number} has no comparison with production items to send: run a comparison first.",
            code="nothing_to_send",
        )
    return review_batch_send(project=version.project, item_ids=[row["item_id"] for row in listed])


@transaction.atomic
def release_policy_update(*, project: Project, user: Any, changes: Mapping[str, Any]) -> ReleasePolicy:
    """Change the named policy fields, all or none; 400 naming each bad field (unknown, wrong type, out of range)."""
    project = lock_project(project.pk)
    require_manager(project, user, "Changing the release policy")
    unknown = sorted(set(changes) - set(POLICY_FIELDS))
    if unknown:
        raise ValidationFailed(
            f"Unknown release policy fields: {', '.join(unknown)}.",
            details={name: ["Unknown field."] for name in unknown},
        )
    policy = ReleasePolicy.objects.select_for_update().filter(project=project).first() or ReleasePolicy(project=project)
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.updated_by = user
    try:
        policy.full_clean(exclude=["project", "updated_by"], validate_unique=False)
    except DjangoValidationError as exc:
        details = exc.message_dict
        raise ValidationFailed(
            "Invalid release policy: " + "; ".join(f"{k}: {v[0]}" for k, v in sorted(details.items())),
            details=details,
        ) from exc
    policy.save()
    return policy

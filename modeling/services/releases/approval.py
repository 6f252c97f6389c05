"""Decisions on a candidate: approval under the project's gates (with the two-person rule, the
approval count and an admin's written override), rejection, and sending the items on which it and
production disagree to review.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from labeling.models import Role
from labeling.services.review_batches import ReviewBatch, review_batch_send
from modeling.gates import GateResult, failures
from modeling.models import Approval, Comparison, ModelVersion, ReleaseEvent, ReleasePolicy
from modeling.services.releases.events import _drop_side_aliases, _event, _set_status
from modeling.services.releases.guards import _lock_version, _text, lock_project, require_manager
from modeling.services.releases.policy import comparison_gates, gate_dict, policy_for
from modeling.services.releases.state import latest_comparison, production_version
from webapp.errors import Conflict, Forbidden

Status = ModelVersion.Status
Kind = ReleaseEvent.Kind


class GatesFailed(Conflict):
    """Approval refused: at least one blocking gate fails (``details.failed`` lists them)."""

    code = "gates_failed"


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

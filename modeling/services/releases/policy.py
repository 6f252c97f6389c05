"""The project's release policy: its fields (gates, approvals, serving), the default policy on first
use, the gates' verdicts on a comparison under the policy as it is now, and changing the policy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from labeling.models import Project
from modeling.gates import EvalSummary, GateResult, GateSettings, evaluate_gates
from modeling.models import Comparison, ReleasePolicy
from modeling.services.releases.guards import lock_project, require_manager
from webapp.errors import ValidationFailed

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

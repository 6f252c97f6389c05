"""The release API's serializers: the policy and its patch, the comment, approval and alias bodies, a
version's release state (comparison, gates, approvals), an approval's outcome, the history, and a
review batch; with the functions that turn the services' dataclasses into their data.
"""

from __future__ import annotations

import math
from typing import Any

from rest_framework import serializers

from labeling.api.serializers import StrictSerializer
from modeling.models import Approval, Comparison, ReleaseEvent, ReleasePolicy
from modeling.services.releases import POLICY_FIELDS, ApprovalOutcome, ReleaseHistory, ReleaseState, gate_dict
from webapp.api import JobSerializer


class ReleasePolicySerializer(serializers.ModelSerializer):
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ReleasePolicy
        fields = [*POLICY_FIELDS, "updated_at", "updated_by"]
        read_only_fields = fields


class ReleasePolicyPatchSerializer(StrictSerializer):
    """The policy fields to change; gates accept null (off). Ranges are checked by the service."""

    min_macro_f1 = serializers.FloatField(required=False, allow_null=True, help_text="0-1; null: no minimum.")
    max_regression_points = serializers.FloatField(required=False, allow_null=True)
    max_class_regression_points = serializers.FloatField(required=False, allow_null=True)
    max_language_regression_points = serializers.FloatField(required=False, allow_null=True)
    max_ece = serializers.FloatField(required=False, allow_null=True, help_text="0-1; null: no maximum.")
    min_slice_items = serializers.IntegerField(required=False)
    required_approvals = serializers.IntegerField(required=False, help_text="1-5.")
    two_person_rule = serializers.BooleanField(required=False)
    canary_percent = serializers.FloatField(required=False, help_text="0-100.")
    shadow_enabled = serializers.BooleanField(required=False)
    max_texts_per_request = serializers.IntegerField(required=False)
    max_text_chars = serializers.IntegerField(required=False)
    rate_limit_per_minute = serializers.IntegerField(required=False)
    quantize_int8 = serializers.BooleanField(required=False)
    log_texts = serializers.BooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        bad = {
            k: ["Must be a finite number."] for k, v in attrs.items() if isinstance(v, float) and not math.isfinite(v)
        }
        if bad:
            raise serializers.ValidationError(bad)
        return attrs


class CommentSerializer(StrictSerializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class ApproveSerializer(CommentSerializer):
    override_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        help_text="Admins only: a written reason to approve although gates fail (recorded).",
    )


class AliasSerializer(CommentSerializer):
    version = serializers.IntegerField(min_value=1, help_text="The version number the alias points at.")


class ComparisonSerializer(serializers.ModelSerializer):
    candidate = serializers.SlugRelatedField(slug_field="number", read_only=True)
    production = serializers.SlugRelatedField(slug_field="number", read_only=True, allow_null=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    job = JobSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Comparison
        fields = ["id", "status", "candidate", "production", "job", "error", "results", "created_by"]
        fields += ["created_at", "finished_at"]
        read_only_fields = fields


class GateSerializer(serializers.Serializer):
    gate = serializers.CharField()
    passed = serializers.BooleanField()
    blocking = serializers.BooleanField()
    observed = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    message = serializers.CharField()


class ApprovalSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Approval
        fields = ["user", "comment", "override_reason", "created_at"]
        read_only_fields = fields


class ReleaseStateSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    status = serializers.CharField()
    aliases = serializers.ListField(child=serializers.CharField(), help_text="Aliases pointing at this version.")
    production = serializers.IntegerField(allow_null=True, help_text="The version in production now.")
    comparison = ComparisonSerializer(allow_null=True, help_text="The newest comparison, whatever its status.")
    gates = GateSerializer(many=True, allow_null=True, help_text="Verdicts on the newest succeeded comparison, now.")
    gates_failed = serializers.IntegerField()
    stale = serializers.BooleanField(help_text="True when production changed since that comparison.")
    approvals = ApprovalSerializer(many=True)
    required_approvals = serializers.IntegerField()


def _state_data(state: ReleaseState) -> dict[str, Any]:
    return {
        "version": state.version.number,
        "status": state.version.status,
        "aliases": state.alias_names,
        "production": state.production.number if state.production else None,
        "comparison": ComparisonSerializer(state.comparison).data if state.comparison else None,
        "gates": [gate_dict(g) for g in state.gates] if state.gates is not None else None,
        "gates_failed": len(state.failed),
        "stale": state.stale,
        "approvals": ApprovalSerializer(state.approvals, many=True).data,
        "required_approvals": state.required,
    }


class VersionStatusSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    status = serializers.CharField()


class ApprovalOutcomeSerializer(VersionStatusSerializer):
    approvals = serializers.IntegerField()
    required_approvals = serializers.IntegerField()
    approved = serializers.BooleanField()
    overridden = GateSerializer(many=True, help_text="Failing gates an admin's override passed.")


def _outcome_data(outcome: ApprovalOutcome) -> dict[str, Any]:
    return {
        "version": outcome.version.number,
        "status": outcome.version.status,
        "approvals": outcome.approvals,
        "required_approvals": outcome.required,
        "approved": outcome.approved,
        "overridden": [gate_dict(g) for g in outcome.overridden],
    }


class AliasOutSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()


class EventSerializer(serializers.ModelSerializer):
    version = serializers.SlugRelatedField(slug_field="number", read_only=True, allow_null=True)
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = ReleaseEvent
        fields = ["id", "kind", "subject", "version", "from_value", "to_value", "actor", "comment", "details"]
        fields += ["created_at"]
        read_only_fields = fields


class PeriodSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    action = serializers.ChoiceField(choices=["promote", "rollback"])
    actor = serializers.CharField(allow_null=True)
    comment = serializers.CharField(allow_blank=True)


class HistorySerializer(serializers.Serializer):
    production = serializers.IntegerField(allow_null=True)
    aliases = serializers.DictField(child=serializers.IntegerField(), help_text="{alias name: version number}.")
    rollback_to = serializers.IntegerField(allow_null=True, help_text="Where a rollback would go now.")
    timeline = PeriodSerializer(many=True, help_text="Production periods, newest first.")
    events = EventSerializer(many=True, help_text="Release events, newest first.")
    next_before = serializers.IntegerField(allow_null=True, help_text="Pass as ?before= for older events.")


def _history_data(history: ReleaseHistory) -> dict[str, Any]:
    production = history.aliases.get("production")
    return {
        "production": production.number if production else None,
        "aliases": {name: version.number for name, version in history.aliases.items()},
        "rollback_to": history.rollback_to,
        "timeline": [
            {
                "version": p.version,
                "started_at": p.started_at,
                "ended_at": p.ended_at,
                "action": p.action,
                "actor": p.actor.username if p.actor else None,
                "comment": p.comment,
            }
            for p in history.timeline
        ],
        "events": EventSerializer(history.events, many=True).data,
        "next_before": history.next_before,
    }


class ReviewBatchSerializer(serializers.Serializer):
    sent = serializers.ListField(child=serializers.IntegerField())
    already_in_review = serializers.ListField(child=serializers.IntegerField())
    not_gold = serializers.DictField(child=serializers.CharField(), help_text="{item id: its status}, left alone.")
    missing = serializers.ListField(child=serializers.IntegerField())
    message = serializers.CharField()

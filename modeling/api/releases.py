"""Release endpoints: the release policy, comparisons, approve/reject/promote/rollback, the canary and
shadow aliases, and the release history. Every member reads; owners and admins act."""

from __future__ import annotations

import math
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.serializers import StrictSerializer
from labeling.models import Project, Role
from labeling.selectors import project_for_user
from modeling.models import Approval, Comparison, ModelVersion, ReleaseEvent, ReleasePolicy
from modeling.services.releases import (
    POLICY_FIELDS,
    ApprovalOutcome,
    ReleaseHistory,
    ReleaseState,
    alias_clear,
    alias_set,
    check_alias_name,
    disagreements_send_to_review,
    gate_dict,
    policy_for,
    release_approve,
    release_history,
    release_policy_update,
    release_promote,
    release_reject,
    release_rollback,
    release_state,
)
from webapp.api import JobSerializer
from webapp.errors import NotFound, ValidationFailed

NOT_A_MEMBER = OpenApiResponse(description="No such project (or version), or you are not a member.")
OWNERS = OpenApiResponse(description="Needs the model owner or admin role.")
BAD_COMMENT = OpenApiResponse(description="A comment or reason that is not text or longer than 5,000 characters.")
MAX_EVENTS = 1_000


def _version(project: Project, number: int) -> ModelVersion:
    version = (
        ModelVersion.objects.filter(project=project, number=number).select_related("project", "created_by").first()
    )
    if version is None:
        raise NotFound("Model version not found.")
    return version


# --- serializers ----------------------------------------------------------------------------------


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


# --- views ----------------------------------------------------------------------------------------


class ReleasePolicyView(APIView):
    serializer_class = ReleasePolicySerializer

    @extend_schema(responses={200: ReleasePolicySerializer, 404: NOT_A_MEMBER}, summary="The release policy (members)")
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        return Response(ReleasePolicySerializer(policy_for(project=project)).data)

    @extend_schema(
        request=ReleasePolicyPatchSerializer,
        responses={
            200: ReleasePolicySerializer,
            400: OpenApiResponse(
                description="An unknown field, a wrong type or a value out of range (details name it)."
            ),
            403: OWNERS,
            404: NOT_A_MEMBER,
        },
        summary="Change release gates, approvals or serving settings (owners and admins; all or nothing)",
    )
    def patch(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        serializer = ReleasePolicyPatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        policy = release_policy_update(project=project, user=request.user, changes=serializer.validated_data)
        return Response(ReleasePolicySerializer(policy).data)


class ComparisonStartView(APIView):
    serializer_class = ComparisonSerializer

    @extend_schema(
        request=None,
        responses={
            202: ComparisonSerializer,
            403: OWNERS,
            404: NOT_A_MEMBER,
            409: OpenApiResponse(description="The version is not a trained candidate or approved version."),
        },
        summary="Compare a version with production on the eval split (a gpu-queue job; owners and admins)",
    )
    def post(self, request: Request, slug: str, number: int) -> Response:
        from modeling.services.comparison import comparison_start

        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        comparison = comparison_start(version=_version(project, number), user=request.user)
        return Response(ComparisonSerializer(comparison).data, status=status.HTTP_202_ACCEPTED)


class ComparisonView(APIView):
    serializer_class = ReleaseStateSerializer

    @extend_schema(
        responses={200: ReleaseStateSerializer, 404: NOT_A_MEMBER},
        summary="A version's release state: newest comparison, gate verdicts now, approvals, aliases (members)",
    )
    def get(self, request: Request, slug: str, number: int) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        return Response(_state_data(release_state(version=_version(project, number))))


class SendToReviewView(APIView):
    serializer_class = ReviewBatchSerializer

    @extend_schema(
        request=None,
        responses={
            200: ReviewBatchSerializer,
            403: OWNERS,
            404: NOT_A_MEMBER,
            409: OpenApiResponse(description="No comparison with production lists disagreements to send."),
        },
        summary="Send the items a version and production disagree on to the labeling review queue",
    )
    def post(self, request: Request, slug: str, number: int) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        batch = disagreements_send_to_review(version=_version(project, number), user=request.user)
        data = {
            "sent": batch.sent,
            "already_in_review": batch.already_in_review,
            "not_gold": {str(k): v for k, v in batch.not_gold.items()},
            "missing": batch.missing,
            "message": batch.message,
        }
        return Response(data)


class ApproveView(APIView):
    serializer_class = ApprovalOutcomeSerializer

    @extend_schema(
        request=ApproveSerializer,
        responses={
            200: ApprovalOutcomeSerializer,
            400: BAD_COMMENT,
            403: OpenApiResponse(
                description="Not an owner/admin; the two-person rule (`two_person_rule`); "
                "an override by a non-admin (`override_needs_admin`)."
            ),
            404: NOT_A_MEMBER,
            409: OpenApiResponse(
                description="`gates_failed` (details.failed says which gate and by how much), `comparison_required`, "
                "`comparison_stale`, `not_a_candidate`, `already_approved`."
            ),
        },
        summary="Approve a candidate under the gates (owners and admins; admins may override with a reason)",
    )
    def post(self, request: Request, slug: str, number: int) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        serializer = ApproveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        outcome = release_approve(version=_version(project, number), user=request.user, **serializer.validated_data)
        return Response(_outcome_data(outcome))


class RejectView(APIView):
    serializer_class = VersionStatusSerializer

    @extend_schema(
        request=CommentSerializer,
        responses={
            200: VersionStatusSerializer,
            400: BAD_COMMENT,
            403: OWNERS,
            404: NOT_A_MEMBER,
            409: OpenApiResponse(description="Only a candidate or approved version can be rejected."),
        },
        summary="Reject a candidate or approved version (owners and admins)",
    )
    def post(self, request: Request, slug: str, number: int) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        serializer = CommentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = release_reject(version=_version(project, number), user=request.user, **serializer.validated_data)
        return Response({"version": version.number, "status": version.status})


class PromoteView(APIView):
    serializer_class = VersionStatusSerializer

    @extend_schema(
        request=CommentSerializer,
        responses={
            200: VersionStatusSerializer,
            400: BAD_COMMENT,
            403: OWNERS,
            404: NOT_A_MEMBER,
            409: OpenApiResponse(description="Only an approved version can be promoted."),
        },
        summary="Move the production alias to an approved version; the previous one is retired (owners and admins)",
    )
    def post(self, request: Request, slug: str, number: int) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        serializer = CommentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = release_promote(version=_version(project, number), user=request.user, **serializer.validated_data)
        return Response({"version": version.number, "status": version.status})


class RollbackView(APIView):
    serializer_class = VersionStatusSerializer

    @extend_schema(
        request=CommentSerializer,
        responses={
            200: VersionStatusSerializer,
            400: BAD_COMMENT,
            403: OWNERS,
            404: NOT_A_MEMBER,
            409: OpenApiResponse(description="No earlier production version to roll back to."),
        },
        summary="Move production back to the previous production version in one action (owners and admins)",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        serializer = CommentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = release_rollback(project=project, user=request.user, **serializer.validated_data)
        return Response({"version": version.number, "status": version.status})


class AliasView(APIView):
    serializer_class = AliasOutSerializer

    @extend_schema(
        request=AliasSerializer,
        responses={
            200: AliasOutSerializer,
            400: OpenApiResponse(description="Not canary or shadow (production moves by promote/rollback), bad body."),
            403: OWNERS,
            404: OpenApiResponse(description="No such project or version, or you are not a member."),
            409: OpenApiResponse(description="Only a candidate or approved version can be canary or shadow."),
        },
        summary="Point the canary or shadow alias at a version (owners and admins; recorded)",
    )
    def put(self, request: Request, slug: str, name: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        serializer = AliasSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        check_alias_name(name)
        version = _version(project, data["version"])
        alias = alias_set(project=project, user=request.user, name=name, version=version, comment=data["comment"])
        return Response({"name": alias.name, "version": alias.version.number})

    @extend_schema(
        request=CommentSerializer,
        responses={
            204: None,
            400: OpenApiResponse(description="Not canary or shadow."),
            403: OWNERS,
            404: NOT_A_MEMBER,
        },
        summary="Remove the canary or shadow alias (no change when there is none; owners and admins)",
    )
    def delete(self, request: Request, slug: str, name: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        serializer = CommentSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        alias_clear(project=project, user=request.user, name=name, comment=serializer.validated_data["comment"])
        return Response(status=status.HTTP_204_NO_CONTENT)


def _int_param(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValidationFailed(f"{name} must be a whole number from {low} to {high}.", details={name: [raw]})
    return int(raw)


class HistoryView(APIView):
    serializer_class = HistorySerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("limit", int, description=f"Events per page, 1-{MAX_EVENTS} (default 200)."),
            OpenApiParameter(
                "before", int, description="Only events with a smaller id (the previous page's next_before)."
            ),
        ],
        responses={
            200: HistorySerializer,
            400: OpenApiResponse(description="A bad limit or before."),
            404: NOT_A_MEMBER,
        },
        summary="What was in production when, the aliases now, and every release event (members)",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        limit = _int_param(request, "limit", 200, 1, MAX_EVENTS)
        before = _int_param(request, "before", None, 1, 2**62)
        assert limit is not None
        return Response(_history_data(release_history(project=project, limit=limit, before=before)))

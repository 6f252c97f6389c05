"""SLO and alert endpoints: the alert list, the project's SLOs (with budgets and policy verdicts now), and
the notification channels. Every member reads alerts and SLOs; owners and admins change SLOs and manage
channels (channel targets can hold secrets, such as a Slack webhook URL, so only they list them)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.serializers import StrictSerializer
from labeling.models import Role
from labeling.selectors import project_for_user
from monitoring.models import Alert, Notification, NotificationChannel, ServiceObjective
from monitoring.services.notifications import channel_create, channel_delete, channel_send_test, channel_to_test
from monitoring.services.slo import policies_for, slo_get, slo_status, slo_update
from webapp.errors import ValidationFailed

NOT_A_MEMBER = OpenApiResponse(description="No such project (or channel), or you are not a member.")
OWNERS = OpenApiResponse(description="Needs the model owner or admin role.")
MAX_ALERTS = 1_000


# --- serializers ------------------------------------------------------------------------------------


class AlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = Alert
        fields = [
            "id",
            "key",
            "kind",
            "severity",
            "state",
            "title",
            "version_number",
            "evidence",
            "started_at",
            "last_seen_at",
            "resolved_at",
        ]
        read_only_fields = fields


class ObjectiveSerializer(serializers.ModelSerializer):
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ServiceObjective
        fields = [
            "period_days",
            "availability_target",
            "latency_target",
            "latency_threshold_ms",
            "quality_target",
            "min_events",
            "updated_at",
            "updated_by",
        ]
        read_only_fields = fields


class ObjectivePutSerializer(StrictSerializer):
    """The SLO fields to change (omitted ones keep their value); ranges are checked by the service."""

    period_days = serializers.IntegerField(required=False, help_text="1-90.")
    availability_target = serializers.FloatField(required=False, help_text="A fraction, e.g. 0.995.")
    latency_target = serializers.FloatField(required=False, help_text="Share under the threshold, e.g. 0.99.")
    latency_threshold_ms = serializers.IntegerField(required=False, help_text="A latency bucket edge in ms.")
    quality_target = serializers.FloatField(required=False, allow_null=True, help_text="null: no quality SLO.")
    min_events = serializers.IntegerField(required=False, help_text="Low-traffic guard.")


class ChannelSerializer(serializers.ModelSerializer):
    last_notification = serializers.SerializerMethodField()

    class Meta:
        model = NotificationChannel
        fields = ["id", "kind", "name", "target", "min_severity", "enabled", "created_at", "last_notification"]
        read_only_fields = fields

    def get_last_notification(self, channel: NotificationChannel) -> dict[str, Any] | None:
        last = Notification.objects.filter(channel=channel).order_by("-created_at").first()
        return NotificationSerializer(last).data if last else None


class ChannelCreateSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=NotificationChannel.Kind.choices)
    name = serializers.CharField(max_length=100)
    target = serializers.CharField(max_length=1000, help_text="E-mail addresses (comma-separated) or an http(s) URL.")
    min_severity = serializers.ChoiceField(choices=Alert.Severity.choices, default=Alert.Severity.TICKET)


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "event", "status", "attempts", "last_error", "created_at", "delivered_at"]
        read_only_fields = fields


def _status_data(project: Any) -> dict[str, Any]:
    until, statuses = slo_status(project=project)
    return {
        "data_until": until,
        "slos": [
            {
                "slo": s.slo,
                "objective": s.objective,
                "budget": {
                    "events": s.budget.events,
                    "bad": s.budget.bad,
                    "allowed": s.budget.allowed,
                    "remaining": s.budget.remaining,
                },
                "policies": [
                    {
                        "severity": r.policy.severity,
                        "windows": r.policy.name,
                        "long_window_s": int(r.policy.long_window.total_seconds()),
                        "short_window_s": int(r.policy.short_window.total_seconds()),
                        "factor": r.policy.factor,
                        "long_burn": r.long_burn,
                        "short_burn": r.short_burn,
                        "long_events": r.long_events,
                        "fires": r.fires,
                        "too_few_events": r.too_few_events,
                    }
                    for r in s.results
                ],
            }
            for s in statuses
        ],
    }


# --- views ------------------------------------------------------------------------------------------


def _choice(request: Request, name: str, choices: list[str]) -> str:
    value = request.query_params.get(name, "")
    if value and value not in choices:
        raise ValidationFailed(f"Unknown {name} {value!r}; use one of {', '.join(choices)}.")
    return value


class AlertListView(APIView):
    serializer_class = AlertSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("state", str, enum=Alert.State.values),
            OpenApiParameter("kind", str, enum=Alert.Kind.values),
            OpenApiParameter("severity", str, enum=Alert.Severity.values),
            OpenApiParameter("version", int),
        ],
        responses={
            200: AlertSerializer(many=True),
            400: OpenApiResponse(description="A bad filter."),
            404: NOT_A_MEMBER,
        },
        summary="The project's alerts, newest first (at most 1,000; members)",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        alerts = Alert.objects.filter(project=project).order_by("-started_at")
        for name, field, choices in (
            ("state", "state", Alert.State.values),
            ("kind", "kind", Alert.Kind.values),
            ("severity", "severity", Alert.Severity.values),
        ):
            value = _choice(request, name, choices)
            if value:
                alerts = alerts.filter(**{field: value})
        version = request.query_params.get("version")
        if version:
            if not version.isdigit():
                raise ValidationFailed(f"version must be a version number; got {version!r}.")
            alerts = alerts.filter(version_number=int(version))
        return Response(AlertSerializer(alerts[:MAX_ALERTS], many=True).data)


class SloView(APIView):
    serializer_class = ObjectiveSerializer

    @extend_schema(
        responses={200: ObjectiveSerializer, 404: NOT_A_MEMBER},
        summary="The project's SLOs, the alert policies, and each SLO's error budget and burn now (members)",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        objective = slo_get(project=project)
        return Response(self._body(project, objective))

    @extend_schema(
        request=ObjectivePutSerializer,
        responses={
            200: ObjectiveSerializer,
            400: OpenApiResponse(
                description="An unknown field, a value out of range, a threshold that is not a bucket edge, "
                "or an objective whose alert policies could never fire (details name the field)."
            ),
            403: OWNERS,
            404: NOT_A_MEMBER,
        },
        summary="Change the SLOs (owners and admins; all or nothing; omitted fields keep their value)",
    )
    def put(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        serializer = ObjectivePutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        objective = slo_update(project=project, user=request.user, changes=serializer.validated_data)
        return Response(self._body(project, objective))

    @staticmethod
    def _body(project: Any, objective: ServiceObjective) -> dict[str, Any]:
        return {
            "objectives": ObjectiveSerializer(objective).data,
            "policies": [
                {"severity": p.severity, "windows": p.name, "factor": p.factor} for p in policies_for(objective)
            ],
            **_status_data(project),
        }


class ChannelListView(APIView):
    serializer_class = ChannelSerializer

    @extend_schema(responses={200: ChannelSerializer(many=True), 403: OWNERS, 404: NOT_A_MEMBER})
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        channels = NotificationChannel.objects.filter(project=project).order_by("name")
        return Response(ChannelSerializer(channels, many=True).data)

    @extend_schema(
        request=ChannelCreateSerializer,
        responses={
            201: ChannelSerializer,
            400: OpenApiResponse(description="A bad kind, name or target (e.g. a URL that is not http(s))."),
            403: OWNERS,
            404: NOT_A_MEMBER,
        },
        summary="Add an e-mail or webhook channel (owners and admins)",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        serializer = ChannelCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        channel = channel_create(project=project, user=request.user, **serializer.validated_data)
        return Response(ChannelSerializer(channel).data, status=status.HTTP_201_CREATED)


class ChannelView(APIView):
    @extend_schema(
        responses={204: None, 403: OWNERS, 404: NOT_A_MEMBER},
        summary="Remove a channel (removing one that is already gone changes nothing: 204)",
    )
    def delete(self, request: Request, slug: str, channel_id: int) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        channel_delete(project=project, channel_id=channel_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChannelTestView(APIView):
    serializer_class = NotificationSerializer

    @extend_schema(
        request=None,
        responses={
            200: NotificationSerializer,
            400: OpenApiResponse(description="No such channel in this project."),
            403: OWNERS,
            404: NOT_A_MEMBER,
        },
        summary="Send a test notification now; the answer says whether it was delivered (and the error if not)",
    )
    def post(self, request: Request, slug: str, channel_id: int) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        channel = channel_to_test(project=project, channel_id=channel_id)
        return Response(NotificationSerializer(channel_send_test(channel=channel)).data)

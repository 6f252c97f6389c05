"""Drift endpoints: the runs (list and one run with its results and explanation), an on-demand run, and
sending a run's most drifted texts to the labeling queue. Every member reads; owners and admins act."""

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
from monitoring.models import DriftRun
from monitoring.selectors.drift import drift_run_get, drift_runs
from monitoring.services.drift import (
    MAX_ON_DEMAND_HOURS,
    ON_DEMAND_HOURS,
    SEND_DEFAULT,
    SEND_MAX,
    drift_run_request,
    drift_send_to_labeling,
)
from webapp.errors import ValidationFailed

NOT_A_MEMBER = OpenApiResponse(description="No such project, or you are not a member.")
OWNERS = OpenApiResponse(description="Needs the model owner or admin role.")
UNKNOWN_RUN = OpenApiResponse(description="The project has no drift run with that id.")


class DriftRunSerializer(serializers.ModelSerializer):
    alerts = serializers.SerializerMethodField()

    class Meta:
        model = DriftRun
        fields = [
            "id",
            "window",
            "window_start",
            "window_end",
            "version_number",
            "n_reference",
            "n_current",
            "drifted",
            "alerts",
            "sent_to_labeling",
            "job",
            "created_at",
        ]
        read_only_fields = fields

    def get_alerts(self, run: DriftRun) -> list[str]:
        return list((run.results or {}).get("alerts", []))


class DriftRunDetailSerializer(DriftRunSerializer):
    class Meta(DriftRunSerializer.Meta):
        fields = [*DriftRunSerializer.Meta.fields, "results", "explanation"]
        read_only_fields = fields


class RunRequestSerializer(StrictSerializer):
    hours = serializers.IntegerField(
        required=False, default=ON_DEMAND_HOURS, help_text=f"The window: the last 1 to {MAX_ON_DEMAND_HOURS} hours."
    )


class SendSerializer(StrictSerializer):
    limit = serializers.IntegerField(
        required=False, default=SEND_DEFAULT, help_text=f"How many of the most drifted texts (1 to {SEND_MAX})."
    )


def _int_param(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name, "")
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValidationFailed(f"{name} must be a whole number; got {value!r}.", details={"field": name}) from None


class DriftRunListView(APIView):
    serializer_class = DriftRunSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("window", str, description="hourly, daily or on_demand (default: all)."),
            OpenApiParameter("limit", int, description="At most this many, newest first (1-500, default 100)."),
        ],
        responses={
            200: DriftRunSerializer(many=True),
            400: OpenApiResponse(description="A bad filter."),
            404: NOT_A_MEMBER,
        },
        summary="The project's drift runs, newest first (members)",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        runs = drift_runs(
            project=project, window=request.query_params.get("window", ""), limit=_int_param(request, "limit", 100)
        )
        return Response(DriftRunSerializer(runs, many=True).data)

    @extend_schema(
        request=RunRequestSerializer,
        responses={
            202: OpenApiResponse(description="The job that runs the tests: {job, status, hours}."),
            400: OpenApiResponse(description="hours out of range, or an unknown field."),
            403: OWNERS,
            404: NOT_A_MEMBER,
            409: OpenApiResponse(description="No production version, or it has no drift reference yet."),
        },
        summary="Run the drift tests now over the last N hours of production traffic (owners and admins)",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        serializer = RunRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = drift_run_request(project=project, user=request.user, hours=serializer.validated_data["hours"])
        body: dict[str, Any] = {"job": str(job.pk), "status": job.status, "hours": job.params.get("hours")}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class DriftRunView(APIView):
    serializer_class = DriftRunDetailSerializer

    @extend_schema(
        responses={200: DriftRunDetailSerializer, 400: UNKNOWN_RUN, 404: NOT_A_MEMBER},
        summary="One drift run: every test's result, per language, and the explanation (members)",
    )
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        return Response(DriftRunDetailSerializer(drift_run_get(project=project, run_id=run_id)).data)


class DriftSendView(APIView):
    @extend_schema(
        request=SendSerializer,
        responses={
            200: OpenApiResponse(
                description="{queued, created, requeued, already_labeled, tag, already, message}; "
                "a run already sent answers already=true and changes nothing."
            ),
            400: OpenApiResponse(description="An unknown run, a limit out of range, or an unknown field."),
            403: OWNERS,
            404: NOT_A_MEMBER,
            409: OpenApiResponse(description="The run detected no drift, or has no logged texts to send."),
        },
        summary="Send a run's most drifted texts to the labeling queue, tagged drift:<run id> (owners and admins)",
    )
    def post(self, request: Request, slug: str, run_id: int) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        run = drift_run_get(project=project, run_id=run_id)
        serializer = SendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = drift_send_to_labeling(run=run, user=request.user, limit=serializer.validated_data["limit"])
        sent = (result.run.explanation or {}).get("sent", {})
        return Response(
            {
                "queued": result.queued,
                "created": sent.get("created", 0),
                "requeued": sent.get("requeued", 0),
                "already_labeled": sent.get("already_labeled", 0),
                "tag": f"drift:{run.pk}",
                "already": result.already,
                "message": result.message,
            }
        )

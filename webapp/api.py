"""Job endpoints: ``GET /api/v1/jobs/{id}`` and ``POST /api/v1/jobs/{id}/cancel``."""

from __future__ import annotations

from django.urls import path
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.jobs import job_cancel, job_for_user
from webapp.models import Job


class JobSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "progress",
            "message",
            "error",
            "result",
            "project",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "cancel_requested",
        ]
        read_only_fields = fields


class JobDetailView(APIView):
    serializer_class = JobSerializer

    def get(self, request: Request, job_id: str) -> Response:
        return Response(JobSerializer(job_for_user(user=request.user, job_id=job_id)).data)


class JobCancelView(APIView):
    serializer_class = JobSerializer

    def post(self, request: Request, job_id: str) -> Response:
        job = job_cancel(job=job_for_user(user=request.user, job_id=job_id), user=request.user)
        return Response(JobSerializer(job).data, status=202)


urlpatterns = [
    path("jobs/<str:job_id>", JobDetailView.as_view(), name="api-job-detail"),
    path("jobs/<str:job_id>/cancel", JobCancelView.as_view(), name="api-job-cancel"),
]

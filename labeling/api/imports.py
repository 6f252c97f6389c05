"""Import endpoints: ``POST /api/v1/projects/{slug}/imports`` and ``GET /api/v1/projects/{slug}/datasets``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.importing.sniff import FORMATS
from labeling.models import Dataset, Role
from labeling.selectors import project_for_user
from labeling.services.imports import ImportOutcome, import_records, import_upload
from webapp.errors import PayloadTooLarge, ValidationFailed

# Multipart framing around the file: boundaries, part headers and the small form fields.
MULTIPART_SLACK_BYTES = 64 * 1024


class DatasetSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    job = serializers.UUIDField(source="job_id", read_only=True, allow_null=True)
    duplicate_rows = serializers.SerializerMethodField(
        help_text="Up to 50 rows skipped as exact duplicates (only in the response to the import itself)."
    )
    ignored_fields = serializers.SerializerMethodField(help_text="Columns or keys the import does not know.")

    class Meta:
        model = Dataset
        fields = [
            "id",
            "name",
            "format",
            "source",
            "rows_total",
            "items_created",
            "duplicates_skipped",
            "gold_labels",
            "file_sha256",
            "created_by",
            "created_at",
            "job",
            "duplicate_rows",
            "ignored_fields",
        ]
        read_only_fields = fields

    def get_duplicate_rows(self, dataset: Dataset) -> list[dict[str, Any]]:
        return getattr(dataset, "duplicate_rows", [])

    def get_ignored_fields(self, dataset: Dataset) -> list[str]:
        return getattr(dataset, "ignored_fields", [])


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A CSV (with a header row), JSONL or JSON array file, UTF-8, uncompressed.")
    format = serializers.ChoiceField(
        choices=FORMATS, required=False, help_text="Overrides the format told by the file's extension."
    )


class ImportItemsSerializer(serializers.Serializer):
    items = serializers.ListField(
        child=serializers.JSONField(),
        allow_empty=False,
        help_text='Objects with "text" and optionally "id", "label", "language", "split", "metadata".',
    )
    name = serializers.CharField(max_length=255, required=False, default="API import")


class _JobLinkSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    url = serializers.CharField()


_ERROR = OpenApiResponse(description='{"error": {"code", "message", "details": {"errors", "error_count"}}}')


class ImportCreateView(APIView):
    parser_classes = [MultiPartParser, JSONParser]

    @extend_schema(
        operation_id="projects_imports_create",
        summary="Import a dataset",
        description=(
            'Upload a file (multipart `file`, optional `format`) or send `{"items": [...]}`. All-or-nothing: '
            "on any error nothing is written and the response lists the errors by row (first 50, with the "
            f"total). Files of more than {settings.IMPORT_SYNC_MAX_ROWS:,} rows are imported by a background "
            "job (202); follow its `url`."
        ),
        request={"multipart/form-data": ImportUploadSerializer, "application/json": ImportItemsSerializer},
        responses={
            201: DatasetSerializer,
            202: inline_serializer("ImportQueued", fields={"job": _JobLinkSerializer()}),
            400: _ERROR,
            403: _ERROR,
            413: _ERROR,
            415: _ERROR,
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        _refuse_oversized(request)
        if "file" in request.FILES or request.content_type.startswith("multipart/"):
            upload = ImportUploadSerializer(data=request.data)
            upload.is_valid(raise_exception=True)
            file = upload.validated_data["file"]
            outcome = import_upload(
                project=project,
                user=request.user,
                fileobj=file,
                filename=file.name,
                fmt=upload.validated_data.get("format"),
                source=Dataset.Source.API,
            )
            return _respond(outcome)
        body = ImportItemsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        dataset = import_records(
            project=project,
            user=request.user,
            records=body.validated_data["items"],
            name=body.validated_data["name"],
            source=Dataset.Source.API,
        )
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


def _refuse_oversized(request: Request) -> None:
    """Refuse by the declared length, before the body is read: uploads by the import limit, JSON by the body limit."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ValidationFailed("The Content-Length header is not a number.") from None
    if request.content_type.startswith("multipart/"):
        if declared > settings.IMPORT_MAX_BYTES + MULTIPART_SLACK_BYTES:
            limit_mb = settings.IMPORT_MAX_BYTES / 1024 / 1024
            raise PayloadTooLarge(f"The upload is larger than the {limit_mb:.0f} MB import limit; split the file.")
    elif declared > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        limit_mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1024 / 1024
        raise PayloadTooLarge(
            f"JSON bodies are limited to {limit_mb:.0f} MB; upload larger datasets as a file (multipart `file`)."
        )


def _respond(outcome: ImportOutcome) -> Response:
    if outcome.job is not None:
        url = reverse("api-job-detail", args=[outcome.job.pk])
        body = {"job": {"id": str(outcome.job.pk), "status": outcome.job.status, "url": url}}
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})
    return Response(DatasetSerializer(outcome.dataset).data, status=status.HTTP_201_CREATED)


class DatasetListView(APIView):
    serializer_class = DatasetSerializer

    @extend_schema(summary="List the project's imported datasets, newest first", responses=DatasetSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        datasets = Dataset.objects.filter(project=project).select_related("created_by").order_by("-created_at", "-id")
        return Response(DatasetSerializer(datasets, many=True).data)

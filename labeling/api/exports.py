"""``GET /api/v1/projects/{slug}/export?format=csv|jsonl``: the streamed export (owner or admin)."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from labeling.models import Role
from labeling.selectors import project_for_user
from labeling.services.exports import FORMATS, export_response


class ExportView(APIView):
    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # ``?format=`` is DRF's renderer override, but here it names the file format: the body is a
        # streamed file on success and a JSON error otherwise, so negotiation always picks JSON.
        return (JSONRenderer(), JSONRenderer.media_type)

    @extend_schema(
        parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=list(FORMATS), default="csv")],
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            400: OpenApiResponse(description="Unknown format."),
            403: OpenApiResponse(description="Not authenticated, or not an owner/admin of the project."),
            404: OpenApiResponse(description="No such project, or you are not a member."),
        },
        summary="Export items with gold labels, streamed (owner or admin)",
    )
    def get(self, request: Request, slug: str) -> StreamingHttpResponse:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        return export_response(project=project, fmt=request.query_params.get("format") or "csv")

"""The release history endpoint: what was in production when, the aliases now, and the release
events newest first, a page at a time (``limit``, ``before``).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.selectors import project_for_user
from modeling.api.releases.common import NOT_A_MEMBER
from modeling.api.releases.serializers import HistorySerializer, _history_data
from modeling.services.releases import release_history
from webapp.errors import ValidationFailed

MAX_EVENTS = 1_000


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

"""The comparison endpoints: start a comparison with production (a gpu-queue job), read a version's
release state, and send the items it and production disagree on to review.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.models import Role
from labeling.selectors import project_for_user
from modeling.api.releases.common import NOT_A_MEMBER, OWNERS, _version
from modeling.api.releases.serializers import (
    ComparisonSerializer,
    ReleaseStateSerializer,
    ReviewBatchSerializer,
    _state_data,
)
from modeling.services.releases import disagreements_send_to_review, release_state


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

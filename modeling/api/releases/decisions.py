"""The release actions on a version: approve (under the gates, or overridden by an admin), reject,
promote, and roll production back. Owners and admins act.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.models import Project, Role
from labeling.selectors import project_for_user
from modeling.api.releases.common import BAD_COMMENT, NOT_A_MEMBER, OWNERS, _version
from modeling.api.releases.serializers import (
    ApprovalOutcomeSerializer,
    ApproveSerializer,
    CommentSerializer,
    VersionStatusSerializer,
    _outcome_data,
)
from modeling.models import ModelVersion
from modeling.services.releases import release_approve, release_promote, release_reject, release_rollback


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
        project, comment = _owner_comment(request, slug)
        return _status(release_reject(version=_version(project, number), user=request.user, **comment))


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
        project, comment = _owner_comment(request, slug)
        return _status(release_promote(version=_version(project, number), user=request.user, **comment))


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
        project, comment = _owner_comment(request, slug)
        return _status(release_rollback(project=project, user=request.user, **comment))


def _owner_comment(request: Request, slug: str) -> tuple[Project, dict[str, Any]]:
    """The project (owners and admins only: 403 for other members, 404 for non-members) and the valid comment."""
    project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
    serializer = CommentSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    return project, dict(serializer.validated_data)


def _status(version: ModelVersion) -> Response:
    return Response({"version": version.number, "status": version.status})

"""The release policy endpoint: every member reads it; owners and admins change it, all or nothing."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.models import Role
from labeling.selectors import project_for_user
from modeling.api.releases.common import NOT_A_MEMBER, OWNERS
from modeling.api.releases.serializers import ReleasePolicyPatchSerializer, ReleasePolicySerializer
from modeling.services.releases import policy_for, release_policy_update


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

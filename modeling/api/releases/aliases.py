"""The canary and shadow alias endpoint: point one at a version, or remove it (owners and admins)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.models import Role
from labeling.selectors import project_for_user
from modeling.api.releases.common import NOT_A_MEMBER, OWNERS, _version
from modeling.api.releases.serializers import AliasOutSerializer, AliasSerializer, CommentSerializer
from modeling.services.releases import alias_clear, alias_set, check_alias_name


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

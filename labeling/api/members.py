"""Member endpoints (project admins): ``GET/POST .../members``, ``PATCH/DELETE .../members/{username}``."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.serializers import StrictSerializer
from labeling.models import Membership, Project, Role
from labeling.selectors import project_for_user
from labeling.services.projects import membership_remove, membership_set
from webapp.errors import Conflict, NotFound, ValidationFailed

ERRORS = {
    400: OpenApiResponse(description="Invalid input: `error.details` names each bad field."),
    403: OpenApiResponse(description="Not authenticated, or not an admin of the project."),
    404: OpenApiResponse(description="No such project or member, or you are not a member."),
    409: OpenApiResponse(description="The change would leave the project without an admin, or already done."),
}


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["username", "role", "created_at"]
        read_only_fields = fields


class MemberAddSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(Role.choices, default=Role.REVIEWER)


class MemberRoleSerializer(StrictSerializer):
    role = serializers.ChoiceField(Role.choices)


def _member(project: Project, username: str) -> Membership:
    membership = project.memberships.select_related("user").filter(user__username=username).first()
    if membership is None:
        raise NotFound(f"{username} is not a member of this project.")
    return membership


class MemberListView(APIView):
    @extend_schema(responses={200: MemberSerializer(many=True), **ERRORS}, summary="List members (admin)")
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.ADMIN)
        memberships = project.memberships.select_related("user").order_by("user__username")
        return Response(MemberSerializer(memberships, many=True).data)

    @extend_schema(
        request=MemberAddSerializer, responses={201: MemberSerializer, **ERRORS}, summary="Add a member (admin)"
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.ADMIN)
        serializer = MemberAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username = serializer.validated_data["username"]
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise ValidationFailed(f"There is no user named {username!r}.", details={"username": "unknown"})
        if project.memberships.filter(user=user).exists():
            raise Conflict(f"{username} is already a member; PATCH their membership to change the role.")
        membership = membership_set(project=project, user=user, role=serializer.validated_data["role"])
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailView(APIView):
    @extend_schema(
        request=MemberRoleSerializer, responses={200: MemberSerializer, **ERRORS}, summary="Change a role (admin)"
    )
    def patch(self, request: Request, slug: str, username: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.ADMIN)
        serializer = MemberRoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = membership_set(
            project=project, user=_member(project, username).user, role=serializer.validated_data["role"]
        )
        return Response(MemberSerializer(membership).data)

    @extend_schema(responses={204: None, **ERRORS}, summary="Remove a member (admin; not the last admin)")
    def delete(self, request: Request, slug: str, username: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.ADMIN)
        membership_remove(project=project, user=_member(project, username).user)
        return Response(status=status.HTTP_204_NO_CONTENT)

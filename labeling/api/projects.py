"""Project endpoints: ``GET/POST /api/v1/projects`` and ``GET/PATCH /api/v1/projects/{slug}``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.serializers import StrictSerializer
from labeling.models import Label, Membership, Project, Role
from labeling.selectors import project_for_user, projects_for_user
from labeling.services.projects import LabelSpec, ProjectSpec, project_create, project_update
from webapp.errors import Forbidden

COUNT_FIELDS = ("items", "unlabeled", "queued", "leased", "labeled", "in_review", "gold")
QUOTAS_HELP = (
    "Language code (one of the project's languages) -> the least each queue batch takes of it: a share "
    'between 0 and 1 (a number with a decimal point, 0.2) or a count of items (a whole number, 5), e.g. {"sw": 0.2}. '
    "Shares add up to at most 1."
)
ERRORS = {
    400: OpenApiResponse(description="Invalid input: `error.details` names each bad field."),
    403: OpenApiResponse(description="Not authenticated, or the role is too small."),
    404: OpenApiResponse(description="No such project, or you are not a member."),
}


class LabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "name", "description", "hotkey", "color", "order"]
        read_only_fields = fields


class LabelInputSerializer(StrictSerializer):
    id = serializers.IntegerField(required=False, allow_null=True, help_text="Keep (and maybe rename) this label.")
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    hotkey = serializers.CharField(max_length=1, required=False, allow_blank=True, trim_whitespace=False, default="")
    color = serializers.CharField(max_length=7, required=False, allow_blank=True, default="")


class CountsSerializer(serializers.Serializer):
    items = serializers.IntegerField()
    unlabeled = serializers.IntegerField()
    queued = serializers.IntegerField()
    leased = serializers.IntegerField()
    labeled = serializers.IntegerField()
    in_review = serializers.IntegerField()
    gold = serializers.IntegerField()


class ProjectSerializer(serializers.ModelSerializer):
    labels = LabelSerializer(many=True, read_only=True)
    role = serializers.SerializerMethodField(help_text="Your role in the project.")
    counts = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "slug",
            "name",
            "description",
            "task_type",
            "guidelines",
            "languages",
            "base_checkpoint",
            "max_text_chars",
            "al_strategy",
            "al_batch_size",
            "retrain_after_labels",
            "language_quotas",
            "labels",
            "role",
            "counts",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_role(self, project: Project) -> str | None:
        roles = self.context.get("roles")
        if roles is not None:
            return roles.get(project.pk, Role.ADMIN if self.context.get("superuser") else None)
        return getattr(project, "user_role", None)

    @extend_schema_field(CountsSerializer)
    def get_counts(self, project: Project) -> dict[str, int]:
        counts = getattr(project, "counts", None)
        return {name: getattr(counts, name, 0) for name in COUNT_FIELDS}


class ProjectCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120)
    slug = serializers.CharField(max_length=60)
    base_checkpoint = serializers.CharField(max_length=500)
    labels = LabelInputSerializer(many=True, allow_empty=True)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    guidelines = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    languages = serializers.ListField(child=serializers.CharField(max_length=16), required=False, default=list)
    task_type = serializers.ChoiceField(Project.TaskType.choices, required=False, default=Project.TaskType.SINGLE_LABEL)
    max_text_chars = serializers.IntegerField(required=False, default=20_000)
    al_strategy = serializers.ChoiceField(
        Project.Strategy.choices, required=False, default=Project.Strategy.MARGIN_DIVERSITY
    )
    al_batch_size = serializers.IntegerField(required=False, default=50)
    retrain_after_labels = serializers.IntegerField(required=False, default=200)
    language_quotas = serializers.JSONField(required=False, default=dict, help_text=QUOTAS_HELP)


class ProjectUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    guidelines = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    languages = serializers.ListField(child=serializers.CharField(max_length=16), required=False)
    base_checkpoint = serializers.CharField(max_length=500, required=False)
    max_text_chars = serializers.IntegerField(required=False)
    al_strategy = serializers.ChoiceField(Project.Strategy.choices, required=False)
    al_batch_size = serializers.IntegerField(required=False)
    retrain_after_labels = serializers.IntegerField(required=False)
    language_quotas = serializers.JSONField(required=False, help_text=QUOTAS_HELP)
    labels = LabelInputSerializer(
        many=True, required=False, help_text="The whole new label set; labels left out are removed if unused."
    )


def label_specs(rows: list[dict[str, Any]]) -> list[LabelSpec]:
    return [LabelSpec(**row) for row in rows]


class ProjectListCreateView(APIView):
    @extend_schema(responses={200: ProjectSerializer(many=True), 403: ERRORS[403]}, summary="Your projects")
    def get(self, request: Request) -> Response:
        projects = projects_for_user(user=request.user).select_related("counts").prefetch_related("labels")
        roles = dict(Membership.objects.filter(user=request.user).values_list("project_id", "role"))
        context = {"roles": roles, "superuser": request.user.is_superuser}
        return Response(ProjectSerializer(projects.distinct(), many=True, context=context).data)

    @extend_schema(
        request=ProjectCreateSerializer,
        responses={
            201: ProjectSerializer,
            **ERRORS,
            409: OpenApiResponse(description="The slug is taken."),
        },
        summary="Create a project (needs the labeling.add_project permission); you become its admin",
    )
    def post(self, request: Request) -> Response:
        if not (request.user.is_superuser or request.user.has_perm("labeling.add_project")):
            raise Forbidden("Creating projects needs the labeling.add_project permission; ask an operator.")
        serializer = ProjectCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        spec = ProjectSpec(labels=label_specs(data.pop("labels")), **data)
        project = project_create(spec=spec, user=request.user)
        project = project_for_user(user=request.user, slug=project.slug)
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailView(APIView):
    @extend_schema(responses={200: ProjectSerializer, 403: ERRORS[403], 404: ERRORS[404]}, summary="A project")
    def get(self, request: Request, slug: str) -> Response:
        return Response(ProjectSerializer(project_for_user(user=request.user, slug=slug)).data)

    @extend_schema(
        request=ProjectUpdateSerializer,
        responses={200: ProjectSerializer, **ERRORS, 409: OpenApiResponse(description="A removed label is in use.")},
        summary="Change a project's settings or label set (owner or admin)",
    )
    def patch(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        serializer = ProjectUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        labels = changes.pop("labels", None)
        project_update(project=project, changes=changes, labels=label_specs(labels) if labels is not None else None)
        return Response(ProjectSerializer(project_for_user(user=request.user, slug=slug)).data)

"""``GET/POST /api/v1/projects/{slug}/model-versions``, ``GET …/model-versions/{number}``, ``POST …/retrain``
and ``GET …/learning-curve``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.models import Role
from labeling.selectors import project_for_user
from modeling.api.serializers import (
    LearningCurveSerializer,
    ModelVersionDetailSerializer,
    ModelVersionSerializer,
    RetrainingSerializer,
    RetrainOutcomeSerializer,
    TrainingRequestSerializer,
    learning_curve_data,
)
from modeling.models import ModelVersion
from modeling.selectors import learning_curve
from modeling.services.retraining import retraining_request
from modeling.services.training import training_start
from webapp.errors import NotFound

NOT_A_MEMBER = OpenApiResponse(description="No such project (or version), or you are not a member.")


class ModelVersionListView(APIView):
    serializer_class = ModelVersionSerializer

    @extend_schema(
        responses={200: ModelVersionSerializer(many=True), 404: NOT_A_MEMBER},
        summary="List a project's model versions, newest first (any member)",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        versions = ModelVersion.objects.filter(project=project).select_related(
            "parent", "created_by", "job", "retraining"
        )
        return Response(ModelVersionSerializer(versions.order_by("-number"), many=True).data)

    @extend_schema(
        request=TrainingRequestSerializer,
        responses={
            202: ModelVersionSerializer,
            400: OpenApiResponse(
                description="A bad hyperparameter (`error.details.overrides` names it) or too little data."
            ),
            403: OpenApiResponse(description="Needs the model owner role."),
            404: NOT_A_MEMBER,
            409: OpenApiResponse(description="A training of this project is already queued or running."),
        },
        summary="Start training the next model version (owners and admins)",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        serializer = TrainingRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = training_start(project=project, user=request.user, overrides=serializer.validated_overrides())
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_202_ACCEPTED)


class ModelVersionDetailView(APIView):
    serializer_class = ModelVersionDetailSerializer

    @extend_schema(
        responses={200: ModelVersionDetailSerializer, 404: NOT_A_MEMBER},
        summary="One model version with its metrics and training history (any member)",
    )
    def get(self, request: Request, slug: str, number: int) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        version = ModelVersion.objects.select_related("parent", "created_by", "job", "retraining").filter(
            project=project, number=number
        )
        found = version.first()
        if found is None:
            raise NotFound("Model version not found.")
        return Response(ModelVersionDetailSerializer(found).data)


class RetrainView(APIView):
    serializer_class = RetrainOutcomeSerializer

    @extend_schema(
        request=None,
        responses={
            202: RetrainOutcomeSerializer,
            400: OpenApiResponse(description="Too little gold data to train (`error.details.missing` says what)."),
            403: OpenApiResponse(description="Needs the model owner role."),
            404: NOT_A_MEMBER,
        },
        summary="Retrain now: start the train → score → queue chain, or join the follow-up of the one running",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        outcome = retraining_request(project=project, user=request.user)
        body = {
            "action": outcome.action,
            "message": outcome.message,
            "retraining": RetrainingSerializer(outcome.retraining).data,
            "running": RetrainingSerializer(outcome.running).data if outcome.running else None,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class LearningCurveView(APIView):
    serializer_class = LearningCurveSerializer

    @extend_schema(
        responses={200: LearningCurveSerializer, 404: NOT_A_MEMBER},
        summary="Eval macro-F1 (95% CI) by gold labels per version, and the stabilizing-predictions stop signal",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        return Response(learning_curve_data(learning_curve(project=project)))

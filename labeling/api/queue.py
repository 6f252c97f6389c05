"""Queue endpoints (reviewers and up): next item, submit an annotation, skip, lease heartbeat."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.serializers import StrictSerializer
from labeling.models import Annotation, Item, Lease, Project
from labeling.selectors import project_for_user
from labeling.services.queue import Suggestion, annotation_submit, lease_heartbeat, queue_next, queue_skip
from webapp.errors import NotFound

ERRORS = {
    400: OpenApiResponse(description="Invalid input: `error.details` names each bad field."),
    404: OpenApiResponse(description="No such project, item or lease, or you are not a member."),
    409: OpenApiResponse(description="The lease expired and its item went to another reviewer, or it ended."),
}


class LeaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Lease
        fields = ["id", "item", "created_at", "expires_at"]
        read_only_fields = fields


class LeasedItemSerializer(serializers.Serializer):
    lease = LeaseSerializer()
    item = serializers.SerializerMethodField()

    def get_item(self, data: dict[str, Any]) -> dict[str, Any]:
        item: Item = data["item"]
        return {
            "id": item.pk,
            "text": item.text,
            "language": item.language,
            "metadata": item.metadata,
            "overlap_target": item.overlap_target,
            "is_random_pick": item.is_random_pick,
            "ranked_by_version": item.ranked_by_version,
        }


class AnnotationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Annotation
        fields = ["id", "item", "label", "note", "unclear", "seconds_spent", "lease", "client_key", "created_at"]
        read_only_fields = fields


class AnnotationCreateSerializer(StrictSerializer):
    item = serializers.IntegerField(min_value=1)
    label = serializers.CharField(max_length=100, help_text="A label id or name of this project.")
    lease = serializers.UUIDField()
    note = serializers.CharField(max_length=5_000, required=False, allow_blank=True, default="")
    unclear = serializers.BooleanField(required=False, default=False)
    seconds_spent = serializers.FloatField(required=False, allow_null=True, default=None)
    client_key = serializers.CharField(max_length=100, required=False, allow_null=True, default=None)
    suggested_label = serializers.IntegerField(required=False, allow_null=True, default=None)
    suggested_confidence = serializers.FloatField(required=False, allow_null=True, default=None)
    suggested_by_version = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)


class SkipSerializer(StrictSerializer):
    lease = serializers.UUIDField()
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


def _leased(lease: Lease) -> dict[str, Any]:
    return LeasedItemSerializer({"lease": lease, "item": Item.objects.get(pk=lease.item_id)}).data


def _label_ref(project: Project, value: str) -> str | int:
    """Accept a label by id or by name; an unknown one goes on to the service, which names the valid ones."""
    if value.isdigit():
        return int(value)
    found = project.labels.filter(name=value).values_list("pk", flat=True).first()
    return found if found is not None else value


def _suggestion(data: dict[str, Any]) -> Suggestion | None:
    if data["suggested_label"] is None:
        return None
    confidence = data["suggested_confidence"]
    return Suggestion(
        label_id=data["suggested_label"],
        confidence=float(confidence) if confidence is not None else 0.0,
        version_number=data["suggested_by_version"] or 0,
    )


class QueueNextView(APIView):
    @extend_schema(
        request=None,
        responses={200: LeasedItemSerializer, 204: OpenApiResponse(description="Nothing left to label."), **ERRORS},
        summary="Lease the next item to label",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        lease = queue_next(project=project, user=request.user)
        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(_leased(lease))


class AnnotationCreateView(APIView):
    @extend_schema(
        request=AnnotationCreateSerializer,
        responses={201: AnnotationSerializer, **ERRORS},
        summary="Submit a label for a leased item (idempotent on client_key)",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        serializer = AnnotationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        item = Item.objects.filter(project=project, pk=data["item"]).first()
        if item is None:
            raise NotFound(f"Item {data['item']} not found in this project.")
        annotation = annotation_submit(
            project=project,
            user=request.user,
            item=item,
            label=_label_ref(project, data["label"]),
            lease_id=data["lease"],
            note=data["note"],
            unclear=data["unclear"],
            seconds_spent=data["seconds_spent"],
            client_key=data["client_key"],
            suggestion=_suggestion(data),
        )
        return Response(AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED)


class QueueSkipView(APIView):
    @extend_schema(request=SkipSerializer, responses={204: None, **ERRORS}, summary="Skip the leased item")
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        serializer = SkipSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        queue_skip(
            project=project,
            user=request.user,
            lease_id=serializer.validated_data["lease"],
            reason=serializer.validated_data["reason"],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class LeaseHeartbeatView(APIView):
    @extend_schema(request=None, responses={200: LeaseSerializer, **ERRORS}, summary="Extend a lease")
    def post(self, request: Request, slug: str, lease_id: uuid.UUID) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        lease = Lease.objects.filter(pk=lease_id, project=project).first()
        if lease is None:
            raise NotFound("Lease not found: it belongs to someone else or never existed.")
        return Response(LeaseSerializer(lease_heartbeat(lease=lease, user=request.user)).data)

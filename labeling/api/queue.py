"""Queue endpoints (reviewers and up): next item, submit, skip, undo, lease heartbeat.

Every answer that hands out work carries the reviewer's held items: ``next`` (the item to label now)
and, when the client asked to ``prefetch``, the one behind it, each with the model's suggestion and
the queue's staleness, so a client renders the following item without another round trip.
"""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.serializers import StrictSerializer
from labeling.models import Annotation, Item, Lease, Project, ProjectCounts, Skip
from labeling.selectors import project_for_user
from labeling.services.queue import (
    MAX_HELD,
    Suggestion,
    annotation_submit,
    annotation_undo,
    lease_heartbeat,
    queue_hold,
    queue_skip,
)
from webapp.errors import NotFound

ERRORS = {
    400: OpenApiResponse(description="Invalid input: `error.details` names each bad field."),
    404: OpenApiResponse(description="No such project, item, lease or annotation, or you are not a member."),
    409: OpenApiResponse(description="The lease expired and its item went to another reviewer, or it ended."),
}
PREFETCH_HELP = f"Also hold the item after the next one (at most {MAX_HELD} leases), returned as `prefetched`."


class LeaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Lease
        fields = ["id", "item", "created_at", "expires_at"]
        read_only_fields = fields


class QueueItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = ["id", "text", "language", "metadata", "overlap_target", "is_random_pick", "ranked_by_version"]
        read_only_fields = fields


class QueueSuggestionSerializer(serializers.Serializer):
    label = serializers.IntegerField(help_text="The suggested label's id.")
    label_name = serializers.CharField()
    confidence = serializers.FloatField(allow_null=True, help_text="Calibrated probability of that label.")
    version = serializers.IntegerField(allow_null=True, help_text="The model version number that scored the item.")


class StalenessSerializer(serializers.Serializer):
    ranked_by_version = serializers.IntegerField(allow_null=True, help_text="The model version that ranked the item.")
    labels_since_training = serializers.IntegerField(help_text="Gold labels added since the last training run.")


class HeldItemSerializer(serializers.Serializer):
    lease = LeaseSerializer()
    item = QueueItemSerializer()
    suggestion = QueueSuggestionSerializer(allow_null=True)
    staleness = StalenessSerializer()


class QueueNextSerializer(HeldItemSerializer):
    prefetched = HeldItemSerializer(allow_null=True)
    remaining = serializers.IntegerField(help_text="Items queued and not yet handed to anyone.")


class HeldSerializer(serializers.Serializer):
    next = HeldItemSerializer(allow_null=True, help_text="The item to label now; null when the queue is empty.")
    prefetched = HeldItemSerializer(allow_null=True)
    remaining = serializers.IntegerField(help_text="Items queued and not yet handed to anyone.")


class AnnotationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Annotation
        fields = ["id", "item", "label", "note", "unclear", "seconds_spent", "lease", "client_key", "created_at"]
        read_only_fields = fields


class SubmittedSerializer(AnnotationSerializer, HeldSerializer):
    class Meta(AnnotationSerializer.Meta):
        fields = [*AnnotationSerializer.Meta.fields, "next", "prefetched", "remaining"]


class SkipRowSerializer(serializers.ModelSerializer):
    class Meta:
        model = Skip
        fields = ["id", "item", "reason", "created_at"]
        read_only_fields = fields


class SkippedSerializer(SkipRowSerializer, HeldSerializer):
    class Meta(SkipRowSerializer.Meta):
        fields = [*SkipRowSerializer.Meta.fields, "next", "prefetched", "remaining"]


class UndoneSerializer(QueueNextSerializer):
    retracted = serializers.IntegerField(help_text="The annotation undone; a retract row now points at it.")


class PrefetchSerializer(StrictSerializer):
    prefetch = serializers.BooleanField(required=False, default=False, help_text=PREFETCH_HELP)


class AnnotationCreateSerializer(PrefetchSerializer):
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


class SkipSerializer(PrefetchSerializer):
    lease = serializers.UUIDField()
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


def _validated(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def held_payload(project: Project, leases: list[Lease]) -> dict[str, Any]:
    """The reviewer's held items, oldest first, as ``next`` and ``prefetched``, and the queue's size."""
    # queue_hold hands its leases back with their items loaded; only others (the page's own read) are fetched.
    items = {lease.item_id: lease.item for lease in leases if Lease.item.is_cached(lease)}
    missing = [lease.item_id for lease in leases if lease.item_id not in items]
    if missing:
        items.update(Item.objects.select_related("predicted_label").in_bulk(missing))
    queued, since = ProjectCounts.objects.filter(project=project).values_list(
        "queued", "project__labels_since_training"
    ).first() or (0, 0)
    entries = [_entry(lease, items[lease.item_id], since) for lease in leases if lease.item_id in items]
    return {
        "next": entries[0] if entries else None,
        "prefetched": entries[1] if len(entries) > 1 else None,
        "remaining": queued,
    }


def _entry(lease: Lease, item: Item, labels_since_training: int) -> dict[str, Any]:
    label = item.predicted_label
    suggestion = None
    if label is not None:
        suggestion = {
            "label": label.pk,
            "label_name": label.name,
            "confidence": item.predicted_confidence,
            "version": item.predicted_by_version,
        }
    staleness = {"ranked_by_version": item.ranked_by_version, "labels_since_training": labels_since_training}
    return HeldItemSerializer({"lease": lease, "item": item, "suggestion": suggestion, "staleness": staleness}).data


def _count(prefetch: bool) -> int:
    return MAX_HELD if prefetch else 1


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
        request=PrefetchSerializer,
        responses={200: QueueNextSerializer, 204: OpenApiResponse(description="Nothing left to label."), **ERRORS},
        summary="Lease the next item to label (and, with prefetch, the one after it)",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        data = _validated(PrefetchSerializer, request)
        held = held_payload(project, queue_hold(project=project, user=request.user, count=_count(data["prefetch"])))
        if held["next"] is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response({**held["next"], "prefetched": held["prefetched"], "remaining": held["remaining"]})


class AnnotationCreateView(APIView):
    @extend_schema(
        request=AnnotationCreateSerializer,
        responses={201: SubmittedSerializer, **ERRORS},
        summary="Submit a label for a leased item and get the next item (idempotent on client_key)",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        data = _validated(AnnotationCreateSerializer, request)
        annotation = annotation_submit(
            project=project,
            user=request.user,
            item=data["item"],  # the service locks it and answers 404 for an item outside the project
            label=_label_ref(project, data["label"]),
            lease_id=data["lease"],
            note=data["note"],
            unclear=data["unclear"],
            seconds_spent=data["seconds_spent"],
            client_key=data["client_key"],
            suggestion=_suggestion(data),
        )
        # The label is committed above: topping up the reviewer's leases is a separate, later step.
        held = queue_hold(project=project, user=request.user, count=_count(data["prefetch"]))
        body = {**AnnotationSerializer(annotation).data, **held_payload(project, held)}
        return Response(body, status=status.HTTP_201_CREATED)


class QueueSkipView(APIView):
    @extend_schema(
        request=SkipSerializer,
        responses={200: SkippedSerializer, **ERRORS},
        summary="Skip the leased item (optional reason) and get the next item",
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        data = _validated(SkipSerializer, request)
        skip = queue_skip(project=project, user=request.user, lease_id=data["lease"], reason=data["reason"])
        held = queue_hold(project=project, user=request.user, count=_count(data["prefetch"]))
        return Response({**SkipRowSerializer(skip).data, **held_payload(project, held)})


class AnnotationUndoView(APIView):
    @extend_schema(
        request=PrefetchSerializer,
        responses={200: UndoneSerializer, **ERRORS},
        summary="Undo your latest submission: a retract row, and the item leased back to you",
    )
    def post(self, request: Request, slug: str, annotation_id: int) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        data = _validated(PrefetchSerializer, request)
        annotation = Annotation.objects.filter(project=project, pk=annotation_id, kind=Annotation.Kind.LABEL).first()
        if annotation is None:
            raise NotFound("Annotation not found.")
        lease = annotation_undo(project=project, user=request.user, annotation=annotation)
        held = queue_hold(project=project, user=request.user, count=_count(data["prefetch"]))
        # The undone item is the one to label now, whatever else the reviewer holds.
        ordered = [lease, *(other for other in held if other.pk != lease.pk)]
        found = held_payload(project, ordered)
        body = {**found["next"], "prefetched": found["prefetched"], "remaining": found["remaining"]}
        return Response({**body, "retracted": annotation.pk})


class LeaseHeartbeatView(APIView):
    @extend_schema(request=None, responses={200: LeaseSerializer, **ERRORS}, summary="Extend a lease")
    def post(self, request: Request, slug: str, lease_id: uuid.UUID) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        lease = Lease.objects.filter(pk=lease_id, project=project).first()
        if lease is None:
            raise NotFound("Lease not found: it belongs to someone else or never existed.")
        return Response(LeaseSerializer(lease_heartbeat(lease=lease, user=request.user)).data)

"""Agreement figures (members) and the review queue with adjudication (owners and admins)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.serializers import StrictSerializer
from labeling.models import Annotation, Item, Role
from labeling.selectors import project_for_user
from labeling.services.agreement import project_agreement_cached
from labeling.services.review import review_cards, review_queryset, review_resolve


class FigureSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="The coefficient; null when undefined (no variation).")
    observed_agreement = serializers.FloatField(allow_null=True, help_text="Raw share of agreeing ratings.")
    n_items = serializers.IntegerField()
    n_annotations = serializers.IntegerField()
    few_items = serializers.BooleanField(help_text="Fewer items than a figure needs to be read with confidence.")


class LabelAgreementSerializer(serializers.Serializer):
    label_id = serializers.IntegerField()
    label = serializers.CharField(source="name")
    kappa = FigureSerializer(help_text="One-vs-rest Cohen's kappa on the items exactly two reviewers labeled.")
    alpha = FigureSerializer(help_text="One-vs-rest Krippendorff's alpha on the items two or more reviewers labeled.")
    n_ratings = serializers.IntegerField(help_text="Ratings with this label among the overlap items.")


class ReviewerGoldSerializer(serializers.Serializer):
    reviewer = serializers.CharField(source="username")
    annotations = serializers.IntegerField(source="n_annotations", help_text="Effective annotations.")
    gold_items = serializers.IntegerField(
        source="n_gold", help_text="Of those, on gold items (gold resting only on their own label excluded)."
    )
    matches = serializers.IntegerField()
    agreement = serializers.FloatField(source="share", allow_null=True, help_text="matches / gold_items.")


class PairAgreementSerializer(serializers.Serializer):
    reviewers = serializers.SerializerMethodField()
    kappa = FigureSerializer()

    @extend_schema_field(serializers.ListField(child=serializers.CharField(), min_length=2, max_length=2))
    def get_reviewers(self, pair: Any) -> list[str]:
        return [pair.reviewer_a, pair.reviewer_b]


class ProjectAgreementSerializer(serializers.Serializer):
    annotations = serializers.IntegerField(source="n_annotations", help_text="Effective annotations in the project.")
    overlap_items = serializers.IntegerField(source="n_overlap_items", help_text="Items two or more reviewers labeled.")
    kappa = FigureSerializer(help_text="Cohen's kappa on the items exactly two reviewers labeled (first vs second).")
    alpha = FigureSerializer(help_text="Krippendorff's alpha (nominal) on the items two or more reviewers labeled.")
    per_label = LabelAgreementSerializer(many=True)
    reviewers = ReviewerGoldSerializer(many=True)
    pairs = PairAgreementSerializer(many=True)


class AgreementView(APIView):
    @extend_schema(
        responses={200: ProjectAgreementSerializer, 404: OpenApiResponse(description="No such project.")},
        summary="Agreement figures: project, per label, per reviewer pair, per reviewer against gold (any member)",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_user(user=request.user, slug=slug)
        return Response(ProjectAgreementSerializer(project_agreement_cached(project=project)).data)


class ReviewAnnotationSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="user.username")
    label = serializers.CharField(source="label.name")
    label_id = serializers.IntegerField()

    class Meta:
        model = Annotation
        fields = ["id", "reviewer", "label", "label_id", "note", "unclear", "seconds_spent", "created_at"]
        read_only_fields = fields


class SuggestionSerializer(serializers.Serializer):
    label = serializers.CharField(source="predicted_label.name")
    label_id = serializers.IntegerField(source="predicted_label_id")
    confidence = serializers.FloatField(source="predicted_confidence", allow_null=True)
    version = serializers.IntegerField(source="predicted_by_version", allow_null=True)


class ReviewItemSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="item.pk")
    text = serializers.CharField(source="item.text")
    language = serializers.CharField(source="item.language")
    overlap_target = serializers.IntegerField(source="item.overlap_target")
    reasons = serializers.ListField(child=serializers.ChoiceField(choices=["disagreement", "unclear"]))
    suggestion = serializers.SerializerMethodField()
    annotations = ReviewAnnotationSerializer(many=True)

    @extend_schema_field(SuggestionSerializer(allow_null=True))
    def get_suggestion(self, card: Any) -> dict[str, Any] | None:
        item: Item = card.item
        return SuggestionSerializer(item).data if item.predicted_label_id else None


class ReviewCursorPagination(CursorPagination):
    ordering = "id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class ReviewListView(generics.ListAPIView):
    serializer_class = ReviewItemSerializer
    pagination_class = ReviewCursorPagination

    def get_queryset(self):
        project = project_for_user(user=self.request.user, slug=self.kwargs["slug"], min_role=Role.OWNER)
        return review_queryset(project=project)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ReviewItemSerializer(review_cards(page or []), many=True).data)

    @extend_schema(
        responses={
            200: ReviewItemSerializer(many=True),
            403: OpenApiResponse(description="Reviewers may not adjudicate."),
            404: OpenApiResponse(description="No such project, or you are not a member."),
        },
        summary="List the items in review (disagreements, unclear flags) with their annotations (owners, admins)",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ResolveSerializer(StrictSerializer):
    label = serializers.CharField(max_length=100, help_text="A label of this project, by name or id.")
    note = serializers.CharField(max_length=5_000, required=False, allow_blank=True, default="")


class ResolutionSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="user.username")
    label = serializers.CharField(source="label.name")
    label_id = serializers.IntegerField()

    class Meta:
        model = Annotation
        fields = ["id", "item", "kind", "reviewer", "label", "label_id", "note", "created_at"]
        read_only_fields = fields


class ResolveView(APIView):
    @extend_schema(
        request=ResolveSerializer,
        responses={
            201: ResolutionSerializer,
            400: OpenApiResponse(description="Unknown label or invalid body; `error.details` names the field."),
            403: OpenApiResponse(description="Reviewers may not adjudicate."),
            404: OpenApiResponse(description="No such project or item, or you are not a member."),
            409: OpenApiResponse(description="The item is not in review."),
        },
        summary="Adjudicate an item in review: its gold label becomes the given label (owners, admins)",
    )
    def post(self, request: Request, slug: str, item_id: int) -> Response:
        project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
        serializer = ResolveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # A JSON number is a label id; a string is a name first (see ``label_reference``).
        raw = request.data.get("label")
        label = raw if isinstance(raw, int) else serializer.validated_data["label"]
        resolution = review_resolve(
            project=project, user=request.user, item_id=item_id, label=label, note=serializer.validated_data["note"]
        )
        return Response(ResolutionSerializer(resolution).data, status=status.HTTP_201_CREATED)

"""``GET /api/v1/projects/{slug}/items``: filtered items, cursor-paginated by id."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.pagination import CursorPagination

from labeling.item_queries import NO_LABEL, PAGE_SIZE, items_filtered, parse_item_filters
from labeling.models import Item
from labeling.selectors import project_for_user


class ItemSerializer(serializers.ModelSerializer):
    gold_label = serializers.CharField(source="gold_label.name", read_only=True, allow_null=True, default=None)
    predicted_label = serializers.CharField(
        source="predicted_label.name",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="The latest pool scoring's suggestion.",
    )

    class Meta:
        model = Item
        fields = [
            "id",
            "external_id",
            "text",
            "language",
            "split",
            "status",
            "gold_label",
            "predicted_label",
            "predicted_confidence",
            "predicted_by_version",
            "metadata",
            "created_at",
        ]
        read_only_fields = fields


class ItemCursorPagination(CursorPagination):
    """Keyset pages by id: ``WHERE id > cursor ORDER BY id LIMIT n``, never OFFSET or COUNT(*)."""

    ordering = "id"
    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = 500


FILTER_PARAMETERS = [
    OpenApiParameter("status", OpenApiTypes.STR, enum=Item.Status.values, description="Item status."),
    OpenApiParameter("label", OpenApiTypes.STR, description=f"Gold label name, or `{NO_LABEL}` for no gold label."),
    OpenApiParameter("language", OpenApiTypes.STR, description="Language code, e.g. `en`."),
    OpenApiParameter("split", OpenApiTypes.STR, enum=Item.Split.values),
    OpenApiParameter("q", OpenApiTypes.STR, description="Case-insensitive substring of the text."),
    OpenApiParameter(
        "min_confidence",
        OpenApiTypes.NUMBER,
        description="Suggestion confidence at least this (0-1, inclusive); leaves out items without a suggestion.",
    ),
    OpenApiParameter(
        "max_confidence",
        OpenApiTypes.NUMBER,
        description="Suggestion confidence at most this (0-1, inclusive; not below `min_confidence`).",
    ),
]


class ItemListView(generics.ListAPIView):
    serializer_class = ItemSerializer
    pagination_class = ItemCursorPagination

    def get_queryset(self):
        project = project_for_user(user=self.request.user, slug=self.kwargs["slug"])
        filters = parse_item_filters(project=project, params=self.request.query_params)
        return items_filtered(project=project, filters=filters)

    @extend_schema(
        parameters=FILTER_PARAMETERS,
        responses={
            200: ItemSerializer(many=True),
            400: OpenApiResponse(description="A filter is invalid; `error.details` names it."),
            404: OpenApiResponse(description="No such project, or you are not a member."),
        },
        summary="List a project's items (any member)",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

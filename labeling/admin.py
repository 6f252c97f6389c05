"""Django admin for operators: read-mostly views of projects, members, datasets and items."""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from django.utils.text import Truncator

from labeling.models import Dataset, Item, Label, Membership, Project, ProjectCounts

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Count at most ``COUNT_CAP + 1`` rows: the admin's page count on a million items stays cheap."""

    @cached_property
    def count(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable by staff with the view permission; written only by the application's services."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class LabelInline(admin.TabularInline):
    model = Label
    extra = 0
    fields = ["order", "name", "hotkey", "color", "description"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "task_type", "al_strategy", "created_by", "created_at"]
    list_filter = ["task_type", "al_strategy"]
    search_fields = ["name", "slug"]
    raw_id_fields = ["created_by"]
    readonly_fields = ["slug", "task_type", "created_by", "created_at", "updated_at"]
    inlines = [LabelInline, MembershipInline]

    def has_add_permission(self, request) -> bool:
        return False  # projects are created through the app, which also creates labels and counters


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["project__slug", "user__username"]
    raw_id_fields = ["project", "user"]
    list_select_related = ["project", "user"]


@admin.register(ProjectCounts)
class ProjectCountsAdmin(ReadOnlyAdmin):
    list_display = ["project", "items", "unlabeled", "queued", "leased", "labeled", "in_review", "gold", "updated_at"]
    list_select_related = ["project"]
    search_fields = ["project__slug"]


@admin.register(Dataset)
class DatasetAdmin(ReadOnlyAdmin):
    list_display = ["name", "project", "format", "source", "rows_total", "items_created", "gold_labels", "created_at"]
    list_filter = ["format", "source"]
    search_fields = ["name", "project__slug", "file_sha256"]
    raw_id_fields = ["project", "job", "created_by"]
    list_select_related = ["project"]
    date_hierarchy = "created_at"


@admin.register(Item)
class ItemAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "short_text", "status", "split", "language", "gold_label", "created_at"]
    list_filter = ["status", "split", "gold_source"]
    # Exact id lookups stay index-only; text search uses the trigram index on PostgreSQL.
    search_fields = ["=external_id", "=content_hash", "text"]
    raw_id_fields = ["project", "dataset", "gold_label"]
    list_select_related = ["project", "gold_label"]
    paginator = CappedCountPaginator
    show_full_result_count = False

    @admin.display(description="text")
    def short_text(self, item: Item) -> str:
        return Truncator(item.text).chars(80)

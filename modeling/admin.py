"""Django admin for operators: model versions, read-mostly (statuses move through the services)."""

from __future__ import annotations

from django.contrib import admin

from modeling.models import ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "project", "number", "status", "base_checkpoint", "created_by", "created_at"]
    list_filter = ["status"]
    search_fields = ["project__slug", "base_checkpoint"]
    raw_id_fields = ["project", "parent", "job", "created_by"]
    list_select_related = ["project", "created_by"]
    readonly_fields = [
        "project",
        "number",
        "status",
        "parent",
        "base_checkpoint",
        "train_config",
        "metrics",
        "artifact_path",
        "job",
        "created_by",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

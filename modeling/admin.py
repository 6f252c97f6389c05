"""Django admin for operators: model versions and retraining chains, read-mostly (states move via services)."""

from __future__ import annotations

from django.contrib import admin

from modeling.models import ModelVersion, Retraining


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


@admin.register(Retraining)
class RetrainingAdmin(admin.ModelAdmin):
    """Retraining chains, read-only: they move through modeling.services.retraining only."""

    list_display = ["__str__", "project", "trigger", "status", "version", "requests", "created_at", "finished_at"]
    list_filter = ["status", "trigger"]
    search_fields = ["project__slug"]
    list_select_related = ["project", "version"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

"""Django admin for operators: background jobs, read-only (cancel them from the job page)."""

from __future__ import annotations

from django.contrib import admin

from webapp.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "project", "created_by", "progress", "created_at", "finished_at"]
    list_filter = ["kind", "status", "cancel_requested"]
    search_fields = ["=id", "project__slug", "created_by__username", "celery_task_id"]
    raw_id_fields = ["project", "created_by"]
    list_select_related = ["project", "created_by"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

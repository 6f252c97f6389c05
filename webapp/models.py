"""Cross-cutting models: the ``Job`` behind every long task."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F
from django.utils import timezone


class JobCancelled(Exception):
    """Raised inside a running task when its job was cancelled; the task stops cleanly."""


class Job(models.Model):
    class Kind(models.TextChoices):
        IMPORT = "import", "Import"
        EXPORT = "export", "Export"
        TRAIN = "train", "Training"
        SCORE = "score", "Pool scoring"
        COMPARE = "compare", "Comparison"
        DRIFT = "drift", "Drift"
        MAINTENANCE = "maintenance", "Maintenance"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    project = models.ForeignKey(
        "labeling.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    params = models.JSONField(default=dict, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "-created_at"], name="job_project_recent")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} job {self.id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        return ((self.finished_at or timezone.now()) - self.started_at).total_seconds()

    def mark_running(self) -> None:
        self.status = self.Status.RUNNING
        self.started_at = timezone.now()
        self.attempts = F("attempts") + 1
        self.save(update_fields=["status", "started_at", "attempts"])
        self.refresh_from_db(fields=["attempts"])

    def set_progress(self, fraction: float, message: str = "") -> None:
        """Record progress; raise ``JobCancelled`` if a cancel was requested meanwhile."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        updated = Job.objects.filter(pk=self.pk, cancel_requested=False).update(
            progress=fraction, message=message[:500]
        )
        if not updated:
            raise JobCancelled(str(self.pk))
        self.progress, self.message = fraction, message[:500]

    def mark_succeeded(self, result: dict[str, Any] | None = None, message: str = "Done") -> None:
        self.status = self.Status.SUCCEEDED
        self.progress = 1.0
        self.message = message[:500]
        self.result = result or {}
        self.finished_at = timezone.now()
        self.save(update_fields=["status", "progress", "message", "result", "finished_at"])

    def mark_failed(self, error: str, *, result: dict[str, Any] | None = None) -> None:
        self.status = self.Status.FAILED
        self.error = error
        self.message = error.splitlines()[0][:500] if error else "Failed"
        if result is not None:
            self.result = result
        self.finished_at = timezone.now()
        self.save(update_fields=["status", "error", "message", "result", "finished_at"])

    def mark_cancelled(self) -> None:
        self.status = self.Status.CANCELLED
        self.message = "Cancelled"
        self.finished_at = timezone.now()
        self.save(update_fields=["status", "message", "finished_at"])

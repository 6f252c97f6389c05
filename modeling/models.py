"""Model versions trained for a project, and their predictions on the project's pool."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        TRAINING = "training", "Training"
        FAILED = "failed", "Failed"
        CANDIDATE = "candidate", "Candidate"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        PRODUCTION = "production", "Production"
        RETIRED = "retired", "Retired"

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="model_versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    base_checkpoint = models.CharField(max_length=500)
    train_config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    artifact_path = models.CharField(max_length=1000, blank=True)
    # sha256 of manifest.json, kept outside the artifact: a rewrite that recomputes every hash inside
    # the directory is still caught when the artifact is loaded against this value.
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    temperature = models.FloatField(null=True, blank=True)
    # Training curve as it happens: [{"step", "epoch", "loss", "lr", "eval": {...} | null, "t"}, ...] (throttled).
    history = models.JSONField(default=list, blank=True)
    # What the version was trained on: {"train": n, "eval": n, "snapshot": sha256, "labels": {...}}.
    data = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    job = models.ForeignKey("webapp.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project", "-number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="modelversion_unique_number")]

    def __str__(self) -> str:
        return f"{self.project} v{self.number}"

    def mark_training(self) -> None:
        self.status = self.Status.TRAINING
        self.started_at = timezone.now()
        self.error = ""
        self.history = []
        self.save(update_fields=["status", "started_at", "error", "history", "updated_at"])

    def mark_candidate(
        self, *, metrics: dict[str, Any], artifact_path: str, manifest_sha256: str, temperature: float
    ) -> None:
        self.status = self.Status.CANDIDATE
        self.metrics = metrics
        self.artifact_path = artifact_path
        self.manifest_sha256 = manifest_sha256
        self.temperature = temperature
        self.finished_at = timezone.now()
        self.save(
            update_fields=[
                "status",
                "metrics",
                "artifact_path",
                "manifest_sha256",
                "temperature",
                "finished_at",
                "updated_at",
            ]
        )

    def mark_failed(self, reason: str) -> None:
        self.status = self.Status.FAILED
        self.error = reason
        self.finished_at = timezone.now()
        self.save(update_fields=["status", "error", "finished_at", "updated_at"])


class Prediction(models.Model):
    """One model version's calibrated prediction for one item (pool scoring)."""

    # No single-column FK indexes: the composite indexes below start with each of these columns.
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="predictions", db_index=False
    )
    item = models.ForeignKey("labeling.Item", on_delete=models.CASCADE, related_name="predictions", db_index=False)
    label = models.ForeignKey("labeling.Label", on_delete=models.CASCADE, related_name="+")
    # Calibrated probabilities in the project's label order (Label.order, then id).
    probs = models.JSONField()
    confidence = models.FloatField(help_text="Max calibrated probability.")
    margin = models.FloatField(help_text="Top-1 minus top-2 probability.")
    entropy = models.FloatField()
    # Mean-pooled last hidden state as little-endian float16 bytes (768 B for a 384-dim encoder).
    embedding = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_version", "item"], name="prediction_unique_item")]
        # The labeling queue ranks one version's predictions by uncertainty.
        indexes = [
            models.Index(fields=["model_version", "margin"], name="prediction_margin"),
            models.Index(fields=["model_version", "entropy"], name="prediction_entropy"),
            models.Index(fields=["model_version", "confidence"], name="prediction_confidence"),
            models.Index(fields=["item", "-model_version"], name="prediction_item_latest"),
        ]

    def __str__(self) -> str:
        return f"prediction of {self.model_version} for item {self.item_id}"

"""Model versions trained for a project, their predictions on the pool, retraining runs and the stop set."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
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
    # What the version was trained on: {"train": n (gold train split + labeled pool), "eval": n, "snapshot": sha256,
    # "label_counts": {...}, "new_labels": n (taken off Project.labels_since_training when its rows were read)}.
    data = models.JSONField(default=dict, blank=True)
    # Predicted label id per stop-set item, {"<item id>": <label id>}, written by pool scoring: successive
    # versions' agreement on the fixed stop set is the "stabilizing predictions" stopping signal.
    stop_predictions = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    job = models.ForeignKey("webapp.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Null for versions the system started (automatic retraining).
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


class Retraining(models.Model):
    """One retraining chain of a project (train, evaluate, calibrate, score the pool, refresh the queue).

    ``running`` is the chain in flight; ``pending`` is the one follow-up that triggers arriving during it
    coalesce into. The partial unique constraints make "at most one of each per project" a database
    guarantee, whatever races the services' row lock would miss.
    """

    class Trigger(models.TextChoices):
        AUTO = "auto", "Automatic"
        MANUAL = "manual", "Manual"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    # No single-column index on project: the index and both constraints below start with it.
    project = models.ForeignKey(
        "labeling.Project", on_delete=models.CASCADE, related_name="retrainings", db_index=False
    )
    trigger = models.CharField(max_length=8, choices=Trigger.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    version = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="retraining"
    )
    # The first person who asked; null for automatic runs (the system).
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requests = models.PositiveIntegerField(default=1, help_text="Triggers coalesced into this run.")
    # Project.labels_since_training when the chain started; consumed on a failure before training read it.
    labels_at_start = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["project"], condition=Q(status="running"), name="retraining_one_running"),
            models.UniqueConstraint(fields=["project"], condition=Q(status="pending"), name="retraining_one_pending"),
        ]
        indexes = [models.Index(fields=["project", "-created_at"], name="retraining_recent")]

    def __str__(self) -> str:
        return f"{self.get_trigger_display()} retraining of {self.project} ({self.status})"

    def mark_running(self, *, version: ModelVersion, labels_at_start: int) -> None:
        self.status = self.Status.RUNNING
        self.version = version
        self.labels_at_start = labels_at_start
        self.started_at = timezone.now()
        self.save()

    def mark_finished(self, status: str, error: str = "") -> None:
        self.status = status
        self.error = error
        self.finished_at = timezone.now()
        self.save(update_fields=["status", "error", "finished_at"])


class StopSet(models.Model):
    """A project's fixed stop set, chosen once from the unlabeled pool and predicted by every scored version.

    Bloodgood & Vijay-Shanker (2009), "A method for stopping active learning based on stabilizing
    predictions": the set never changes, so successive versions' predictions on it are comparable, and
    its items are predicted even after they get labeled. This row is the "chosen once" guarantee: its
    primary key is the project, so a second chooser fails on the insert instead of choosing again.
    """

    project = models.OneToOneField("labeling.Project", on_delete=models.CASCADE, primary_key=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"stop set of project {self.project_id}"


class StopSetItem(models.Model):
    """One item of a project's stop set."""

    # No single-column index on stop_set: the unique constraint starts with it.
    stop_set = models.ForeignKey(StopSet, on_delete=models.CASCADE, related_name="items", db_index=False)
    item = models.ForeignKey("labeling.Item", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stop_set", "item"], name="stopset_unique_item")]

    def __str__(self) -> str:
        return f"stop-set item {self.item_id} of project {self.stop_set_id}"

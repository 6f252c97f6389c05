"""Model versions and their pool predictions, retraining runs, the stop set, releases and the prediction log.

Releases: gates, approvals, aliases and their append-only audit trail. The prediction log is written
by the model server; feedback attaches true labels to it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
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


# --- Releases: gates, approvals, aliases and their audit trail -----------------------------------


class ReleasePolicy(models.Model):
    """A project's release gates and serving settings; owners and admins edit them.

    A gate left empty (null) is off. Regressions are in points (hundredths of a score) against the
    version in production, on the same frozen eval split.
    """

    project = models.OneToOneField(
        "labeling.Project", on_delete=models.CASCADE, primary_key=True, related_name="release_policy"
    )
    min_macro_f1 = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    max_regression_points = models.FloatField(null=True, blank=True, default=1.0, validators=[MinValueValidator(0.0)])
    max_class_regression_points = models.FloatField(
        null=True, blank=True, default=5.0, validators=[MinValueValidator(0.0)]
    )
    max_language_regression_points = models.FloatField(
        null=True, blank=True, default=5.0, validators=[MinValueValidator(0.0)]
    )
    max_ece = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    min_slice_items = models.PositiveIntegerField(default=30, help_text="Smaller classes/languages never block.")
    required_approvals = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    two_person_rule = models.BooleanField(
        default=False, help_text="The person who trained a version cannot approve it."
    )
    # Serving.
    canary_percent = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(100.0)])
    shadow_enabled = models.BooleanField(default=False)
    max_texts_per_request = models.PositiveIntegerField(
        default=64, validators=[MinValueValidator(1), MaxValueValidator(1024)]
    )
    max_text_chars = models.PositiveIntegerField(
        default=20_000, validators=[MinValueValidator(1), MaxValueValidator(1_000_000)]
    )
    rate_limit_per_minute = models.PositiveIntegerField(default=600, validators=[MinValueValidator(1)])
    quantize_int8 = models.BooleanField(default=False, help_text="CPU serving with int8 dynamic quantization.")
    audit_share = models.FloatField(
        default=0.01,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of production predictions sent to the labeling queue as unbiased audit items.",
    )
    log_texts = models.BooleanField(
        default=False, help_text="Store prediction texts in the log (redacted). Off: only their sha256."
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"release policy of project {self.project_id}"


class Alias(models.Model):
    """Which version a project's ``production``, ``canary`` or ``shadow`` name points at now."""

    class Name(models.TextChoices):
        PRODUCTION = "production", "Production"
        CANARY = "canary", "Canary"
        SHADOW = "shadow", "Shadow"

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="aliases", db_index=False)
    name = models.CharField(max_length=10, choices=Name.choices)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="alias_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} -> version {self.version_id} of project {self.project_id}"


class ReleaseEvent(models.Model):
    """Append-only audit record of a release action: a status change, an alias move, an approval.

    ``from_value``/``to_value`` hold statuses for status changes and version numbers for alias moves
    (empty when the alias did not exist or was removed). Nothing updates or deletes these rows.
    """

    class Kind(models.TextChoices):
        STATUS = "status", "Status change"
        ALIAS = "alias", "Alias move"
        APPROVAL = "approval", "Approval"
        OVERRIDE = "override", "Gate override"

    project = models.ForeignKey(
        "labeling.Project", on_delete=models.CASCADE, related_name="release_events", db_index=False
    )
    version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="release_events"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    subject = models.CharField(max_length=20, blank=True, help_text="The alias name for alias moves.")
    from_value = models.CharField(max_length=20, blank=True)
    to_value = models.CharField(max_length=20, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    comment = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True, help_text="Gate verdicts, override reasons.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"], name="release_event_recent")]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} {self.from_value}->{self.to_value} ({self.project_id})"


class Approval(models.Model):
    """One person's approval of a candidate version (several when the policy asks for more)."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="approvals", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    comment = models.TextField(blank=True)
    override_reason = models.TextField(blank=True, help_text="An admin's written reason for passing failed gates.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "user"], name="approval_unique_user")]

    def __str__(self) -> str:
        return f"approval of version {self.version_id} by user {self.user_id}"


class Comparison(models.Model):
    """A candidate scored beside production on the same frozen eval split (computed by a job)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+", db_index=False)
    candidate = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="comparisons")
    production = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    job = models.ForeignKey("webapp.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    results = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["project", "-created_at"], name="comparison_recent")]

    def __str__(self) -> str:
        return f"comparison of version {self.candidate_id} with {self.production_id}"


# --- Serving: the prediction log and feedback ------------------------------------------------------


class PredictionLog(models.Model):
    """One served prediction, written in bulk by the model server off the request path.

    The id is the one the API returned to the caller (feedback refers to it). ``text`` is stored only
    when the project opted in, and then redacted; ``text_sha256`` always is.
    """

    class Route(models.TextChoices):
        PRODUCTION = "production", "Production"
        CANARY = "canary", "Canary"
        SHADOW = "shadow", "Shadow"
        PINNED = "pinned", "Pinned version"

    id = models.UUIDField(primary_key=True, editable=False)
    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+", db_index=False)
    version_number = models.PositiveIntegerField()
    route = models.CharField(max_length=10, choices=Route.choices, default=Route.PRODUCTION)
    caller = models.CharField(max_length=100, blank=True, help_text="The API token's user, or a caller key.")
    created_at = models.DateTimeField()
    latency_ms = models.FloatField()
    label = models.CharField(max_length=100)
    confidence = models.FloatField()
    probs = models.JSONField()
    input_chars = models.PositiveIntegerField()
    language = models.CharField(max_length=16, blank=True)
    text_sha256 = models.CharField(max_length=64)
    text = models.TextField(null=True, blank=True)
    # Drift descriptors, written by the model server: the pooled embedding projected with the serving
    # version's reference PCA (32 little-endian float16 values; null before a reference exists), the
    # share of unknown tokens, and the text's dominant Unicode script.
    embedding = models.BinaryField(null=True, blank=True)
    unk_rate = models.FloatField(null=True, blank=True)
    script = models.CharField(max_length=16, blank=True)
    # Drawn into the audit sample (ReleasePolicy.audit_share): its text is kept, redacted, even when the
    # project does not log texts, so that reviewers can label it; monitoring turns it into a queue item.
    audit = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["project", "created_at"], name="predlog_project_time"),
            models.Index(fields=["project", "created_at"], condition=models.Q(audit=True), name="predlog_audit_time"),
            # The canary page reads each route's newest rows: without the route in the index, a route with
            # little or no traffic (shadow off) walks the whole window of production rows (1 s at 10M).
            models.Index(fields=["project", "route", "created_at"], name="predlog_route_time"),
        ]

    def __str__(self) -> str:
        return f"prediction {self.id} by version {self.version_number} of project {self.project_id}"


class PredictionError(models.Model):
    """A prediction request that failed on the service's side (it counts against the availability SLO).

    Written by the web process when it answers 429, 503 or 5xx; client errors (400, 401, 404, 413)
    are the caller's and are not recorded. ``texts`` is how many texts the request carried.
    """

    class Kind(models.TextChoices):
        RATE_LIMITED = "rate_limited", "Rate limited (429)"
        OVERLOADED = "overloaded", "Overloaded (503)"
        NO_MODEL = "no_model", "No model to serve (503)"
        MODEL_ERROR = "model_error", "Model error"
        SERVER_ERROR = "server_error", "Server error (5xx)"

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+", db_index=False)
    created_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status_code = models.PositiveSmallIntegerField()
    version_number = models.PositiveIntegerField(default=0, help_text="0 when no version was chosen.")
    route = models.CharField(max_length=10, blank=True)
    caller = models.CharField(max_length=100, blank=True)
    texts = models.PositiveIntegerField(default=1)
    latency_ms = models.FloatField(default=0.0)
    language = models.CharField(max_length=16, blank=True)

    class Meta:
        indexes = [models.Index(fields=["project", "created_at"], name="prederror_project_time")]

    def __str__(self) -> str:
        return f"{self.kind} ({self.status_code}) for project {self.project_id}"


class ModelServerStatus(models.Model):
    """The latest stats snapshot of one model-server process (batch sizes, queue depth, log buffer)."""

    name = models.CharField(max_length=200, primary_key=True, help_text="host:pid of the server process.")
    started_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    stats = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"model server {self.name}"


class PredictionFeedback(models.Model):
    """The true label of a served prediction, reported by the caller once known (one per prediction)."""

    prediction_id = models.UUIDField(primary_key=True)
    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+", db_index=False)
    label = models.ForeignKey("labeling.Label", on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["project", "created_at"], name="feedback_project_time")]

    def __str__(self) -> str:
        return f"feedback {self.label_id} for prediction {self.prediction_id}"

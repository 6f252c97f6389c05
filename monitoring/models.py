"""Monitoring: rollups of the prediction log, accuracy outcomes, drift references and runs, SLOs, alerts.

Pages read these tables, never the raw prediction log (``modeling.PredictionLog``): the rollup job
folds the log into per-minute rows (kept 14 days) and per-hour rows (kept 13 months).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

# --- Rollups ---------------------------------------------------------------------------------------


class RollupBase(models.Model):
    """Traffic of one project, model version, route and language in one time bucket.

    Served predictions count per text (a request of 8 texts is 8 predictions); failed requests count
    the texts they carried, by error kind (``modeling.PredictionError.Kind``). ``version_number`` 0
    stands for "no version" (a request refused before a model was chosen). Histograms are lists of
    counts over the fixed edges in ``monitoring.buckets``.
    """

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+", db_index=False)
    bucket_start = models.DateTimeField()
    version_number = models.PositiveIntegerField()
    route = models.CharField(max_length=10)
    language = models.CharField(max_length=16, blank=True)
    predictions = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=dict, blank=True, help_text="{error kind: texts}")
    latency_hist = models.JSONField(default=list, blank=True, help_text="Counts per LATENCY_EDGES_MS bucket.")
    latency_sum_ms = models.FloatField(default=0.0)
    label_counts = models.JSONField(default=dict, blank=True, help_text="{predicted label: count}")
    confidence_hist = models.JSONField(default=list, blank=True, help_text="Counts per CONFIDENCE_EDGES bin.")
    confidence_sum = models.FloatField(default=0.0)
    chars_sum = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class MinuteRollup(RollupBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "bucket_start", "version_number", "route", "language"], name="minute_rollup_key"
            )
        ]

    def __str__(self) -> str:
        return f"minute {self.bucket_start:%Y-%m-%d %H:%M} of project {self.project_id} v{self.version_number}"


class HourRollup(RollupBase):
    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "bucket_start", "version_number", "route", "language"], name="hour_rollup_key"
            )
        ]

    def __str__(self) -> str:
        return f"hour {self.bucket_start:%Y-%m-%d %H:00} of project {self.project_id} v{self.version_number}"


class OutcomeRollup(models.Model):
    """Served predictions whose true label became known, per hour of the prediction (a confusion cell).

    ``source`` says where the truth came from: the feedback API or an audit item labeled by reviewers.
    """

    class Source(models.TextChoices):
        FEEDBACK = "feedback", "Feedback API"
        AUDIT = "audit", "Audit sample"

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+", db_index=False)
    bucket_start = models.DateTimeField(help_text="Hour of the prediction.")
    version_number = models.PositiveIntegerField()
    language = models.CharField(max_length=16, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    true_label = models.CharField(max_length=100)
    predicted_label = models.CharField(max_length=100)
    count = models.PositiveIntegerField(default=0)
    confidence_sum = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "project",
                    "bucket_start",
                    "version_number",
                    "language",
                    "source",
                    "true_label",
                    "predicted_label",
                ],
                name="outcome_rollup_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.count} × {self.true_label}→{self.predicted_label} at {self.bucket_start:%Y-%m-%d %H:00}"


class RollupWatermark(models.Model):
    """How far a periodic fold has got (``name``: "minute", "hour", "outcomes", ...)."""

    name = models.CharField(max_length=40, primary_key=True)
    done_until = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} until {self.done_until:%Y-%m-%d %H:%M}"


# --- SLOs and alerts -------------------------------------------------------------------------------


class ServiceObjective(models.Model):
    """A project's service level objectives over a rolling period (owners/admins edit them)."""

    project = models.OneToOneField(
        "labeling.Project", on_delete=models.CASCADE, primary_key=True, related_name="service_objective"
    )
    period_days = models.PositiveSmallIntegerField(default=30, validators=[MinValueValidator(1), MaxValueValidator(90)])
    availability_target = models.FloatField(
        default=0.995,
        validators=[MinValueValidator(0.5), MaxValueValidator(0.99999)],
        help_text="Share of predictions not failing with 5xx, 429 or a model error.",
    )
    latency_target = models.FloatField(
        default=0.99, validators=[MinValueValidator(0.5), MaxValueValidator(0.99999)], help_text="Share under T ms."
    )
    latency_threshold_ms = models.PositiveIntegerField(default=300, help_text="T: one of the latency bucket edges.")
    quality_target = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.99999)],
        help_text="Optional: audited accuracy objective.",
    )
    min_events = models.PositiveIntegerField(
        default=100, help_text="Low-traffic guard: no burn alert from fewer events in the long window."
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"SLOs of project {self.project_id}"


class Alert(models.Model):
    """One incident: fired once per dedupe key, updated while it lasts, resolved when the condition clears."""

    class Kind(models.TextChoices):
        BURN = "burn", "Error-budget burn"
        DRIFT = "drift", "Drift"
        ACCURACY = "accuracy", "Accuracy"

    class Severity(models.TextChoices):
        PAGE = "page", "Page"
        TICKET = "ticket", "Ticket"

    class State(models.TextChoices):
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+", db_index=False)
    version_number = models.PositiveIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.FIRING)
    key = models.CharField(max_length=200, help_text="Dedupe key, e.g. 'burn:availability:page:v3'.")
    title = models.CharField(max_length=300)
    evidence = models.JSONField(default=dict, blank=True, help_text="Numbers and links behind the alert.")
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "key"], condition=Q(state="firing"), name="alert_one_firing_per_key"
            )
        ]
        indexes = [models.Index(fields=["project", "state", "-started_at"], name="alert_project_state")]

    def __str__(self) -> str:
        return f"{self.severity} {self.kind} alert {self.key} ({self.state})"


class NotificationChannel(models.Model):
    """Where a project's alerts are sent: e-mail addresses or a webhook (JSON, Slack-compatible)."""

    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=100)
    target = models.CharField(max_length=1000, help_text="Comma-separated e-mail addresses, or an https URL.")
    min_severity = models.CharField(max_length=10, choices=Alert.Severity.choices, default=Alert.Severity.TICKET)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind} channel {self.name}"


class Notification(models.Model):
    """One delivery of an alert event (or a test) to one channel, with its attempts."""

    class Event(models.TextChoices):
        FIRED = "fired", "Fired"
        RESOLVED = "resolved", "Resolved"
        TEST = "test", "Test"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=10, choices=Event.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.event} notification to channel {self.channel_id} ({self.status})"


# --- Drift -----------------------------------------------------------------------------------------


class DriftReference(models.Model):
    """The eval-split statistics of an approved version, stored once: what "no drift" looks like.

    ``arrays`` holds an ``.npz`` (calibrated softmax outputs, n by k, in ``labels`` order, embeddings
    projected to 32 dimensions, the PCA mean and components, text lengths, unknown-token rates);
    ``descriptors`` the categorical mixes (script, language).
    """

    model_version = models.OneToOneField(
        "modeling.ModelVersion", on_delete=models.CASCADE, primary_key=True, related_name="drift_reference"
    )
    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+")
    labels = models.JSONField(default=list)
    label_distribution = models.JSONField(default=dict, help_text="{predicted label: share}")
    descriptors = models.JSONField(default=dict, blank=True)
    arrays = models.BinaryField()
    n_items = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"drift reference of version {self.model_version_id}"


class DriftRun(models.Model):
    """The drift tests of one window of production traffic against the serving version's reference."""

    class Window(models.TextChoices):
        HOURLY = "hourly", "Hourly"
        DAILY = "daily", "Daily"
        ON_DEMAND = "on_demand", "On demand"

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="+", db_index=False)
    version_number = models.PositiveIntegerField()
    window = models.CharField(max_length=10, choices=Window.choices)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    n_reference = models.PositiveIntegerField(default=0)
    n_current = models.PositiveIntegerField(default=0)
    results = models.JSONField(default=dict, blank=True, help_text="Per test (and language): statistic, p, alert.")
    drifted = models.BooleanField(default=False)
    explanation = models.JSONField(null=True, blank=True, help_text="Domain classifier: AUC, tokens, texts.")
    sent_to_labeling = models.PositiveIntegerField(default=0)
    job = models.ForeignKey("webapp.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["project", "window", "-window_end"], name="driftrun_project_window")]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "version_number", "window", "window_end"],
                condition=~Q(window="on_demand"),
                name="driftrun_one_per_window",
            )
        ]

    def __str__(self) -> str:
        return f"{self.window} drift run of project {self.project_id} until {self.window_end:%Y-%m-%d %H:%M}"

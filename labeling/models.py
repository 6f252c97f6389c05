"""Projects, their labels and members, imported datasets and the items to label."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

SLUG_VALIDATOR = RegexValidator(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", "Use lowercase letters, digits and single hyphens.")
COLOR_VALIDATOR = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a colour like #1f77b4.")


class Role(models.TextChoices):
    REVIEWER = "reviewer", "Reviewer"
    OWNER = "owner", "Model owner"
    ADMIN = "admin", "Admin"


ROLE_RANK = {Role.REVIEWER.value: 1, Role.OWNER.value: 2, Role.ADMIN.value: 3}


class Project(models.Model):
    class TaskType(models.TextChoices):
        SINGLE_LABEL = "single_label", "Single-label classification"
        MULTI_LABEL = "multi_label", "Multi-label classification"

    class Strategy(models.TextChoices):
        RANDOM = "random", "Random"
        LEAST_CONFIDENCE = "least_confidence", "Least confidence"
        MARGIN = "margin", "Margin"
        ENTROPY = "entropy", "Entropy"
        MARGIN_DIVERSITY = "margin_diversity", "Margin + diversity (default)"
        BADGE = "badge", "Uncertainty-weighted diversity (BADGE-style)"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True, validators=[SLUG_VALIDATOR])
    description = models.TextField(blank=True)
    task_type = models.CharField(max_length=20, choices=TaskType.choices, default=TaskType.SINGLE_LABEL)
    guidelines = models.TextField(blank=True, help_text="Markdown; rendered safely.")
    languages = models.JSONField(default=list, blank=True, help_text="ISO 639-1 codes, e.g. ['en', 'de'].")
    base_checkpoint = models.CharField(max_length=500, help_text="A local checkpoint directory or a hub id.")
    max_text_chars = models.PositiveIntegerField(default=20_000, validators=[MinValueValidator(1)])
    al_strategy = models.CharField(max_length=20, choices=Strategy.choices, default=Strategy.MARGIN_DIVERSITY)
    al_batch_size = models.PositiveIntegerField(
        default=50, validators=[MinValueValidator(1), MaxValueValidator(10_000)]
    )
    retrain_after_labels = models.PositiveIntegerField(default=200, validators=[MinValueValidator(1)])
    lease_ttl_seconds = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(10), MaxValueValidator(86_400)]
    )
    overlap_fraction = models.FloatField(
        default=0.10,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of a batch labeled twice.",
    )
    random_fraction = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Random-audit share of a batch.",
    )
    language_quotas = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per-language minimum of each queue batch: a share (0.2) or a count (5), e.g. {'sw': 0.2}.",
    )
    # Labeling records the fact; modeling's scheduled task acts on it (and resets it) when it retrains.
    labels_since_training = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Label(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    hotkey = models.CharField(max_length=1, blank=True)
    color = models.CharField(max_length=7, default="#4c78a8", validators=[COLOR_VALIDATOR])
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["project", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="label_unique_name"),
            models.UniqueConstraint(fields=["project", "hotkey"], condition=~Q(hotkey=""), name="label_unique_hotkey"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.REVIEWER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.project}"

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


class ProjectCounts(models.Model):
    """Item counts per status, kept up to date by the services that change statuses.

    The overview page reads this one row instead of counting a million items on every view;
    ``labeling.services.project_recount`` rebuilds it from scratch if it ever drifts. Every status change
    adds to it, so the queue's services update it after their commit, never holding its lock inside a
    transaction (``labeling.services.queue.counters._writing``).
    """

    project = models.OneToOneField(Project, on_delete=models.CASCADE, primary_key=True, related_name="counts")
    items = models.BigIntegerField(default=0)
    unlabeled = models.BigIntegerField(default=0)
    queued = models.BigIntegerField(default=0)
    leased = models.BigIntegerField(default=0)
    labeled = models.BigIntegerField(default=0)
    in_review = models.BigIntegerField(default=0)
    gold = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"counts for {self.project_id}"

    def add(self, deltas: dict[str, int]) -> None:
        """Atomically add ``deltas`` (field → change) to the stored counts."""
        changes = {field: F(field) + delta for field, delta in deltas.items() if delta}
        if changes:
            ProjectCounts.objects.filter(pk=self.pk).update(**changes, updated_at=timezone.now())


class Dataset(models.Model):
    """One successful import: where the rows came from and what they became."""

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON Lines"
        JSON = "json", "JSON array"

    class Source(models.TextChoices):
        UPLOAD = "upload", "Browser upload"
        API = "api", "API"
        SEED = "seed", "Demo seed"
        FEEDBACK = "feedback", "Production traffic"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=255)
    format = models.CharField(max_length=5, choices=Format.choices)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.UPLOAD)
    job = models.ForeignKey("webapp.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    rows_total = models.PositiveIntegerField(default=0)
    items_created = models.PositiveIntegerField(default=0)
    duplicates_skipped = models.PositiveIntegerField(default=0)
    gold_labels = models.PositiveIntegerField(default=0)
    file_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


# Items the queue may serve: queued ones, and overlap items still open to another reviewer. The
# next-item query filters on exactly this, so the planner can prove the partial index applies.
QUEUE_OPEN = Q(priority__isnull=False) & (
    Q(status="queued") | Q(status__in=("leased", "labeled"), overlap_target__gt=1)
)


class Item(models.Model):
    class Status(models.TextChoices):
        UNLABELED = "unlabeled", "Unlabeled"
        QUEUED = "queued", "Queued"
        LEASED = "leased", "Leased"
        LABELED = "labeled", "Labeled"
        IN_REVIEW = "in_review", "In review"
        GOLD = "gold", "Gold"

    class Split(models.TextChoices):
        TRAIN = "train", "Train"
        EVAL = "eval", "Eval"
        POOL = "pool", "Pool"

    class GoldSource(models.TextChoices):
        NONE = "", "None"
        IMPORT = "import", "Import"
        SINGLE = "single", "Single annotation"
        AGREEMENT = "agreement", "Agreement"
        ADJUDICATION = "adjudication", "Adjudication"

    # No single-column index on project: every composite index below starts with it.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items", db_index=False)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="items")
    external_id = models.CharField(max_length=255, null=True, blank=True)
    text = models.TextField()
    content_hash = models.CharField(max_length=64, help_text="sha256 of the text, hex.")
    language = models.CharField(max_length=16, blank=True)
    split = models.CharField(max_length=5, choices=Split.choices, default=Split.POOL)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UNLABELED)
    # Lookups by gold label always name the project too: (project, gold_label, id) serves them.
    gold_label = models.ForeignKey(
        Label, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    gold_source = models.CharField(max_length=12, choices=GoldSource.choices, blank=True, default="")
    priority = models.FloatField(null=True, blank=True, help_text="Queue priority from active learning; higher first.")
    # Database defaults too: the PostgreSQL import COPYs items naming only the columns it fills.
    overlap_target = models.PositiveSmallIntegerField(
        default=1,
        db_default=1,
        validators=[MinValueValidator(1), MaxValueValidator(3)],
        help_text="Reviewers who label this item.",
    )
    is_random_pick = models.BooleanField(
        default=False, db_default=False, help_text="Drawn by the random audit, not by the model."
    )
    ranked_by_version = models.PositiveIntegerField(null=True, blank=True, help_text="Model version number.")
    # Set when another part of the system put the item in the queue as a batch (e.g. "audit", "drift:12"):
    # re-ranking by active learning leaves such items queued with their own priority.
    queue_tag = models.CharField(max_length=40, blank=True, default="", db_default="")
    # The latest pool scoring's suggestion, written by modeling (a version number: labeling never imports it).
    predicted_label = models.ForeignKey(
        Label, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    predicted_confidence = models.FloatField(null=True, blank=True, help_text="Calibrated max probability.")
    predicted_by_version = models.PositiveIntegerField(null=True, blank=True, help_text="Model version number.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "content_hash"], name="item_unique_text"),
            models.UniqueConstraint(
                fields=["project", "external_id"],
                condition=Q(external_id__isnull=False),
                name="item_unique_external_id",
            ),
        ]
        # Keyset pagination walks (project, <filter>, id); each filter the item list offers has one.
        indexes = [
            models.Index(fields=["project", "id"], name="item_project_id"),
            models.Index(fields=["project", "status", "id"], name="item_project_status"),
            models.Index(fields=["project", "split", "id"], name="item_project_split"),
            models.Index(fields=["project", "language", "id"], name="item_project_language"),
            models.Index(fields=["project", "gold_label", "id"], name="item_project_gold"),
            # The next-item query walks this in its own order and stops at the first free row: only
            # items it may serve are in it, so it stays the size of the queue and costs imports nothing.
            models.Index(fields=["project", "-priority", "id"], name="item_queue_candidates", condition=QUEUE_OPEN),
        ]

    def __str__(self) -> str:
        return f"item {self.pk} of project {self.project_id}"


class Lease(models.Model):
    """An item handed to one reviewer until ``expires_at``; ``released_at`` ends it early."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="leases", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Only unreleased leases are ever looked up by item, user or expiry: partial indexes stay small.
        indexes = [
            models.Index(
                fields=["item", "expires_at"], name="lease_active_item", condition=Q(released_at__isnull=True)
            ),
            models.Index(
                fields=["user", "project", "expires_at"],
                name="lease_active_user",
                condition=Q(released_at__isnull=True),
            ),
            models.Index(
                fields=["project", "expires_at"], name="lease_active_expiry", condition=Q(released_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"lease of item {self.item_id} to user {self.user_id}"

    def is_active(self, now: datetime | None = None) -> bool:
        return self.released_at is None and self.expires_at > (now or timezone.now())


class Annotation(models.Model):
    """One reviewer's label for one item. Append-only: an undo adds a ``retract`` row pointing at it.

    A ``resolve`` row is an owner's adjudication of a disagreement or an "unclear" item: the latest one
    that no retract row undoes decides the gold label.
    """

    class Kind(models.TextChoices):
        LABEL = "label", "Label"
        RETRACT = "retract", "Retraction"
        RESOLVE = "resolve", "Adjudication"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="annotations", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=7, choices=Kind.choices, default=Kind.LABEL)
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="+")
    retracts = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="retracted_by"
    )
    note = models.TextField(blank=True)
    unclear = models.BooleanField(default=False)
    seconds_spent = models.FloatField(null=True, blank=True)
    # What the page showed: the suggestion and its version (a number: labeling never imports modeling).
    suggested_label = models.ForeignKey(Label, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    suggested_confidence = models.FloatField(null=True, blank=True)
    suggested_by_version = models.PositiveIntegerField(null=True, blank=True)
    lease = models.ForeignKey(Lease, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    client_key = models.CharField(max_length=100, null=True, blank=True, help_text="Client-chosen idempotency key.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "client_key"],
                condition=Q(client_key__isnull=False),
                name="annotation_unique_client_key",
            ),
        ]
        indexes = [
            models.Index(fields=["item", "user"], name="annotation_item_user"),
            models.Index(fields=["project", "user", "-id"], name="annotation_project_user"),
            # The review page's "recently resolved" list: adjudications are few, so a partial index stays tiny.
            models.Index(fields=["project", "-id"], name="annotation_recent_resolve", condition=Q(kind="resolve")),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of item {self.item_id} by user {self.user_id}"


class Skip(models.Model):
    """A reviewer passed on an item; the queue never offers it to them again."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="skips", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "user"], name="skip_unique_item_user")]

    def __str__(self) -> str:
        return f"skip of item {self.item_id} by user {self.user_id}"

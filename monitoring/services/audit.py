"""Turn the audit sample of production traffic into labeling queue items.

The model server marks a hash-sample of predictions (``ReleasePolicy.audit_share``, 1% by default) as
``PredictionLog.audit`` and keeps their texts (redacted). Reviewers label those texts like any other
item; their gold labels measure the served model's accuracy without the selection bias of
active-learning picks or of the feedback callers choose to send (see ``monitoring.services.outcomes``).

Closed hours are processed once each, behind a watermark, in one transaction with the queue writes.
At most ``LOOPLINE_AUDIT_DAILY_CAP`` predictions per project and day become items, spread evenly over
the day's hours (hour h of the day may take cap*(h+1)//24 - cap*h//24): taking the first 200 after
midnight would audit only the night's traffic. Inside an hour the rows with the smallest ids are taken;
the ids are random UUIDs, so that is a uniform random subsample of the hour's audit rows.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from labeling.models import Item, Project
from labeling.services.queue_batches import QueueText, queue_batch_add
from modeling.models import PredictionLog
from monitoring.models import RollupWatermark
from monitoring.services.rollups import HOUR, REFOLD, floor_hour

logger = logging.getLogger(__name__)

AUDIT_MARK = "audit"
AUDIT_TAG = "audit"
FIRST_RUN_LOOKBACK = timedelta(days=1)  # a first run audits the last day, not the whole retained log
UUID_SPAN = float(2**128)


@dataclass
class AuditResult:
    hours: int = 0
    queued: int = 0
    created: int = 0
    skipped: bool = False


def hour_budget(cap: int, hour_of_day: int) -> int:
    """Return how many audit items hour ``hour_of_day`` (0-23) may take of a daily ``cap``."""
    return cap * (hour_of_day + 1) // 24 - cap * hour_of_day // 24


def audit_priority(prediction_id: uuid.UUID, al_batch_size: int) -> float:
    """Return a queue priority in (0, al_batch_size] that interleaves audit items with active learning.

    Active learning ranks its batch with priorities al_batch_size, ..., 1 (first pick highest). An
    audit item gets a uniform draw over that same range (from its random id, so a re-run gives the
    same value), which slots it in at a random rank of the batch: reviewers meet audit items spread
    through their work, neither all first (starving active learning) nor all last (never labeled
    while the batch is refilled).
    """
    return max(1, al_batch_size) * (prediction_id.int + 1) / UUID_SPAN


def _usable(text: str | None, project: Project) -> bool:
    """Only texts the queue accepts: a refused one would fail the whole batch."""
    return bool(text) and not text.isspace() and "\x00" not in text and len(text) <= project.max_text_chars


def _texts(project: Project, rows: list[PredictionLog]) -> list[QueueText]:
    return [
        QueueText(
            text=row.text or "",
            priority=audit_priority(row.id, project.al_batch_size),
            language=row.language,
            metadata={
                "prediction_id": str(row.id),
                "version": row.version_number,
                "predicted_label": row.label,
                "confidence": row.confidence,
                "language": row.language,
                "route": row.route,
                "predicted_at": row.created_at.astimezone(UTC).isoformat(),
            },
        )
        for row in rows
        if _usable(row.text, project)
    ]


def _link_existing(project: Project, texts: list[QueueText], item_ids: list[int]) -> None:
    """Record the audit on items that held the text already (their metadata had no prediction).

    ``queue_batch_add`` keeps one item per text: a text already in the project keeps its item (and,
    if it is labeled, its gold label, which is then the truth for this prediction at once).
    """
    by_hash = {hashlib.sha256(t.text.encode("utf-8")).hexdigest(): t.metadata for t in texts}
    for item in Item.objects.filter(project=project, pk__in=item_ids).only("pk", "content_hash", "metadata"):
        metadata = item.metadata if isinstance(item.metadata, dict) else {}
        if "prediction_id" not in metadata and item.content_hash in by_hash:
            Item.objects.filter(pk=item.pk).update(metadata={**metadata, **by_hash[item.content_hash]})


def audit_hour_queue(*, project: Project, start: datetime, cap: int) -> tuple[int, int]:
    """Queue the audit sample of one project's hour starting at ``start``; return (queued, created)."""
    budget = hour_budget(cap, start.astimezone(UTC).hour)
    if budget <= 0:
        return 0, 0
    rows = list(
        PredictionLog.objects.filter(
            project=project, audit=True, created_at__gte=start, created_at__lt=start + HOUR, text__isnull=False
        )
        .exclude(route=PredictionLog.Route.SHADOW)  # a shadow prediction was never served
        .only("id", "text", "language", "version_number", "label", "confidence", "route", "created_at")
        .order_by("id")[:budget]
    )
    texts = _texts(project, rows)
    if not texts:
        return 0, 0
    result = queue_batch_add(project=project, texts=texts, tag=AUDIT_TAG)
    _link_existing(project, texts, result.requeued + result.already_labeled)
    return result.queued + len(result.already_labeled), len(result.created)


@transaction.atomic
def audit_sample(*, now: datetime | None = None) -> AuditResult:
    """Queue the audit sample of every closed hour since the watermark, for every project."""
    end = floor_hour((now or timezone.now()) - REFOLD)
    RollupWatermark.objects.get_or_create(name=AUDIT_MARK, defaults={"done_until": end - FIRST_RUN_LOOKBACK})
    mark = RollupWatermark.objects.select_for_update(skip_locked=True).filter(name=AUDIT_MARK).first()
    if mark is None:
        return AuditResult(skipped=True)
    result = AuditResult()
    cap = settings.LOOPLINE_AUDIT_DAILY_CAP
    projects = list(Project.objects.order_by("pk"))
    start = floor_hour(mark.done_until)
    while start < end:
        for project in projects:
            queued, created = audit_hour_queue(project=project, start=start, cap=cap)
            result.queued += queued
            result.created += created
        result.hours += 1
        start += HOUR
    if result.hours:
        mark.done_until = end
        mark.save()
    logger.info("audit sample queued", extra={"hours": result.hours, "queued": result.queued})
    return result

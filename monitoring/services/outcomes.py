"""Fold ground truth into ``OutcomeRollup``: confusion cells per prediction hour, version and language.

Two sources, kept apart (``OutcomeRollup.source``) because they answer different questions:

- feedback: labels the API's callers send for predictions they chose to check. Folded incrementally
  behind a watermark on the feedback's arrival time, each feedback row exactly once (the counts and the
  watermark move in one transaction). A feedback whose prediction left the raw log meanwhile is skipped
  (feedback is accepted only while the prediction is in the log, so this is a feedback older than the
  log's retention at the time of the fold).
- audit: gold labels of the audit sample's queue items (``monitoring.services.audit``), an unbiased
  sample of served traffic. An item has no timestamp for becoming gold, and a gold label can still be
  corrected by adjudication, so a project's audit cells are rebuilt from its gold audit items on each
  run. That is cheap because the sample is capped (at most ``LOOPLINE_AUDIT_DAILY_CAP`` a day, 13
  months kept), and the rows are rewritten only when they changed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from labeling.models import Item, Project
from modeling.models import PredictionFeedback, PredictionLog
from monitoring.models import OutcomeRollup, RollupWatermark
from monitoring.services.rollups import floor_hour
from monitoring.timerange import HOUR_RETENTION

logger = logging.getLogger(__name__)

FEEDBACK_MARK = "outcomes_feedback"
FEEDBACK_LAG = timedelta(minutes=1)  # a feedback row committed a moment after its created_at is still seen
LOOKUP_CHUNK = 1_000

CellKey = tuple[int, datetime, int, str, str, str]  # project, hour, version, language, true, predicted


@dataclass
class OutcomeResult:
    feedback: int = 0
    unmatched: int = 0
    audit_projects_rewritten: int = 0
    skipped: bool = False


def _add(cells: dict[CellKey, list[float]], key: CellKey, confidence: float) -> None:
    cell = cells[key]
    cell[0] += 1
    cell[1] += confidence


def _merge(source: str, cells: dict[CellKey, list[float]]) -> None:
    """Add ``cells`` into the existing rows of ``source`` (locked, one query per project) or create them."""
    by_project: dict[int, dict[CellKey, list[float]]] = defaultdict(dict)
    for key, value in cells.items():
        by_project[key[0]][key] = value
    for project_id, project_cells in by_project.items():
        existing = {
            (project_id, r.bucket_start, r.version_number, r.language, r.true_label, r.predicted_label): r
            for r in OutcomeRollup.objects.select_for_update().filter(
                project_id=project_id, source=source, bucket_start__in={key[1] for key in project_cells}
            )
        }
        changed, created = [], []
        for key, (count, confidence_sum) in project_cells.items():
            row = existing.get(key)
            if row is None:
                _, hour, version, language, true_label, predicted_label = key
                created.append(
                    OutcomeRollup(
                        project_id=project_id,
                        bucket_start=hour,
                        version_number=version,
                        language=language,
                        source=source,
                        true_label=true_label,
                        predicted_label=predicted_label,
                        count=int(count),
                        confidence_sum=confidence_sum,
                    )
                )
            else:
                row.count += int(count)
                row.confidence_sum += confidence_sum
                changed.append(row)
        OutcomeRollup.objects.bulk_update(changed, ["count", "confidence_sum"], batch_size=1_000)
        OutcomeRollup.objects.bulk_create(created, batch_size=1_000)


def _feedback_cells(rows: list[tuple[int, object, str]]) -> tuple[dict[CellKey, list[float]], int]:
    cells: dict[CellKey, list[float]] = defaultdict(lambda: [0, 0.0])
    unmatched = 0
    for offset in range(0, len(rows), LOOKUP_CHUNK):
        chunk = rows[offset : offset + LOOKUP_CHUNK]
        logs = {
            log["id"]: log
            for log in PredictionLog.objects.filter(id__in=[prediction_id for _, prediction_id, _ in chunk]).values(
                "id", "project_id", "created_at", "version_number", "language", "label", "confidence"
            )
        }
        for project_id, prediction_id, true_label in chunk:
            log = logs.get(prediction_id)
            if log is None or log["project_id"] != project_id:
                unmatched += 1
                continue
            key = (
                project_id,
                floor_hour(log["created_at"]),
                log["version_number"],
                log["language"],
                true_label,
                log["label"],
            )
            _add(cells, key, log["confidence"])
    return cells, unmatched


@transaction.atomic
def outcomes_fold_feedback(*, now: datetime | None = None) -> OutcomeResult:
    """Count every feedback that arrived since the watermark into the feedback outcome cells."""
    end = (now or timezone.now()) - FEEDBACK_LAG
    RollupWatermark.objects.get_or_create(name=FEEDBACK_MARK, defaults={"done_until": datetime(1970, 1, 1, tzinfo=UTC)})
    mark = RollupWatermark.objects.select_for_update(skip_locked=True).filter(name=FEEDBACK_MARK).first()
    if mark is None:
        return OutcomeResult(skipped=True)
    if mark.done_until >= end:
        return OutcomeResult()
    rows = list(
        PredictionFeedback.objects.filter(created_at__gte=mark.done_until, created_at__lt=end).values_list(
            "project_id", "prediction_id", "label__name"
        )
    )
    cells, unmatched = _feedback_cells(rows)
    _merge(OutcomeRollup.Source.FEEDBACK, cells)
    mark.done_until = end
    mark.save()
    return OutcomeResult(feedback=len(rows) - unmatched, unmatched=unmatched)


def _audit_cells(project: Project, now: datetime) -> dict[tuple[datetime, int, str, str, str], list[float]]:
    cells: dict[tuple[datetime, int, str, str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    items = Item.objects.filter(
        project=project, status=Item.Status.GOLD, gold_label__isnull=False, metadata__has_key="prediction_id"
    ).values_list("metadata", "gold_label__name")
    oldest = now - HOUR_RETENTION
    for metadata, true_label in items.iterator(chunk_size=2_000):
        predicted_at = parse_datetime(str(metadata.get("predicted_at") or ""))
        predicted_label = metadata.get("predicted_label")
        if predicted_at is None or predicted_at < oldest or not isinstance(predicted_label, str):
            continue
        key = (
            floor_hour(predicted_at),
            int(metadata.get("version") or 0),
            str(metadata.get("language") or "")[:16],
            true_label,
            predicted_label[:100],
        )
        cell = cells[key]
        cell[0] += 1
        cell[1] += float(metadata.get("confidence") or 0.0)
    return cells


@transaction.atomic
def outcomes_rebuild_audit(*, project: Project, now: datetime | None = None) -> bool:
    """Rebuild a project's audit outcome cells from its gold audit items; return whether they changed."""
    cells = _audit_cells(project, now or timezone.now())
    existing = OutcomeRollup.objects.select_for_update().filter(project=project, source=OutcomeRollup.Source.AUDIT)
    current = {
        (r.bucket_start, r.version_number, r.language, r.true_label, r.predicted_label): [r.count, r.confidence_sum]
        for r in existing
    }
    wanted = {key: [int(count), confidence] for key, (count, confidence) in cells.items()}
    if set(current) == set(wanted) and all(
        current[k][0] == wanted[k][0] and abs(current[k][1] - wanted[k][1]) < 1e-9 for k in wanted
    ):
        return False
    existing.delete()
    OutcomeRollup.objects.bulk_create(
        [
            OutcomeRollup(
                project=project,
                bucket_start=key[0],
                version_number=key[1],
                language=key[2],
                source=OutcomeRollup.Source.AUDIT,
                true_label=key[3],
                predicted_label=key[4],
                count=count,
                confidence_sum=confidence,
            )
            for key, (count, confidence) in wanted.items()
        ],
        batch_size=1_000,
    )
    return True


def outcomes_fold(*, now: datetime | None = None) -> OutcomeResult:
    """Fold new feedback, then rebuild each project's audit cells (each in its own transaction)."""
    result = outcomes_fold_feedback(now=now)
    for project in Project.objects.order_by("pk"):
        result.audit_projects_rewritten += outcomes_rebuild_audit(project=project, now=now)
    return result

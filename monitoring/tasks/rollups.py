"""Celery tasks: traffic rollups, the audit sample, ground-truth outcomes and retention (beat schedules them).

Thin: each calls one service and returns its figures. Every service is idempotent and guarded by a
locked watermark row, so an overlapping run (a slow fold while beat fires again) skips instead of
racing.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from celery import shared_task

from monitoring.services.audit import audit_sample
from monitoring.services.outcomes import outcomes_fold
from monitoring.services.rollups import rollup_hours, rollup_minutes, rollups_purge
from monitoring.tasks.alerts import evaluate_slos


@shared_task(name="monitoring.tasks.rollups_fold", queue="default", ignore_result=True)
def rollups_fold() -> dict[str, Any]:
    """Fold the minutes (re-folding the last few, and the open one so far) and the closed hours; then
    evaluate the SLOs on the data just folded (beat runs this every 20 s: a full outage pages in about
    a minute)."""
    minutes = rollup_minutes()
    hours = rollup_hours()
    if not minutes.skipped:
        evaluate_slos.delay()
    return {"minutes": minutes.minutes, "minute_rows": minutes.rows, "hour_rows": hours.rows}


@shared_task(name="monitoring.tasks.audit_and_outcomes", queue="default", ignore_result=True)
def audit_and_outcomes() -> dict[str, Any]:
    """Queue the audit sample of closed hours, then fold new feedback and rebuild audit outcomes."""
    return {"audit": asdict(audit_sample()), "outcomes": asdict(outcomes_fold())}


@shared_task(name="monitoring.tasks.rollups_retention", queue="default", ignore_result=True)
def rollups_retention() -> dict[str, Any]:
    """Delete rollups and raw log rows past their retention (in batches)."""
    return asdict(rollups_purge())

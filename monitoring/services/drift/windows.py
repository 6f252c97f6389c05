"""Running drift windows: test one window against the reference, store the ``DriftRun``, sync alerts.

Windows: ``hourly`` (the last closed hour) and ``daily`` (the last closed UTC day), run by beat for
every project whose production version has a ``DriftReference``, and ``on_demand`` ones (see
``on_demand``). A detection is explained before the run is stored; scheduled runs then fire or resolve
the drift alerts, on-demand runs are investigations and leave alerts alone.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling.models import Project
from modeling.models import Alias, ModelVersion
from monitoring.models import DriftReference, DriftRun
from monitoring.services.drift.alerts import drift_alerts_sync
from monitoring.services.drift.explanation import explain_window
from monitoring.services.drift.results import drift_results
from monitoring.services.drift.traffic import reference_traffic, window_traffic
from webapp.models import Job

logger = logging.getLogger(__name__)

WINDOW_SPANS = {DriftRun.Window.HOURLY: timedelta(hours=1), DriftRun.Window.DAILY: timedelta(days=1)}
# A window is run once its last rows are surely in the log (the server's write-behind flushes every 0.5 s).
SETTLE = timedelta(minutes=2)


def production_with_reference(project: Project) -> tuple[ModelVersion | None, DriftReference | None]:
    """Return the project's production version and its drift reference (either may be None)."""
    alias = Alias.objects.filter(project=project, name=Alias.Name.PRODUCTION).select_related("version").first()
    if alias is None:
        return None, None
    return alias.version, DriftReference.objects.filter(model_version=alias.version).first()


def drift_run_compute(
    *,
    project: Project,
    version: ModelVersion,
    reference: DriftReference,
    window: str,
    start: datetime,
    end: datetime,
    user: Any = None,
    job: Job | None = None,
) -> DriftRun:
    """Test the window against the reference, explain a detection, store the run; scheduled runs sync alerts."""
    base = reference_traffic(reference)
    current = window_traffic(project=project, version=version.number, labels=base.labels, start=start, end=end)
    results = drift_results(base, current)
    drifted = bool(results["alerts"])
    run = DriftRun(
        project=project,
        version_number=version.number,
        window=window,
        window_start=start,
        window_end=end,
        n_reference=base.n,
        n_current=current.total,
        results=results,
        drifted=drifted,
        job=job,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    if drifted:
        run.explanation = explain_window(project=project, version=version.number, start=start, end=end, base=base)
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError:  # this scheduled window was stored meanwhile by another worker
        return DriftRun.objects.get(project=project, version_number=version.number, window=window, window_end=end)
    if window != DriftRun.Window.ON_DEMAND:
        drift_alerts_sync(project=project, run=run)
    logger.info(
        "drift run",
        extra={"project_id": project.pk, "window": window, "n": current.total, "drifted": drifted, "run_id": run.pk},
    )
    return run


def drift_windows_run(*, window: str, now: datetime | None = None) -> int:
    """Run the last closed ``window`` for every project with a referenced production version; return runs made."""
    now = now or timezone.now()
    span = WINDOW_SPANS[window]
    settled = now - SETTLE
    if window == DriftRun.Window.DAILY:
        end = settled.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        end = settled.replace(minute=0, second=0, microsecond=0)
    made = 0
    for alias in Alias.objects.filter(name=Alias.Name.PRODUCTION).select_related("version", "project"):
        reference = DriftReference.objects.filter(model_version=alias.version).first()
        if reference is None:
            continue
        done = DriftRun.objects.filter(
            project=alias.project, version_number=alias.version.number, window=window, window_end=end
        ).exists()
        if done:
            continue
        try:
            drift_run_compute(
                project=alias.project,
                version=alias.version,
                reference=reference,
                window=window,
                start=end - span,
                end=end,
            )
        except Exception:  # one project's failure must not stop the others' windows; the next beat retries it
            logger.exception("drift window failed", extra={"project_id": alias.project_id, "window": window})
            continue
        made += 1
    return made

"""The Celery application: two queues, ``default`` (imports, exports, rollups) and ``gpu``.

Training and batch inference route to ``gpu``, consumed by a worker with ``--concurrency=1`` per
device. Tasks import torch lazily inside the task body, so a worker's parent process never
initialises CUDA: only the forked child that runs a task does.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("loopline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_queues=(Queue("default"), Queue("gpu")),
    task_default_queue="default",
    task_routes={
        "modeling.tasks.train_*": {"queue": "gpu"},
        "modeling.tasks.score_*": {"queue": "gpu"},
        "modeling.tasks.compare_*": {"queue": "gpu"},
        "monitoring.tasks.drift.build_*": {"queue": "gpu"},
    },
    # One task at a time per worker process: long jobs must not hoard prefetched messages.
    worker_prefetch_multiplier=1,
    # Jobs are idempotent (they check their Job row first), so a crashed worker's task is redelivered.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_hijack_root_logger=False,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
)
# Periodic work, sent by ``celery beat``; apps add their entries here (rollups, drift, lease expiry).
app.conf.beat_schedule = {
    "reap-stale-jobs": {"task": "webapp.tasks.reap_stale_jobs", "schedule": 300.0},
    "sweep-import-uploads": {"task": "labeling.tasks.sweep_import_uploads", "schedule": 3600.0},
    "expire-leases": {"task": "labeling.tasks.expire_leases", "schedule": 60.0},
    "fail-orphaned-versions": {"task": "modeling.tasks.fail_orphaned_versions", "schedule": 300.0},
    "retrain-due-projects": {"task": "modeling.tasks.retrain_due_projects", "schedule": 30.0},
    # Rollups fold every 20 s (the open minute too) and enqueue the SLO evaluation on what they folded.
    "monitoring-rollups": {"task": "monitoring.tasks.rollups_fold", "schedule": 20.0, "options": {"expires": 18}},
    "monitoring-audit-outcomes": {"task": "monitoring.tasks.audit_and_outcomes", "schedule": 300.0},
    "monitoring-retention": {"task": "monitoring.tasks.rollups_retention", "schedule": 3600.0},
    # Drift: references for newly approved versions; the last closed hourly and daily windows (once each).
    "monitoring-drift-references": {"task": "monitoring.tasks.drift.enqueue_drift_references", "schedule": 60.0},
    "monitoring-drift-windows": {"task": "monitoring.tasks.drift.run_drift_windows", "schedule": 300.0},
}


@app.on_after_configure.connect
def _create_filesystem_broker_dirs(sender: Celery, **_: object) -> None:
    """Create the embedded broker's folders: kombu's filesystem transport expects them to exist."""
    options = sender.conf.broker_transport_options or {}
    if str(sender.conf.broker_url).startswith("filesystem://"):
        for key in ("data_folder_in", "processed_folder", "control_folder"):
            os.makedirs(options[key], exist_ok=True)


app.autodiscover_tasks()

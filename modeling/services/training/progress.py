"""The ``train()`` progress callback: job progress and ``ModelVersion.history`` rows, throttled to once
a second plus every evaluation; a requested cancel stops training at that step.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from modeling.models import ModelVersion
from webapp.models import Job

if TYPE_CHECKING:
    from modeling.ml.train import ProgressEvent


# History rows are written at most this often (plus every evaluation and the last step).
HISTORY_INTERVAL_S = 1.0


class _ProgressReporter:
    """The train() callback: job progress and history rows, throttled to once a second plus every eval.

    set_progress raises JobCancelled once a cancel is requested, which stops training at that step.
    """

    def __init__(self, job: Job, version: ModelVersion) -> None:
        self.job, self.version = job, version
        self.started = time.monotonic()
        self.last_write = float("-inf")

    def __call__(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        final = event.step == event.total_steps
        if event.eval_metrics is None and not final and now - self.last_write < HISTORY_INTERVAL_S:
            return
        self.last_write = now
        message = f"step {event.step}/{event.total_steps} · loss {event.loss:.2f}"
        # The last few percent are left for calibration, saving and the quantization check.
        self.job.set_progress(0.95 * event.step / event.total_steps, message)
        evaluated = dataclasses.asdict(event.eval_metrics) if event.eval_metrics is not None else None
        self.version.history.append(
            {
                "step": event.step,
                "total_steps": event.total_steps,
                "epoch": event.epoch,
                "loss": event.loss,
                "lr": event.lr,
                "eval": evaluated,
                "t": round(now - self.started, 3),
            }
        )
        self.version.save(update_fields=["history", "updated_at"])

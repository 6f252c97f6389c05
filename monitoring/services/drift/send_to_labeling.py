"""Sending a drifted run's texts to labeling: its top explanation candidates become a tagged queue batch.

The texts come back from the prediction log (the explanation keeps only ids and scores), are queued
through ``labeling.services.queue_batches`` under the tag ``drift:<run id>``, and the run records what
was sent, so a second send reports the first and changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from labeling.models import Project
from labeling.services.queue_batches import QueueBatchResult, QueueText, queue_batch_add
from modeling.models import PredictionLog
from modeling.services.releases import require_manager
from monitoring.models import DriftRun
from webapp.errors import Conflict, ValidationFailed

SEND_DEFAULT = 50
SEND_MAX = 500


@dataclass(frozen=True)
class SendResult:
    """What a send to labeling did (``already``: an earlier send, nothing changed now)."""

    run: DriftRun
    queued: int
    message: str
    already: bool = False
    batch: QueueBatchResult | None = None


@transaction.atomic
def drift_send_to_labeling(*, run: DriftRun, user: Any, limit: int = SEND_DEFAULT) -> SendResult:
    """Queue the run's most drifted texts (domain score x (1 - confidence)) as tag ``drift:<run id>``.

    Owners and admins; once per run (a second call reports the first and changes nothing). Their
    priorities sit above the active-learning batch's (an owner asked for them), best first.
    """
    project = Project.objects.get(pk=run.project_id)
    require_manager(project, user, "Sending drifted texts to labeling")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= SEND_MAX:
        raise ValidationFailed(f"limit must be a whole number from 1 to {SEND_MAX}.", details={"field": "limit"})
    run = DriftRun.objects.select_for_update().get(pk=run.pk)
    explanation = run.explanation or {}
    sent = explanation.get("sent")
    if sent:
        return SendResult(
            run, sent["queued"], f"Already sent on {sent['at'][:16].replace('T', ' ')} UTC: {sent['message']}", True
        )
    if not run.drifted:
        raise Conflict("This run detected no drift: there are no drifted texts to send.", code="no_drift")
    if explanation.get("status") != "ok":
        raise Conflict(
            f"No texts to send: {explanation.get('message', 'no explanation was computed')}", code="no_texts"
        )
    candidates = explanation["candidates"][:limit]
    logged = {
        str(row[0]): row
        for row in PredictionLog.objects.filter(
            project=project, id__in=[uuid.UUID(c["id"]) for c in candidates], text__isnull=False
        ).values_list("id", "text", "language", "label", "version_number")
    }
    texts = _queue_texts(project, run, [c for c in candidates if c["id"] in logged], logged)
    if not texts:
        raise Conflict("The run's texts are no longer in the prediction log (retention removed them).", code="no_texts")
    batch = queue_batch_add(project=project, texts=texts, tag=f"drift:{run.pk}")
    message = f"{batch.message[:-1]} under tag drift:{run.pk} (from {len(candidates)} ranked texts)."
    explanation["sent"] = {
        "at": timezone.now().isoformat(),
        "by": getattr(user, "username", ""),
        "queued": batch.queued,
        "created": len(batch.created),
        "requeued": len(batch.requeued),
        "already_labeled": len(batch.already_labeled),
        "message": message,
    }
    run.explanation = explanation
    run.sent_to_labeling = batch.queued
    run.save(update_fields=["explanation", "sent_to_labeling"])
    return SendResult(run, batch.queued, message, False, batch)


def _queue_texts(
    project: Project, run: DriftRun, chosen: list[dict[str, Any]], logged: dict[str, Any]
) -> list[QueueText]:
    top = max(1, project.al_batch_size) + len(chosen)
    texts = []
    for rank, candidate in enumerate(chosen):
        _, text, language, label, version = logged[candidate["id"]]
        if not text or text.isspace() or "\x00" in text or len(text) > project.max_text_chars:
            continue
        texts.append(
            QueueText(
                text=text,
                priority=float(top - rank),
                language=language or "",
                metadata={
                    "prediction_id": candidate["id"],
                    "drift_run": run.pk,
                    "version": version,
                    "predicted_label": label,
                    "domain_score": candidate["score"],
                    "confidence": candidate["confidence"],
                },
            )
        )
    return texts

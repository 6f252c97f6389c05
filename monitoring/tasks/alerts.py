"""Celery tasks: alerts (thin: ids in, a service call, the result recorded)."""

from __future__ import annotations

from celery import Task, shared_task

from monitoring.models import Notification
from monitoring.services.notifications import NOTIFICATION_MAX_ATTEMPTS, backoff_seconds, notification_attempt
from monitoring.services.slo import slos_evaluate_all


@shared_task(
    bind=True,
    name="monitoring.tasks.alerts.deliver_notification",
    ignore_result=True,
    queue="default",
    max_retries=NOTIFICATION_MAX_ATTEMPTS - 1,
)
def deliver_notification(self: Task, notification_id: int) -> str:
    """Deliver one notification; on failure retry with exponential backoff until attempts run out."""
    notification = notification_attempt(notification_id=notification_id)
    if notification is None:
        return "skipped"
    if notification.status == Notification.Status.PENDING:
        raise self.retry(countdown=backoff_seconds(notification.attempts))
    return str(notification.status)


@shared_task(name="monitoring.tasks.alerts.evaluate_slos", ignore_result=True, queue="default")
def evaluate_slos() -> int:
    """After each rollup fold: evaluate every project's SLO burn and fire or resolve its alerts."""
    return slos_evaluate_all()

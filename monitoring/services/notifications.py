"""Alert notifications: channels (e-mail, webhook), one ``Notification`` row per delivery, retries.

An alert event (fired, resolved) becomes one pending ``Notification`` per enabled channel whose
``min_severity`` it meets; the Celery task ``monitoring.tasks.alerts.deliver_notification`` sends it
once the alert's transaction commits and retries with exponential backoff until it is delivered or
``NOTIFICATION_MAX_ATTEMPTS`` attempts have failed. Webhooks get a JSON body that Slack's incoming
webhooks accept (``text``) plus structured fields for any other receiver.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from labeling.models import Project
from monitoring.models import Alert, Notification, NotificationChannel
from webapp.errors import ValidationFailed

logger = logging.getLogger(__name__)

NOTIFICATION_MAX_ATTEMPTS = 5
# Seconds before retry n (1-based): 30 s, 1 min, 2 min, 4 min: about 7.5 minutes of outage ridden out.
BACKOFF_BASE_SECONDS = 30
MAX_CHANNELS_PER_PROJECT = 20
MAX_EMAIL_RECIPIENTS = 20
_SEVERITY_RANK = {Alert.Severity.TICKET: 1, Alert.Severity.PAGE: 2}


def backoff_seconds(attempts: int) -> int:
    """Return the wait before the next attempt after ``attempts`` failed ones (exponential)."""
    return int(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0))


# --- channels ---------------------------------------------------------------------------------------


def _clean_target(kind: str, target: str) -> str:
    target = (target or "").strip()
    if not target:
        raise ValidationFailed("A channel needs a target: e-mail addresses or a webhook URL.")
    if len(target) > 1000:
        raise ValidationFailed("A channel's target holds at most 1,000 characters.")
    if kind == NotificationChannel.Kind.WEBHOOK:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationFailed(
                f"A webhook URL must start with http:// or https:// and name a host; got {target[:100]!r}."
            )
        return target
    addresses = [a.strip() for a in target.split(",") if a.strip()]
    if len(addresses) > MAX_EMAIL_RECIPIENTS:
        raise ValidationFailed(f"An e-mail channel holds at most {MAX_EMAIL_RECIPIENTS} addresses.")
    for address in addresses:
        try:
            validate_email(address)
        except DjangoValidationError:
            raise ValidationFailed(f"{address[:100]!r} is not an e-mail address.") from None
    return ", ".join(addresses)


@transaction.atomic
def channel_create(
    *, project: Project, kind: str, name: str, target: str, min_severity: str, user: AbstractBaseUser | None
) -> NotificationChannel:
    """Add a notification channel to the project; bad input is a ValidationFailed and creates nothing."""
    if kind not in NotificationChannel.Kind.values:
        raise ValidationFailed(f"Unknown channel kind {kind!r}; use 'email' or 'webhook'.")
    if min_severity not in Alert.Severity.values:
        raise ValidationFailed(f"Unknown severity {min_severity!r}; use 'ticket' (everything) or 'page' (pages only).")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed("A channel needs a name of 1 to 100 characters.")
    target = _clean_target(kind, target)
    # Lock the project row so two concurrent creates cannot both pass the cap.
    Project.objects.select_for_update().filter(pk=project.pk).first()
    if NotificationChannel.objects.filter(project=project).count() >= MAX_CHANNELS_PER_PROJECT:
        raise ValidationFailed(f"A project holds at most {MAX_CHANNELS_PER_PROJECT} channels; remove one first.")
    return NotificationChannel.objects.create(
        project=project, kind=kind, name=name, target=target, min_severity=min_severity, created_by=user
    )


def channel_for_project(*, project: Project, channel_id: Any) -> NotificationChannel | None:
    """Return the project's channel with this id, or None (removed, or never the project's)."""
    try:
        return NotificationChannel.objects.filter(project=project, pk=int(channel_id)).first()
    except (TypeError, ValueError):
        return None


def channel_to_test(*, project: Project, channel_id: Any) -> NotificationChannel:
    """Return the channel a test is asked for; a channel that is not there is a 400 naming the id."""
    channel = channel_for_project(project=project, channel_id=channel_id)
    if channel is None:
        raise ValidationFailed(
            f"There is no notification channel {channel_id} in this project (it may have been removed); "
            "reload the channel list."
        )
    return channel


@transaction.atomic
def channel_delete(*, project: Project, channel_id: Any) -> NotificationChannel | None:
    """Remove the project's channel and its delivery history; removing one that is gone changes nothing."""
    channel = channel_for_project(project=project, channel_id=channel_id)
    if channel is not None:
        channel.delete()
    return channel


# --- payloads ---------------------------------------------------------------------------------------


def alert_page_path(alert: Alert) -> str:
    """Return the URL of the page that shows the alert's evidence (the SLO page for burn alerts).

    Absolute under ``PUBLIC_BASE_URL`` when it is set (mail and chat need it), else the path.
    """
    names = {
        Alert.Kind.BURN: "monitoring:slo",
        Alert.Kind.DRIFT: "monitoring:drift",
        Alert.Kind.ACCURACY: "monitoring:quality",
    }
    for name in (names.get(Alert.Kind(alert.kind)), "monitoring:alerts"):
        try:
            return settings.PUBLIC_BASE_URL + reverse(name, kwargs={"slug": alert.project.slug}) if name else ""
        except NoReverseMatch:
            continue
    return ""


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    payload: dict[str, Any]


def alert_message(*, alert: Alert, event: str) -> Message:
    """Return the subject, plain text and JSON body that announce ``event`` of ``alert``."""
    verb = {"fired": "FIRING", "resolved": "RESOLVED"}.get(event, event.upper())
    version = f" (v{alert.version_number})" if alert.version_number is not None else ""
    subject = f"[{alert.project.slug}] {verb} {alert.severity}: {alert.title}{version}"
    evidence_lines = [f"  {k}: {v}" for k, v in alert.evidence.items() if not isinstance(v, dict | list)]
    when = alert.resolved_at if event == Notification.Event.RESOLVED and alert.resolved_at else alert.started_at
    text = "\n".join(
        [subject, f"{event} at {when:%Y-%m-%d %H:%M:%S} UTC", *evidence_lines, f"Details: {alert_page_path(alert)}"]
    )
    payload = {
        "text": subject,
        "event": event,
        "project": alert.project.slug,
        "alert": {
            "id": alert.pk,
            "key": alert.key,
            "kind": alert.kind,
            "severity": alert.severity,
            "state": alert.state,
            "title": alert.title,
            "version_number": alert.version_number,
            "started_at": alert.started_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
            "evidence": alert.evidence,
            "url": alert_page_path(alert),
        },
    }
    return Message(subject=subject, text=text, payload=payload)


def channel_test_message(*, channel: NotificationChannel) -> Message:
    subject = f"[{channel.project.slug}] Test notification from Loopline"
    text = f"{subject}\nChannel {channel.name!r} ({channel.kind}) is set up: real alerts will arrive here."
    payload = {"text": subject, "event": "test", "project": channel.project.slug, "channel": channel.name}
    return Message(subject=subject, text=text, payload=payload)


# --- enqueue and deliver ----------------------------------------------------------------------------


def notifications_enqueue(*, alert: Alert, event: str) -> list[Notification]:
    """Create one pending notification per matching channel; the task sends them after commit."""
    rank = _SEVERITY_RANK[Alert.Severity(alert.severity)]
    channels = [
        c
        for c in NotificationChannel.objects.filter(project_id=alert.project_id, enabled=True)
        if _SEVERITY_RANK[Alert.Severity(c.min_severity)] <= rank
    ]
    if not channels:
        return []
    message = alert_message(alert=alert, event=event)
    rows = [
        Notification.objects.create(
            alert=alert, channel=c, event=event, payload={**message.payload, "body": message.text}
        )
        for c in channels
    ]
    from monitoring.tasks.alerts import deliver_notification  # the task module imports this one

    for row in rows:
        transaction.on_commit(lambda pk=row.pk: deliver_notification.delay(pk))
    return rows


def _send(channel: NotificationChannel, notification: Notification) -> None:
    """Deliver once; raise on any failure (the caller records it)."""
    payload = notification.payload
    if channel.kind == NotificationChannel.Kind.EMAIL:
        text = payload.get("body") or json.dumps(payload, indent=2, default=str)
        send_mail(
            subject=str(payload.get("text", "Loopline alert"))[:200],
            message=text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[a.strip() for a in channel.target.split(",") if a.strip()],
            fail_silently=False,
        )
        return
    if urlsplit(channel.target).scheme not in ("http", "https"):
        raise ValueError("A webhook URL must be http(s).")  # checked on create too; never open file: etc.
    body = {k: v for k, v in payload.items() if k != "body"}
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        channel.target,
        data=json.dumps(body, default=str).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "Loopline-alerts"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310
        response.read(1024)


def notification_attempt(*, notification_id: int, max_attempts: int = NOTIFICATION_MAX_ATTEMPTS) -> Notification | None:
    """Try to deliver a pending notification once and record the outcome.

    Returns the row (``status`` pending means: try again later), or None when it no longer exists or
    is no longer pending (delivered, failed, or its channel removed): a redelivered task is a no-op.
    """
    with transaction.atomic():
        # Claim the attempt under a row lock so a redelivered task and the original never both send.
        notification = (
            Notification.objects.select_for_update()
            .select_related("channel__project")
            .filter(pk=notification_id, status=Notification.Status.PENDING)
            .first()
        )
        if notification is None:
            return None
        notification.attempts += 1
        notification.save(update_fields=["attempts"])
    try:
        _send(notification.channel, notification)
    except (OSError, urllib.error.URLError, ValueError) as exc:  # HTTPError and SMTP errors are OSErrors
        notification.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if notification.attempts >= max_attempts:
            notification.status = Notification.Status.FAILED
        logger.warning(
            "notification delivery failed",
            extra={"notification_id": notification.pk, "attempts": notification.attempts},
        )
    else:
        notification.status = Notification.Status.DELIVERED
        notification.delivered_at = timezone.now()  # last_error keeps the failed attempt before, if any
    notification.save(update_fields=["status", "last_error", "delivered_at"])
    return notification


def channel_send_test(*, channel: NotificationChannel) -> Notification:
    """Send a test notification to the channel now (one attempt) and return its recorded outcome.

    A person pressing "send test" wants the answer at once, so this attempt runs in the request; a
    failure is recorded as failed with its error rather than retried in the background.
    """
    message = channel_test_message(channel=channel)
    notification = Notification.objects.create(
        channel=channel, event=Notification.Event.TEST, payload={**message.payload, "body": message.text}
    )
    result = notification_attempt(notification_id=notification.pk, max_attempts=1)
    assert result is not None
    return result

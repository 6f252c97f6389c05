"""The alert lifecycle: fire (deduplicated by key), update while it lasts, resolve when it clears.

Every evaluator (SLO burn, drift, accuracy) goes through these three functions, so the rules hold
everywhere: one firing alert per (project, key), notifications only when an alert starts, is upgraded
from ticket to page, or resolves, never on each evaluation that sees it still firing.

Race safety: the partial unique constraint ``alert_one_firing_per_key`` (one *firing* row per project
and key) is the arbiter. The firing row is read with ``select_for_update``; when none exists we insert
inside a savepoint. Two evaluators inserting at once on PostgreSQL: the second insert waits on the
first's uncommitted index entry, then fails with an IntegrityError once it commits; we roll back to the
savepoint, read the committed row (READ COMMITTED sees it) and update it instead. SQLite serialises
writers, so the same code is simply never contended there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling.models import Project
from monitoring.models import Alert, Notification
from monitoring.services.notifications import notifications_enqueue

SEVERITY_RANK = {Alert.Severity.TICKET: 1, Alert.Severity.PAGE: 2}


@dataclass(frozen=True)
class AlertSpec:
    """What an evaluator sees firing under one key: the alert's severity, title and evidence."""

    severity: str
    title: str
    evidence: dict[str, Any] = field(default_factory=dict)
    version_number: int | None = None


def _check(kind: str, severity: str) -> None:
    if kind not in Alert.Kind.values:
        raise ValueError(f"Unknown alert kind {kind!r}; use one of {Alert.Kind.values}.")
    if severity not in Alert.Severity.values:
        raise ValueError(f"Unknown alert severity {severity!r}; use one of {Alert.Severity.values}.")


def _firing(project: Project, key: str) -> Alert | None:
    return Alert.objects.select_for_update().filter(project=project, key=key, state=Alert.State.FIRING).first()


@transaction.atomic
def alert_fire(
    *,
    project: Project,
    key: str,
    kind: str,
    severity: str,
    title: str,
    evidence: dict[str, Any],
    version_number: int | None = None,
    now: datetime | None = None,
) -> Alert:
    """Fire the alert for ``key``, or update the one already firing (deduplicated).

    Channels are notified when the alert starts and when it is upgraded from ticket to page. A firing
    alert keeps its highest severity until it resolves: a page that eases to ticket level is still the
    same incident, and flapping between the two must not notify on every swing.
    """
    _check(kind, severity)
    now = now or timezone.now()
    alert = _firing(project, key)
    if alert is None:
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    project=project,
                    key=key,
                    kind=kind,
                    severity=severity,
                    title=title,
                    evidence=evidence,
                    version_number=version_number,
                    started_at=now,
                    last_seen_at=now,
                )
        except IntegrityError:
            # Another evaluator created it between our read and our insert (see the module docstring).
            alert = _firing(project, key)
            if alert is None:
                raise
        else:
            notifications_enqueue(alert=alert, event=Notification.Event.FIRED)
            return alert
    upgraded = SEVERITY_RANK[Alert.Severity(severity)] > SEVERITY_RANK[Alert.Severity(alert.severity)]
    alert.last_seen_at = max(alert.last_seen_at, now)
    alert.evidence = evidence
    alert.title = title
    if upgraded:
        alert.severity = severity
    alert.save(update_fields=["last_seen_at", "evidence", "title", "severity"])
    if upgraded:
        notifications_enqueue(alert=alert, event=Notification.Event.FIRED)
    return alert


@transaction.atomic
def alert_resolve(*, project: Project, key: str, now: datetime | None = None) -> Alert | None:
    """Resolve the firing alert with ``key`` and notify its channels; None when nothing fires under it."""
    alert = _firing(project, key)
    if alert is None:
        return None
    alert.state = Alert.State.RESOLVED
    alert.resolved_at = now or timezone.now()
    alert.save(update_fields=["state", "resolved_at"])
    notifications_enqueue(alert=alert, event=Notification.Event.RESOLVED)
    return alert


@transaction.atomic
def alerts_sync(
    *,
    project: Project,
    kind: str,
    firing: Mapping[str, AlertSpec],
    now: datetime | None = None,
    key_prefix: str = "",
) -> None:
    """Fire or update every alert in ``firing``; resolve every other firing alert of this kind.

    ``key_prefix`` narrows what this evaluator owns: only firing alerts of ``kind`` whose key starts
    with it are resolved when absent from ``firing`` (two evaluators may share a kind, e.g. the quality
    SLO's "slo:quality:" keys and the accuracy monitor's own keys, both of kind "accuracy").
    """
    for key in firing:
        if not key.startswith(key_prefix):
            raise ValueError(f"Alert key {key!r} does not start with this evaluator's prefix {key_prefix!r}.")
    now = now or timezone.now()
    for key, spec in firing.items():
        alert_fire(
            project=project,
            key=key,
            kind=kind,
            severity=spec.severity,
            title=spec.title,
            evidence=spec.evidence,
            version_number=spec.version_number,
            now=now,
        )
    stale = (
        Alert.objects.filter(project=project, kind=kind, state=Alert.State.FIRING, key__startswith=key_prefix)
        .exclude(key__in=list(firing))
        .values_list("key", flat=True)
    )
    for key in list(stale):
        alert_resolve(project=project, key=key, now=now)

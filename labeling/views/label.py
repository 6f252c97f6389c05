"""The keyboard-first labeling page: one item at a time, the next one prefetched (``static/labeling/label.js``).

The page itself leases nothing (a GET stays safe to repeat): it shows what the reviewer already holds,
and its script asks the queue API for the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from labeling.api.queue import held_payload
from labeling.models import Annotation, Label, Lease, Project
from labeling.selectors import project_for_user
from labeling.services.queue import MAX_HELD

# Keys the page keeps for itself: skip, undo and the keys overlay (Enter accepts the suggestion).
RESERVED_KEYS = frozenset({"s", "u", "?"})
DIGITS = "123456789"
# Heartbeats renew leases well before they lapse, and at least once a minute.
MAX_HEARTBEAT_SECONDS = 60
# Placeholders in the endpoint URLs the page fills in.
ZERO_UUID = "00000000-0000-0000-0000-000000000000"


def label_hotkeys(labels: Iterable[Label]) -> list[tuple[Label, str]]:
    """Pair each label with its key: its own hotkey when set and free, else its 1-based position as a
    digit, else the next free digit; labels past the ninth without a key of their own get none ('').
    """
    labels = list(labels)
    taken = set(RESERVED_KEYS)
    keys: dict[int, str] = {}
    for label in labels:
        own = label.hotkey.lower()
        if own and own not in taken:
            keys[label.pk] = own
            taken.add(own)
    for position, label in enumerate(labels, start=1):
        if label.pk in keys:
            continue
        digit = str(position) if position <= len(DIGITS) and str(position) not in taken else ""
        digit = digit or next((d for d in DIGITS if d not in taken), "")
        keys[label.pk] = digit
        taken.add(digit)
    return [(label, keys[label.pk]) for label in labels]


def _start_of_today() -> datetime:
    today = timezone.localdate()
    return timezone.make_aware(datetime.combine(today, time.min), timezone.get_current_timezone())


def _config(request: HttpRequest, project: Project, keyed: list[tuple[Label, str]]) -> dict[str, Any]:
    """Everything the page's script needs: endpoints, keys, the held items and today's count so far."""
    slug = project.slug
    held = Lease.objects.filter(
        project=project, user=request.user, released_at__isnull=True, expires_at__gt=timezone.now()
    ).order_by("created_at")[:MAX_HELD]
    labeled_today = Annotation.objects.filter(
        project=project,
        user=request.user,
        kind=Annotation.Kind.LABEL,
        retracted_by__isnull=True,
        created_at__gte=_start_of_today(),
    ).count()
    return {
        "csrf": get_token(request),
        "urls": {
            "next": reverse("api-queue-next", kwargs={"slug": slug}),
            "annotations": reverse("api-annotation-create", kwargs={"slug": slug}),
            "skip": reverse("api-queue-skip", kwargs={"slug": slug}),
            # The page fills in the ids: 0 and ZERO_UUID stand in for them.
            "undo": reverse("api-annotation-undo", kwargs={"slug": slug, "annotation_id": 0}),
            "heartbeat": reverse("api-lease-heartbeat", kwargs={"slug": slug, "lease_id": ZERO_UUID}),
        },
        "labels": [{"id": label.pk, "name": label.name, "key": key, "color": label.color} for label, key in keyed],
        # ?prefetch=0 turns prefetching off: every key press waits for the submit round trip (the baseline).
        "prefetch": request.GET.get("prefetch") != "0",
        "heartbeat_seconds": max(5, min(MAX_HEARTBEAT_SECONDS, project.lease_ttl_seconds // 3)),
        "held": held_payload(project, list(held)),
        "labeled_today": labeled_today,
    }


@login_required
@require_GET
def label_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug)
    keyed = label_hotkeys(project.labels.all())
    config = _config(request, project, keyed)
    context = {
        "project": project,
        "keyed_labels": keyed,
        "config": config,
        "current": config["held"]["next"],
        "remaining": config["held"]["remaining"],
    }
    return render(request, "labeling/label.html", context)

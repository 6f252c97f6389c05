"""SLO and alert pages: error budgets and burn-rate charts, the SLO settings, the one alert list and the
notification channels.

Every member reads; owners and admins change the SLOs and the channels. A refused change renders the
page again with the message and the error's status (400), keeping what was typed.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from labeling.models import Project, Role
from labeling.selectors import project_for_user
from modeling.charts import figure_json
from monitoring import charts_slo
from monitoring.forms_slo import ChannelForm, SloForm
from monitoring.models import Alert, Notification, NotificationChannel
from monitoring.selectors.slo import SLOS, burn_series
from monitoring.services.notifications import channel_create, channel_delete, channel_send_test, channel_to_test
from monitoring.services.slo import policies_for, slo_get, slo_status, slo_update
from monitoring.stats.burn import window_label
from monitoring.timerange import RANGES, parse_time_range
from webapp.errors import ApplicationError, ValidationFailed

MANAGERS = (Role.OWNER, Role.ADMIN)
ALERT_PAGE = 200


def _is_manager(project: Project) -> bool:
    return getattr(project, "user_role", None) in MANAGERS


def _slo_context(request: HttpRequest, project: Project, form: SloForm | None) -> dict[str, Any]:
    time_range = parse_time_range(request.GET)
    objective = slo_get(project=project)
    policies = policies_for(objective)
    until, statuses = slo_status(project=project)
    targets = {"availability": objective.availability_target, "latency": objective.latency_target}
    series = burn_series(
        project=project,
        start=time_range.start,
        end=time_range.end,
        step=time_range.step,
        fine=time_range.grain == "minute",
        targets=targets,
        windows=sorted({p.long_window for p in policies}),
        threshold_ms=objective.latency_threshold_ms,
    )
    thresholds = [(p.name, p.factor, p.severity) for p in policies]
    figures = {
        f"burn_{slo}": figure_json(
            charts_slo.burn_chart(
                series.times,
                {window_label(w): values for w, values in series.burns[slo].items()},
                thresholds,
                title=f"{slo.capitalize()} burn rate",
            )
        )
        for slo in SLOS
    }
    firing = Alert.objects.filter(project=project, state=Alert.State.FIRING).order_by("-started_at")[:50]
    return {
        "project": project,
        "objective": objective,
        "policies": policies,
        "statuses": statuses,
        "data_until": until,
        "figures": figures,
        "time_range": time_range,
        "range_choices": list(RANGES),
        "firing": firing,
        "is_manager": _is_manager(project),
        "form": form if form is not None else (SloForm.for_objective(objective) if _is_manager(project) else None),
    }


@login_required
@require_GET
def slo(request: HttpRequest, slug: str) -> HttpResponse:
    """Error budget remaining, burn rate per window with the thresholds, the policy table, the settings."""
    project = project_for_user(user=request.user, slug=slug)
    return render(request, "monitoring/slo.html", _slo_context(request, project, None))


@login_required
@require_POST
def slo_settings(request: HttpRequest, slug: str) -> HttpResponse:
    """Owners and admins change the SLOs; a refused change shows the page again with the message (400)."""
    project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
    form = SloForm(request.POST)
    if form.is_valid():
        try:
            slo_update(project=project, user=request.user, changes=form.changes())
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "SLOs saved; the next evaluation (within a minute) uses them.")
            return redirect("monitoring:slo", slug=project.slug)
    else:
        messages.error(request, "Please fix the problems below.")
    return render(request, "monitoring/slo.html", _slo_context(request, project, form), status=400)


def _choice(request: HttpRequest, name: str, choices: list[str]) -> str:
    value = request.GET.get(name, "")
    if value and value not in choices:
        raise ValidationFailed(f"Unknown {name} {value!r}; use one of {', '.join(choices)}.")
    return value


def _alerts_context(request: HttpRequest, project: Project, channel_form: ChannelForm | None) -> dict[str, Any]:
    state = _choice(request, "state", Alert.State.values)
    kind = _choice(request, "kind", Alert.Kind.values)
    alerts = Alert.objects.filter(project=project).order_by("-started_at")
    if state:
        alerts = alerts.filter(state=state)
    if kind:
        alerts = alerts.filter(kind=kind)
    channels = []
    if _is_manager(project):
        channels = list(NotificationChannel.objects.filter(project=project).order_by("name"))
        for channel in channels:
            channel.last_notification = (  # type: ignore[attr-defined]
                Notification.objects.filter(channel=channel).order_by("-created_at").first()
            )
    return {
        "project": project,
        "alerts": list(alerts[:ALERT_PAGE]),
        "state": state,
        "kind": kind,
        "states": Alert.State.choices,
        "kinds": Alert.Kind.choices,
        "is_manager": _is_manager(project),
        "channels": channels,
        "channel_form": channel_form or (ChannelForm() if _is_manager(project) else None),
    }


@login_required
@require_GET
def alerts(request: HttpRequest, slug: str) -> HttpResponse:
    """The one alert list (filters by state and kind) and, for owners and admins, the channels."""
    project = project_for_user(user=request.user, slug=slug)
    return render(request, "monitoring/alerts.html", _alerts_context(request, project, None))


@login_required
@require_POST
def channel_add(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
    form = ChannelForm(request.POST)
    if form.is_valid():
        try:
            channel = channel_create(project=project, user=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Channel {channel.name!r} added.")
            return redirect("monitoring:alerts", slug=project.slug)
    else:
        messages.error(request, "Please fix the problems in the channel form.")
    return render(request, "monitoring/alerts.html", _alerts_context(request, project, form), status=400)


@login_required
@require_POST
def channel_remove(request: HttpRequest, slug: str, channel_id: int) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
    channel = channel_delete(project=project, channel_id=channel_id)
    if channel is not None:
        messages.success(request, f"Channel {channel.name!r} removed.")
    else:
        messages.info(request, "That channel was already removed.")
    return redirect("monitoring:alerts", slug=project.slug)


@login_required
@require_POST
def channel_test(request: HttpRequest, slug: str, channel_id: int) -> HttpResponse:
    """Send a test notification now and say whether it was delivered."""
    project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
    channel = channel_to_test(project=project, channel_id=channel_id)
    notification = channel_send_test(channel=channel)
    if notification.status == Notification.Status.DELIVERED:
        messages.success(request, f"Test notification delivered to {channel.name!r}.")
    else:
        messages.error(request, f"Test notification to {channel.name!r} failed: {notification.last_error}")
    return redirect("monitoring:alerts", slug=project.slug)

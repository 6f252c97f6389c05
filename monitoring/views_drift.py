"""The drift page: each test over time with its threshold, the latest (or chosen) run per test and per
language, the explanation, and the owners' actions (run now, send to labeling).

Every member reads; owners and admins act. A refused action renders the page again with the message
and the error's status, changing nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from labeling.models import Project, Role
from labeling.selectors import project_for_user
from modeling.charts import figure_json
from monitoring import charts_drift
from monitoring.selectors.drift import chart_points, drift_overview, drift_run_get
from monitoring.services.drift import (
    ON_DEMAND_HOURS,
    PER_LANGUAGE_TESTS,
    SEND_DEFAULT,
    TESTS,
    drift_run_request,
    drift_send_to_labeling,
)
from monitoring.timerange import RANGES, parse_time_range
from webapp.errors import ApplicationError, ValidationFailed

MANAGERS = (Role.OWNER, Role.ADMIN)
LANGUAGE_COLUMNS = PER_LANGUAGE_TESTS
TEST_TITLES = {
    "prediction": "Predicted-label distribution (chi-square; alerts also need PSI and enough predictions)",
    "softmax_ks": "Softmax outputs (KS per class, Bonferroni)",
    "embedding_mmd": "Embeddings (MMD, RBF kernel, permutation test)",
    "length": "Text length (KS)",
    "unk_rate": "Unknown-token rate (KS)",
    "script": "Script mix (chi-square)",
    "language": "Language mix (chi-square)",
}


def _context(request: HttpRequest, project: Project, *, error: str = "") -> dict[str, Any]:
    time_range = parse_time_range(request.GET)
    overview = drift_overview(
        project=project, start=time_range.start, end=time_range.end, run_id=request.GET.get("run")
    )
    figures = {
        name: figure_json(charts_drift.p_value_chart(chart_points(overview.runs, name), title=TEST_TITLES[name]))
        for name in TESTS
    }
    figures["psi"] = figure_json(charts_drift.psi_chart(chart_points(overview.runs, "prediction")))
    shown = overview.shown
    results = (shown.results or {}) if shown is not None else {}
    keep = request.GET.copy()
    keep.pop("range", None)
    return {
        "project": project,
        "overview": overview,
        "shown": shown,
        "overall": [(name, TEST_TITLES.get(name, name), entry) for name, entry in results.get("overall", {}).items()],
        "per_language": [
            (code, [tests.get(name) for name in LANGUAGE_COLUMNS])
            for code, tests in sorted(results.get("per_language", {}).items())
        ],
        "language_columns": LANGUAGE_COLUMNS,
        "charts": [(name, TEST_TITLES[name], figures[name]) for name in TESTS],
        "explanation": shown.explanation if shown is not None else None,
        "figures": figures,
        "time_range": time_range,
        "range_choices": list(RANGES),
        "keep": keep.urlencode(),
        "is_manager": getattr(project, "user_role", None) in MANAGERS,
        "on_demand_hours": ON_DEMAND_HOURS,
        "send_default": SEND_DEFAULT,
        "error": error,
    }


def _render(request: HttpRequest, project: Project, *, error: str = "", status: int = 200) -> HttpResponse:
    return render(request, "monitoring/drift.html", _context(request, project, error=error), status=status)


@login_required
@require_GET
def drift(request: HttpRequest, slug: str) -> HttpResponse:
    """Every member: the drift tests over the time range, the shown run, its explanation."""
    project = project_for_user(user=request.user, slug=slug)
    return _render(request, project)


def _whole_number(value: str, name: str, default: int) -> int:
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValidationFailed(f"{name} must be a whole number.", details={"field": name}) from None


@login_required
@require_POST
def drift_run_now(request: HttpRequest, slug: str) -> HttpResponse:
    """Owners and admins: queue the drift tests over the last ``hours`` of production traffic."""
    project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
    try:
        hours = _whole_number(request.POST.get("hours", ""), "hours", ON_DEMAND_HOURS)
        job = drift_run_request(project=project, user=request.user, hours=hours)
    except ApplicationError as exc:
        return _render(request, project, error=exc.message, status=exc.status_code)
    messages.success(
        request,
        f"Drift tests queued over the last {job.params.get('hours')} h (job {job.pk}); "
        "the run appears below when the job finishes.",
    )
    return redirect("monitoring:drift", slug=project.slug)


@login_required
@require_POST
def drift_send(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    """Owners and admins: send the run's most drifted texts to the labeling queue (once per run)."""
    project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
    try:
        run = drift_run_get(project=project, run_id=run_id)
        limit = _whole_number(request.POST.get("limit", ""), "limit", SEND_DEFAULT)
        result = drift_send_to_labeling(run=run, user=request.user, limit=limit)
    except ApplicationError as exc:
        return _render(request, project, error=exc.message, status=exc.status_code)
    (messages.info if result.already else messages.success)(request, result.message)
    return redirect(reverse("monitoring:drift", kwargs={"slug": project.slug}) + f"?run={run.pk}")

"""Release pages: a candidate's comparison with production (gates, statistics, approval and alias actions),
the release history (what was in production when, every event, rollback) and the release policy.

Actions post a form; success redirects back (302), a refused action renders the page again with the
message and the error's status (400/403/409), so what was typed in the form is kept.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from labeling.models import Item, Project, Role
from labeling.selectors import project_for_user
from modeling import charts, charts_releases
from modeling.charts import figure_json
from modeling.models import Comparison, ModelVersion, ReleasePolicy
from modeling.services.releases import (
    ALIASABLE,
    GATE_FIELDS,
    POLICY_FIELDS,
    SETTABLE_ALIASES,
    ReleaseState,
    alias_clear,
    alias_set,
    policy_for,
    release_approve,
    release_history,
    release_policy_update,
    release_promote,
    release_reject,
    release_rollback,
    release_state,
)
from webapp.errors import ApplicationError, NotFound, ValidationFailed

MANAGER_ROLES = (Role.OWNER, Role.ADMIN)
HISTORY_PAGE = 100
ACTIVE = (Comparison.Status.QUEUED, Comparison.Status.RUNNING)


def _version(project: Project, number: int) -> ModelVersion:
    version = (
        ModelVersion.objects.filter(project=project, number=number).select_related("created_by", "project").first()
    )
    if version is None:
        raise NotFound(f"Model version v{number} does not exist in this project.")
    return version


def _metric_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the side-by-side metrics table: both versions with their CIs and the paired delta."""
    cand, prod, paired = results["candidate"], results.get("production"), results.get("paired") or {}
    rows = []
    for key, name in (("macro_f1", "Macro-F1"), ("accuracy", "Accuracy")):
        rows.append(
            {
                "name": name,
                "candidate": cand[key],
                "candidate_ci": cand[f"{key}_ci"],
                "production": prod[key] if prod else None,
                "production_ci": prod[f"{key}_ci"] if prod else None,
                "delta": paired.get(key),
            }
        )
    for key, name in (("ece", "ECE (calibrated)"), ("brier", "Brier score")):
        delta = {"delta": cand[key] - prod[key], "delta_ci": None} if prod else None
        rows.append({"name": name, "candidate": cand[key], "production": prod[key] if prod else None, "delta": delta})
    return rows


def _figures(results: dict[str, Any]) -> dict[str, Any]:
    labels = results["labels"]
    cand, prod = results["candidate"], results.get("production")
    figures = {"confusion_candidate": figure_json(charts.confusion_heatmap(cand["confusion"], labels))}
    series = [(f"Candidate v{cand['version']}", cand["reliability"])]
    if prod:
        figures["confusion_production"] = figure_json(charts.confusion_heatmap(prod["confusion"], labels))
        series.append((f"Production v{prod['version']}", prod["reliability"]))
    figures["reliability"] = figure_json(charts_releases.reliability_comparison(series))
    if results.get("per_class_deltas"):
        figures["per_class"] = figure_json(
            charts_releases.delta_bars(results["per_class_deltas"], key="label", title="F1")
        )
    if results.get("per_language_deltas"):
        figures["per_language"] = figure_json(
            charts_releases.delta_bars(results["per_language_deltas"], key="language", title="Macro-F1")
        )
    return figures


def _disagreement_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the listed disagreements with each item's text and current status (one query)."""
    listed = results.get("disagreements", {}).get("items", [])
    items = Item.objects.filter(pk__in=[d["item_id"] for d in listed]).only("id", "text", "status", "language")
    by_id = {item.pk: item for item in items}
    return [{**d, "item": by_id.get(d["item_id"])} for d in listed]


def _with_points(rows: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [{**row, "points": row["delta"] * 100} for row in rows or []]


def _int8(results: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return the candidate's int8-vs-fp32 block with its deltas in points (None when int8 was not measured)."""
    block = (results or {}).get("candidate", {}).get("int8")
    if not block:
        return None
    points: dict[str, Any] = {}
    for key in ("accuracy_delta", "macro_f1_delta"):
        if key in block:
            points[f"{key}_points"] = block[key] * 100
        if block.get(f"{key}_ci"):
            points[f"{key}_ci_points"] = {end: value * 100 for end, value in block[f"{key}_ci"].items()}
    # A comparison stored before the paired int8 statistics has accuracy and agreement only.
    return {**block, **points, "paired": "macro_f1_delta" in block}


def _comparison_context(request: HttpRequest, project: Project, version: ModelVersion) -> dict[str, Any]:
    state: ReleaseState = release_state(version=version)
    results = state.usable.results if state.usable else None
    role = project.user_role  # type: ignore[attr-defined]
    latest = state.comparison
    running = latest if latest and latest.status in ACTIVE and latest.job and not latest.job.is_finished else None
    # A job that ended without finishing its comparison (cancelled, or reaped after its worker died) failed it too.
    ended = latest is not None and latest.status in ACTIVE and latest.job is not None and latest.job.is_finished
    failed = latest if latest and (latest.status == Comparison.Status.FAILED or ended) else None
    mine = any(a.user_id == request.user.pk for a in state.approvals)
    two_person_blocked = bool(
        state.policy.two_person_rule and version.created_by_id and version.created_by_id == request.user.pk
    )
    return {
        "project": project,
        "version": version,
        "state": state,
        "results": results,
        "metric_rows": _metric_rows(results) if results else [],
        "figures": _figures(results) if results else {},
        "disagreements": _disagreement_rows(results) if results else [],
        "class_deltas": _with_points(results.get("per_class_deltas") if results else None),
        "language_deltas": _with_points(results.get("per_language_deltas") if results else None),
        "running": running,
        "failed_comparison": failed,
        "may_act": role in MANAGER_ROLES,
        "is_admin": role == Role.ADMIN,
        "may_approve": version.status == ModelVersion.Status.CANDIDATE and not mine and not two_person_blocked,
        "two_person_blocked": two_person_blocked,
        "approved_by_me": mine,
        "aliasable": version.status in ALIASABLE,
        "alias_names": SETTABLE_ALIASES,
        "quantization": (version.metrics or {}).get("quantization") or {},
        "int8": _int8(results),
        "int8_policy": state.policy.quantize_int8,
    }


def _render_comparison(
    request: HttpRequest, project: Project, version: ModelVersion, *, error: str = "", status: int = 200
) -> HttpResponse:
    context = _comparison_context(request, project, version)
    context.update(error=error, form=request.POST if request.method == "POST" else {})
    return render(request, "modeling/comparison.html", context, status=status)


@login_required
@require_GET
def comparison(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """The candidate beside production; every member may read it, owners and admins act on it."""
    project = project_for_user(user=request.user, slug=slug)
    return _render_comparison(request, project, _version(project, number))


def _act(request: HttpRequest, slug: str, number: int, action: Any) -> HttpResponse:
    """Run ``action(project, version)`` for an owner/admin: redirect with its message, or re-render with the error."""
    project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
    version = _version(project, number)
    try:
        message = action(project, version)
    except ApplicationError as exc:
        return _render_comparison(request, project, version, error=exc.message, status=exc.status_code)
    messages.success(request, message)
    return redirect("modeling:comparison", slug=project.slug, number=version.number)


@login_required
@require_POST
def comparison_run(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    from modeling.services.comparison import comparison_start

    def run(project: Project, version: ModelVersion) -> str:
        started = comparison_start(version=version, user=request.user)
        against = f"v{started.production.number}" if started.production else "no production version (absolute gates)"
        return f"Comparison of v{version.number} with {against} queued."

    return _act(request, slug, number, run)


@login_required
@require_POST
def approve(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    def run(project: Project, version: ModelVersion) -> str:
        outcome = release_approve(
            version=version,
            user=request.user,
            comment=request.POST.get("comment", ""),
            override_reason=request.POST.get("override_reason", ""),
        )
        if outcome.approved:
            return f"v{version.number} is approved; it can be promoted."
        return f"Approval recorded ({outcome.approvals} of {outcome.required})."

    return _act(request, slug, number, run)


@login_required
@require_POST
def reject(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    def run(project: Project, version: ModelVersion) -> str:
        release_reject(version=version, user=request.user, comment=request.POST.get("comment", ""))
        return f"v{version.number} is rejected."

    return _act(request, slug, number, run)


@login_required
@require_POST
def promote(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    def run(project: Project, version: ModelVersion) -> str:
        release_promote(version=version, user=request.user, comment=request.POST.get("comment", ""))
        return f"v{version.number} is now in production."

    return _act(request, slug, number, run)


@login_required
@require_POST
def alias(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """Point the canary or shadow alias at this version (``action=set``) or remove it (``action=clear``)."""

    def run(project: Project, version: ModelVersion) -> str:
        name, action = request.POST.get("name", ""), request.POST.get("action", "")
        comment = request.POST.get("comment", "")
        if action == "set":
            alias_set(project=project, user=request.user, name=name, version=version, comment=comment)
            return f"The {name} alias now points at v{version.number}."
        if action == "clear":
            cleared = alias_clear(project=project, user=request.user, name=name, comment=comment)
            return f"The {name} alias was removed." if cleared else f"There was no {name} alias."
        raise ValidationFailed("Choose to set or clear the alias.", details={"action": [action]})

    return _act(request, slug, number, run)


@login_required
@require_POST
def send_to_review(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """Send the items the two versions disagree on to the labeling review queue."""
    from modeling.services.releases import disagreements_send_to_review

    def run(project: Project, version: ModelVersion) -> str:
        return disagreements_send_to_review(version=version, user=request.user).message

    return _act(request, slug, number, run)


def _history_context(request: HttpRequest, project: Project) -> dict[str, Any]:
    before = request.GET.get("before")
    if before is not None and not before.isdigit():
        raise ValidationFailed("before must be an event id.")
    history = release_history(project=project, limit=HISTORY_PAGE, before=int(before) if before else None)
    return {
        "project": project,
        "history": history,
        "may_act": project.user_role in MANAGER_ROLES,  # type: ignore[attr-defined]
    }


@login_required
@require_GET
def history(request: HttpRequest, slug: str) -> HttpResponse:
    """What was in production when, the aliases now, and every release event (newest first)."""
    project = project_for_user(user=request.user, slug=slug)
    try:
        context = _history_context(request, project)
    except ValidationFailed as exc:
        messages.error(request, exc.message)
        return redirect("modeling:release-history", slug=project.slug)
    return render(request, "modeling/history.html", context)


@login_required
@require_POST
def rollback(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
    try:
        target = release_rollback(project=project, user=request.user, comment=request.POST.get("comment", ""))
    except ApplicationError as exc:
        context = {**_history_context(request, project), "error": exc.message, "form": request.POST}
        return render(request, "modeling/history.html", context, status=exc.status_code)
    messages.success(request, f"Rolled back: v{target.number} is in production again.")
    return redirect("modeling:release-history", slug=project.slug)


class ReleasePolicyForm(forms.ModelForm):
    class Meta:
        model = ReleasePolicy
        fields = list(POLICY_FIELDS)
        labels = {
            "min_macro_f1": "Minimum eval macro-F1 (0–1)",
            "max_ece": "Maximum ECE (0–1)",
            "max_regression_points": "Maximum macro-F1 regression (points)",
            "max_class_regression_points": "Maximum per-class F1 regression (points)",
            "max_language_regression_points": "Maximum per-language macro-F1 regression (points)",
            "min_slice_items": "Minimum slice size (items)",
            "required_approvals": "Required approvals (1–5)",
            "canary_percent": "Canary share of traffic (%)",
            "max_texts_per_request": "Texts per request (max)",
            "max_text_chars": "Characters per text (max)",
            "rate_limit_per_minute": "Requests per minute per token",
            "shadow_enabled": "Shadow scoring",
            "quantize_int8": "Serve int8 on CPU",
            "log_texts": "Log prediction texts (redacted)",
        }
        widgets = {name: forms.NumberInput(attrs={"step": "any"}) for name in (*GATE_FIELDS[:5], "canary_percent")}


@login_required
@require_http_methods(["GET", "POST"])
def policy(request: HttpRequest, slug: str) -> HttpResponse:
    """Owners and admins set the gates, the approvals and the serving settings."""
    project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
    current = policy_for(project=project)
    status = 200
    if request.method == "POST":
        form = ReleasePolicyForm(request.POST, instance=ReleasePolicy.objects.get(pk=current.pk))
        status = 400
        if form.is_valid():
            try:
                release_policy_update(project=project, user=request.user, changes=form.cleaned_data)
            except ApplicationError as exc:
                messages.error(request, exc.message)
                status = exc.status_code
            else:
                messages.success(request, "Release policy saved.")
                return redirect("modeling:release-policy", slug=project.slug)
        else:
            messages.error(request, "Please fix the problems below.")
    else:
        form = ReleasePolicyForm(instance=current)
    context = {"project": project, "form": form, "policy": current}
    return render(request, "modeling/release_policy.html", context, status=status)

"""Project pages: list, overview, create/edit, members, jobs."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms import BaseFormSet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from labeling.forms import (
    LabelFormSet,
    MemberAddForm,
    MemberRoleForm,
    ProjectForm,
    label_rows_initial,
    label_specs,
)
from labeling.models import Membership, Project, Role
from labeling.selectors import project_for_user, projects_for_user
from labeling.services.projects import membership_remove, membership_set, project_create, project_update
from webapp.errors import ApplicationError, Conflict, Forbidden, ValidationFailed
from webapp.extensions import overview_panels
from webapp.models import Job

PROJECT_JOBS_SHOWN = 100


def may_create_projects(user: Any) -> bool:
    return user.is_superuser or user.has_perm("labeling.add_project")


@login_required
@require_GET
def project_list(request: HttpRequest) -> HttpResponse:
    projects = projects_for_user(user=request.user).select_related("counts").distinct()
    roles = dict(Membership.objects.filter(user=request.user).values_list("project_id", "role"))
    rows = [(project, Role(roles[project.pk]).label if project.pk in roles else "Superuser") for project in projects]
    context = {"rows": rows, "may_create": may_create_projects(request.user)}
    return render(request, "labeling/project_list.html", context)


@login_required
@require_GET
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug)
    context = {
        "project": project,
        "role": project.user_role,
        "may_manage": project.user_role in (Role.OWNER, Role.ADMIN),
        "is_admin": project.user_role == Role.ADMIN,
        "panels": overview_panels(project),
        "labels": project.labels.all(),
        "datasets": project.datasets.select_related("created_by")[:5],
        "jobs": Job.objects.filter(project=project).select_related("created_by")[:5],
    }
    return render(request, "labeling/project_detail.html", context)


def _apply_service_error(request: HttpRequest, form: ProjectForm, exc: ApplicationError) -> None:
    """Show a service's error on the form fields it names, the rest as messages."""
    details = exc.details if isinstance(exc.details, dict) else {}
    shown_on_field = False
    for key, message in details.items():
        if key in form.fields:
            # A conflict's details are codes ({"slug": "taken"}); its message is the sentence to show.
            plain = isinstance(message, str) and not isinstance(exc, Conflict)
            form.add_error(key, message if plain else exc.message)
            shown_on_field = True
        elif key.startswith("labels") or key == "in_use":
            text = message if isinstance(message, str) else f"{exc.message} ({', '.join(map(str, message))})"
            messages.error(request, text)
    if not details or not shown_on_field:
        messages.error(request, exc.message)


def _render_form(request: HttpRequest, form: ProjectForm, formset: BaseFormSet, **context: Any) -> HttpResponse:
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "formset": formset, **context}
    return render(request, "labeling/project_form.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def project_create_view(request: HttpRequest) -> HttpResponse:
    if not may_create_projects(request.user):
        raise Forbidden("Creating projects needs the “add project” permission; ask an operator.")
    if request.method == "GET":
        return _render_form(
            request,
            ProjectForm(),
            LabelFormSet(prefix="labels", initial=label_rows_initial(blank_rows=4)),
            creating=True,
        )
    form, formset = ProjectForm(request.POST), LabelFormSet(request.POST, prefix="labels")
    if form.is_valid() and formset.is_valid():
        try:
            project = project_create(spec=form.spec(label_specs(formset)), user=request.user)
        except ApplicationError as exc:
            _apply_service_error(request, form, exc)
        else:
            messages.success(request, f"Project {project.name} created; you are its admin. Import items next.")
            return redirect("labeling:project-detail", slug=project.slug)
    else:
        messages.error(request, "Please fix the problems below.")
    return _render_form(request, form, formset, creating=True)


@login_required
@require_http_methods(["GET", "POST"])
def project_edit(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
    if request.method == "GET":
        form = ProjectForm(initial=ProjectForm.initial_for(project), creating=False)
        formset = LabelFormSet(prefix="labels", initial=label_rows_initial(project))
        return _render_form(request, form, formset, project=project, creating=False)
    form = ProjectForm(request.POST, creating=False)
    formset = LabelFormSet(request.POST, prefix="labels", initial=label_rows_initial(project))
    if form.is_valid() and formset.is_valid():
        try:
            project_update(project=project, changes=form.changes(), labels=label_specs(formset))
        except ApplicationError as exc:
            project.refresh_from_db()
            _apply_service_error(request, form, exc)
        else:
            messages.success(request, "Project settings saved.")
            return redirect("labeling:project-detail", slug=project.slug)
    else:
        messages.error(request, "Please fix the problems below.")
    return _render_form(request, form, formset, project=project, creating=False)


@login_required
@require_http_methods(["GET", "POST"])
def project_members(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug, min_role=Role.ADMIN)
    add_form = MemberAddForm()
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "add":
                add_form = MemberAddForm(request.POST)
                _member_add(request, project, add_form)
            elif action in {"update", "remove"}:
                _member_change(request, project, action)
            else:
                raise ValidationFailed("Unknown action; use the buttons on this page.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            return redirect("labeling:project-members", slug=project.slug)
    memberships = project.memberships.select_related("user").order_by("user__username")
    context = {"project": project, "memberships": memberships, "add_form": add_form, "roles": Role.choices}
    return render(request, "labeling/project_members.html", context, status=400 if request.method == "POST" else 200)


def _member_add(request: HttpRequest, project: Project, form: MemberAddForm) -> None:
    if not form.is_valid():
        raise ValidationFailed(" ".join(message for errors in form.errors.values() for message in errors))
    user, role = form.cleaned_data["username"], form.cleaned_data["role"]
    if project.memberships.filter(user=user).exists():
        raise ValidationFailed(f"{user.username} is already a member; change their role in the table instead.")
    membership_set(project=project, user=user, role=role)
    messages.success(request, f"{user.username} added as {Role(role).label.lower()}.")


def _member_change(request: HttpRequest, project: Project, action: str) -> None:
    form = MemberRoleForm(request.POST if action == "update" else {**request.POST.dict(), "role": Role.REVIEWER})
    if not form.is_valid():
        raise ValidationFailed(" ".join(message for errors in form.errors.values() for message in errors))
    membership = project.memberships.select_related("user").filter(user__username=form.cleaned_data["username"])
    member = membership.first()
    if member is None:
        raise ValidationFailed(f"{form.cleaned_data['username']} is not a member of this project.")
    if action == "remove":
        membership_remove(project=project, user=member.user)
        messages.success(request, f"{member.user.username} removed.")
    else:
        membership_set(project=project, user=member.user, role=form.cleaned_data["role"])
        messages.success(request, f"{member.user.username} is now {Role(form.cleaned_data['role']).label.lower()}.")


@login_required
@require_GET
def project_jobs(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug)
    jobs = Job.objects.filter(project=project).select_related("created_by")[:PROJECT_JOBS_SHOWN]
    context = {"project": project, "jobs": jobs, "limit": PROJECT_JOBS_SHOWN}
    return render(request, "labeling/project_jobs.html", context)

"""Project pages: list, overview, create/edit, members."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from labeling.selectors import project_for_user, projects_for_user
from webapp.panels import overview_panels


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    projects = projects_for_user(user=request.user).select_related("counts")
    return render(request, "labeling/project_list.html", {"projects": projects})


@login_required
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug)
    return render(request, "labeling/project_detail.html", {"project": project, "panels": overview_panels(project)})


def _todo(request, *args, **kwargs):
    return HttpResponse(status=501)


project_create_view = project_edit = project_members = project_jobs = _todo

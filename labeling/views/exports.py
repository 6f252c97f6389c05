"""Export downloads: ``/projects/<slug>/export/<csv|jsonl>/``, streamed."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, StreamingHttpResponse
from django.views.decorators.http import require_GET

from labeling.models import Role
from labeling.selectors import project_for_user
from labeling.services.exports import export_response


@login_required
@require_GET
def export_download(request: HttpRequest, slug: str, fmt: str) -> StreamingHttpResponse:
    project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
    return export_response(project=project, fmt=fmt)

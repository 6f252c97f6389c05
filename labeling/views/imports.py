"""The import page: upload a CSV, JSONL or JSON file into a project."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from labeling.importing.report import MAX_REPORTED_ERRORS
from labeling.models import Dataset, Project, Role
from labeling.selectors import project_for_user
from labeling.services.imports import import_upload
from webapp.errors import ApplicationError

RECENT_DATASETS = 10


class ImportForm(forms.Form):
    file = forms.FileField(help_text="UTF-8 text, uncompressed.")
    format = forms.ChoiceField(
        required=False,
        choices=[("", "Tell from the file name"), *Dataset.Format.choices],
        help_text="The file name's extension (.csv, .jsonl/.ndjson, .json) decides unless you choose here.",
    )


@login_required
@require_http_methods(["GET", "POST"])
def import_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Show the upload form; import the posted file, now or as a background job."""
    project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
    if request.method != "POST":
        return _render(request, project, ImportForm())
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render(request, project, form, status=400)
    upload = form.cleaned_data["file"]
    try:
        outcome = import_upload(
            project=project,
            user=request.user,
            fileobj=upload,
            filename=upload.name,
            fmt=form.cleaned_data["format"] or None,
        )
    except ApplicationError as exc:
        return _render(request, project, form, failure=exc, status=exc.status_code)
    if outcome.job is not None:
        messages.info(request, f"{upload.name} is large: it is being imported in the background.")
        return redirect("job-detail", job_id=outcome.job.pk)
    dataset = outcome.dataset
    assert dataset is not None
    messages.success(
        request,
        f"Imported {dataset.items_created:,} items from {dataset.name} ({dataset.gold_labels:,} with gold labels, "
        f"{dataset.duplicates_skipped:,} duplicates skipped).",
    )
    return redirect("labeling:project-detail", slug=project.slug)


def _render(
    request: HttpRequest,
    project: Project,
    form: ImportForm,
    *,
    failure: ApplicationError | None = None,
    status: int = 200,
) -> HttpResponse:
    details = failure.details if failure is not None and isinstance(failure.details, dict) else {}
    context = {
        "project": project,
        "form": form,
        "failure": failure,
        "errors": details.get("errors", []),
        "error_count": details.get("error_count", 0),
        "max_errors": MAX_REPORTED_ERRORS,
        "labels": project.labels.order_by("order", "id").values_list("name", flat=True),
        "datasets": Dataset.objects.filter(project=project).order_by("-created_at", "-id")[:RECENT_DATASETS],
    }
    return render(request, "labeling/import.html", context, status=status)

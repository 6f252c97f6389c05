"""The review page (owners, admins: adjudicate disagreements and "unclear" items) and the agreement page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from labeling.item_queries import keyset_page, parse_cursor
from labeling.models import Label, Project, Role
from labeling.selectors import project_for_user
from labeling.services.agreement import FEW_ITEMS, project_agreement_cached
from labeling.services.review import recently_resolved, review_cards, review_queryset, review_resolve
from webapp.errors import ApplicationError, ValidationFailed

REVIEW_PAGE_SIZE = 25
NAVIGATION_KEYS = frozenset("jkn?")
MAX_NOTE_CHARS = 5_000


@login_required
@require_http_methods(["GET", "POST"])
def review_page(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the items in review, side by side. POST (the form without JavaScript): adjudicate one."""
    project = project_for_user(user=request.user, slug=slug, min_role=Role.OWNER)
    if request.method == "POST":
        try:
            resolution = review_resolve(project=project, user=request.user, **_resolve_form(request))
        except ApplicationError as exc:
            return _render_review(request, project, error=exc.message, status=exc.status_code)
        messages.success(request, f"Item {resolution.item_id} resolved as {resolution.label.name}.")
        return redirect(reverse("labeling:review", kwargs={"slug": project.slug}) + _cursor_query(request))
    return _render_review(request, project)


def _resolve_form(request: HttpRequest) -> dict[str, Any]:
    item = parse_cursor(request.POST.get("item"), "item")
    label = (request.POST.get("label") or "").strip()
    note = request.POST.get("note") or ""
    if item is None or not label:
        raise ValidationFailed("Choose an item and a label to resolve it with.")
    if len(note) > MAX_NOTE_CHARS:
        raise ValidationFailed(f"A note is at most {MAX_NOTE_CHARS} characters.")
    return {"item_id": item, "label": label, "note": note}


def _cursor_query(request: HttpRequest) -> str:
    after = request.POST.get("after") or request.GET.get("after")
    return f"?after={after}" if after and after.isdigit() else ""


def _render_review(request: HttpRequest, project: Project, *, error: str = "", status: int = 200) -> HttpResponse:
    try:
        after = parse_cursor(request.GET.get("after") or request.POST.get("after"), "after")
    except ValidationFailed as exc:
        after, error, status = None, exc.message, 400
    page = keyset_page(review_queryset(project=project), after=after, size=REVIEW_PAGE_SIZE)
    context = {
        "project": project,
        "label_keys": label_keys(list(project.labels.all())),
        "cards": review_cards(page.items),
        "page": page,
        "after": after,
        "in_review": project.counts.in_review if hasattr(project, "counts") else None,
        "resolved": recently_resolved(project=project),
        "error": error,
    }
    return render(request, "labeling/review.html", context, status=status)


def label_keys(labels: list[Label]) -> list[dict[str, Any]]:
    """Pair each label with the key that resolves with it: its own hotkey, else its position 1-9.

    A position digit that another label claims as its hotkey is not offered twice; the navigation
    keys (``NAVIGATION_KEYS``) are never label keys.
    """
    claimed = {label.hotkey for label in labels if label.hotkey and label.hotkey not in NAVIGATION_KEYS}
    choices = []
    for position, label in enumerate(labels, start=1):
        key = label.hotkey if label.hotkey in claimed else ""
        if not key and position <= 9 and str(position) not in claimed:
            key = str(position)
        choices.append({"label": label, "key": key})
    return choices


@login_required
@require_GET
def agreement_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Agreement figures for any member: project, per label, per reviewer pair, per reviewer against gold."""
    project = project_for_user(user=request.user, slug=slug)
    context = {"project": project, "agreement": project_agreement_cached(project=project), "few_items": FEW_ITEMS}
    return render(request, "labeling/agreement.html", context)

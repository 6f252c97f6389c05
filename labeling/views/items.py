"""The item list page: filters and keyset pages (``?after=<id>`` / ``?before=<id>``)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from labeling.item_queries import (
    NO_LABEL,
    ItemFilters,
    items_filtered,
    keyset_page,
    parse_cursor,
    parse_item_filters,
)
from labeling.models import Item, Role
from labeling.selectors import project_for_user
from webapp.errors import ValidationFailed


@login_required
@require_GET
def item_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_for_user(user=request.user, slug=slug)
    context = {
        "project": project,
        "may_manage": project.user_role in (Role.OWNER, Role.ADMIN),
        "labels": project.labels.all(),
        "statuses": Item.Status.choices,
        "splits": Item.Split.choices,
        "no_label": NO_LABEL,
        "params": request.GET,
        "errors": {},
    }
    try:
        filters = parse_item_filters(project=project, params=request.GET)
        after = parse_cursor(request.GET.get("after"), "after")
        before = parse_cursor(request.GET.get("before"), "before")
    except ValidationFailed as exc:
        context["errors"] = exc.details
        return render(request, "labeling/item_list.html", context, status=400)
    page = keyset_page(items_filtered(project=project, filters=filters), after=after, before=before)
    context.update(page=page, filters=filters, total=_known_total(project, filters), query=_filter_query(request))
    return render(request, "labeling/item_list.html", context)


def _known_total(project, filters: ItemFilters) -> int | None:
    """The total from the maintained counters where they answer it (no COUNT(*) per page)."""
    counts = getattr(project, "counts", None)
    if counts is None:
        return None
    if not filters.active:
        return counts.items
    only_status = filters.status and not (filters.label or filters.unlabeled_only or filters.language)
    if only_status and not (filters.split or filters.q or filters.confidence_range):
        return getattr(counts, filters.status)
    return None


def _filter_query(request: HttpRequest) -> str:
    """The current filters as a query string, without the cursor, for the pager links."""
    params = request.GET.copy()
    for key in ("after", "before"):
        params.pop(key, None)
    return params.urlencode()

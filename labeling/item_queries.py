"""The item list's reads: filters and keyset pages that stay fast at a million items.

Every filter maps onto an index that ends in ``id`` ((project, status, id), (project, split, id),
…), so a page is an index range scan of ``page_size + 1`` rows: no OFFSET, and no COUNT(*) over
the filtered set. Totals come from ``ProjectCounts``. Text search uses ``icontains``, which Django
renders as ``UPPER(text) LIKE UPPER(%s)``: the trigram index of migration 0003 serves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from labeling.models import Item, Label, Project
from webapp.errors import ValidationFailed

PAGE_SIZE = 50
MAX_QUERY_CHARS = 200


@dataclass(frozen=True)
class ItemFilters:
    status: str = ""
    label: Label | None = None
    unlabeled_only: bool = False
    language: str = ""
    split: str = ""
    q: str = ""

    @property
    def active(self) -> bool:
        return bool(self.status or self.label or self.unlabeled_only or self.language or self.split or self.q)


@dataclass(frozen=True)
class KeysetPage:
    items: list[Item]
    has_previous: bool
    has_next: bool

    @property
    def first_id(self) -> int | None:
        return self.items[0].pk if self.items else None

    @property
    def last_id(self) -> int | None:
        return self.items[-1].pk if self.items else None


NO_LABEL = "none"  # ``?label=none``: items without a gold label


def parse_item_filters(*, project: Project, params: Any) -> ItemFilters:
    """Read ``status``, ``label`` (a label name, or ``none``), ``language``, ``split`` and ``q``.

    Raises ``ValidationFailed`` naming each bad parameter.
    """
    errors: dict[str, str] = {}
    status = (params.get("status") or "").strip()
    if status and status not in Item.Status.values:
        errors["status"] = f"Unknown status {status!r}; use one of {', '.join(Item.Status.values)}."
    split = (params.get("split") or "").strip()
    if split and split not in Item.Split.values:
        errors["split"] = f"Unknown split {split!r}; use one of {', '.join(Item.Split.values)}."
    language = (params.get("language") or "").strip()
    if len(language) > 16:
        errors["language"] = "A language code is at most 16 characters."
    q = (params.get("q") or "").strip()
    if len(q) > MAX_QUERY_CHARS:
        errors["q"] = f"A search is at most {MAX_QUERY_CHARS} characters."
    label_name = (params.get("label") or "").strip()
    label = None
    if label_name and label_name != NO_LABEL:
        label = project.labels.filter(name=label_name).first()
        if label is None:
            errors["label"] = f"This project has no label {label_name!r}."
    if errors:
        raise ValidationFailed("Some filters are invalid; see details.", details=errors)
    return ItemFilters(status, label, label_name == NO_LABEL, language, split, q)


def items_filtered(*, project: Project, filters: ItemFilters) -> QuerySet[Item]:
    """Return the project's items matching ``filters``, ordered by id, gold label joined."""
    queryset = Item.objects.filter(project=project).select_related("gold_label")
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.split:
        queryset = queryset.filter(split=filters.split)
    if filters.language:
        queryset = queryset.filter(language=filters.language)
    if filters.label is not None:
        queryset = queryset.filter(gold_label=filters.label)
    elif filters.unlabeled_only:
        queryset = queryset.filter(gold_label__isnull=True)
    if filters.q:
        queryset = queryset.filter(text__icontains=filters.q)
    return queryset.order_by("id")


def keyset_page(
    queryset: QuerySet[Item], *, after: int | None = None, before: int | None = None, size: int = PAGE_SIZE
) -> KeysetPage:
    """Return the page of ``size`` items after id ``after``, before id ``before``, or the first page.

    One query of ``size + 1`` rows tells whether a page follows in the direction of travel; one
    EXISTS query (an index probe) tells whether one lies the other way.
    """
    if before is not None:
        rows = list(queryset.filter(id__lt=before).order_by("-id")[: size + 1])
        has_previous = len(rows) > size
        items = rows[:size][::-1]
        has_next = bool(items) and queryset.filter(id__gt=items[-1].pk).exists()
        if not items:  # walked back past the start: show the first page instead of an empty one
            return keyset_page(queryset, size=size)
        return KeysetPage(items, has_previous, has_next)
    queryset_after = queryset.filter(id__gt=after) if after is not None else queryset
    rows = list(queryset_after.order_by("id")[: size + 1])
    items = rows[:size]
    has_previous = after is not None and bool(items) and queryset.filter(id__lt=items[0].pk).exists()
    if after is not None and not items:
        has_previous = queryset.filter(id__lte=after).exists()
    return KeysetPage(items, has_previous, len(rows) > size)


def parse_cursor(value: str | None, name: str) -> int | None:
    """Return ``?after=`` / ``?before=`` as an id, or None; raise ``ValidationFailed`` if malformed."""
    if value in (None, ""):
        return None
    message = f"{name} must be an item id (a positive whole number)."
    try:
        cursor = int(value)
    except ValueError:
        raise ValidationFailed(message, details={name: message}) from None
    if cursor < 0:
        raise ValidationFailed(message, details={name: message})
    return cursor

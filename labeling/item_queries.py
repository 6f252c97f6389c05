"""The item list's reads: filters and keyset pages that stay fast at a million items.

Every filter maps onto an index that ends in ``id`` ((project, status, id), (project, split, id),
…), so a page is an index range scan of ``page_size + 1`` rows: no OFFSET, and no COUNT(*) over
the filtered set. Totals come from ``ProjectCounts``. Text search uses ``icontains``, which Django
renders as ``UPPER(text) LIKE UPPER(%s)``: the trigram index of migration 0003 serves it. The
confidence range has no index of its own: it filters the rows of whichever index walk the other
filters choose, so a page still reads ``page_size + 1`` matching rows in id order, never an OFFSET.
"""

from __future__ import annotations

import math
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
    min_confidence: float | None = None
    max_confidence: float | None = None

    @property
    def active(self) -> bool:
        return (
            bool(self.status or self.label or self.unlabeled_only or self.language or self.split or self.q)
            or self.confidence_range
        )

    @property
    def confidence_range(self) -> bool:
        return self.min_confidence is not None or self.max_confidence is not None


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


def _confidence(params: Any, name: str, errors: dict[str, str]) -> float | None:
    """Read ``?<name>=`` as a confidence between 0 and 1 (blank: no bound); record a message if malformed."""
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        errors[name] = f"{name} must be a number between 0 and 1, like 0.8; got {raw[:20]!r}."
        return None
    return value


def parse_item_filters(*, project: Project, params: Any) -> ItemFilters:
    """Read ``status``, ``label`` (a label name, or ``none``), ``language``, ``split``, ``q`` and the
    suggestion's confidence range ``min_confidence`` ≤ ``max_confidence`` (each 0-1, inclusive).

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
    low, high = _confidence(params, "min_confidence", errors), _confidence(params, "max_confidence", errors)
    if low is not None and high is not None and low > high:
        errors["min_confidence"] = f"min_confidence ({low:g}) must not exceed max_confidence ({high:g})."
    if errors:
        raise ValidationFailed("Some filters are invalid; see details.", details=errors)
    return ItemFilters(status, label, label_name == NO_LABEL, language, split, q, low, high)


def items_filtered(*, project: Project, filters: ItemFilters) -> QuerySet[Item]:
    """Return the project's items matching ``filters``, ordered by id, gold label and suggestion joined.

    A confidence bound leaves out items without a suggestion.
    """
    queryset = Item.objects.filter(project=project).select_related("gold_label", "predicted_label")
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
    if filters.min_confidence is not None:
        queryset = queryset.filter(predicted_confidence__gte=filters.min_confidence)
    if filters.max_confidence is not None:
        queryset = queryset.filter(predicted_confidence__lte=filters.max_confidence)
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

"""Review: the items in review with each reviewer's standing annotation, adjudications and their history.

An item is in review when its overlap reviewers disagree or one of them flagged it "unclear" (the
gold rules live in ``labeling.services.queue``); an owner's ``resolve`` row decides its gold label.
Listing reads go by the (project, status, id) index; a page's annotations come in one more query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch, QuerySet

from labeling.models import Annotation, Item, Label, Project
from labeling.services.queue import annotation_resolve
from webapp.errors import NotFound

RECENTLY_RESOLVED = 20


@dataclass
class ReviewCard:
    """One item in review: the item (suggestion joined) and each reviewer's standing annotation."""

    item: Item
    annotations: list[Annotation] = field(default_factory=list)

    @property
    def unclear(self) -> bool:
        return any(annotation.unclear for annotation in self.annotations)

    @property
    def disagreement(self) -> bool:
        return len({annotation.label_id for annotation in self.annotations}) > 1

    @property
    def reasons(self) -> list[str]:
        return [name for name, present in (("disagreement", self.disagreement), ("unclear", self.unclear)) if present]


def _standing_annotations() -> QuerySet[Annotation]:
    return (
        Annotation.objects.filter(kind=Annotation.Kind.LABEL, retracted_by__isnull=True)
        .select_related("user", "label")
        .order_by("id")
    )


def review_queryset(*, project: Project) -> QuerySet[Item]:
    """Return the project's items in review by id, suggestion joined, label annotations prefetched."""
    return (
        Item.objects.filter(project=project, status=Item.Status.IN_REVIEW)
        .select_related("predicted_label")
        .prefetch_related(Prefetch("annotations", queryset=_standing_annotations(), to_attr="standing"))
        .order_by("id")
    )


def review_cards(items: Iterable[Item]) -> list[ReviewCard]:
    """Return a card per item of ``review_queryset``, keeping each reviewer's latest standing annotation."""
    cards = []
    for item in items:
        latest: dict[int, Annotation] = {}
        for annotation in getattr(item, "standing", []):
            latest[annotation.user_id] = annotation
        cards.append(ReviewCard(item=item, annotations=sorted(latest.values(), key=lambda a: a.pk)))
    return cards


def recently_resolved(*, project: Project, limit: int = RECENTLY_RESOLVED) -> list[Annotation]:
    """Return the project's latest adjudications (resolve rows), newest first, with who, what and which item."""
    rows = (
        Annotation.objects.filter(project=project, kind=Annotation.Kind.RESOLVE)
        .select_related("user", "label", "item")
        .order_by("-id")
    )
    return list(rows[:limit])


def label_reference(*, project: Project, value: Any) -> Any:
    """Return the label id ``value`` names: a JSON number is an id; a string is a name first, then an id.

    Names go first so a project labeled "1".."5" (star ratings) means its labels by name. Anything
    else is passed on unchanged for the resolve service to refuse with the list of valid labels.
    """
    if isinstance(value, Label):
        return value.pk
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    found = project.labels.filter(name=text).values_list("pk", flat=True).first()
    if found is not None:
        return found
    return int(text) if text.isdigit() else text


def review_resolve(*, project: Project, user: Any, item_id: int, label: Any, note: str = "") -> Annotation:
    """Adjudicate item ``item_id`` of the project with ``label`` (an id or a name): record a resolve row.

    404 for an item outside the project, 400 for a label outside its set, 409 for an item not in
    review (or adjudicated). Callers check the owner role.
    """
    item = Item.objects.filter(project=project, pk=item_id).first()
    if item is None:
        raise NotFound(f"Item {item_id} not found in this project.")
    chosen = label_reference(project=project, value=label)
    return annotation_resolve(project=project, user=user, item=item, label=chosen, note=note.strip())

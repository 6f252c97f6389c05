"""Batched reads of a project's existing items, for the checking pass of an import."""

from __future__ import annotations

from django.db import connection

from labeling.models import Item


class DatabaseLookup:
    """Look up content hashes and external ids already in a project, a batch per query."""

    def __init__(self, project_id: int) -> None:
        self.project_id = project_id
        # SQLite caps the number of parameters in one statement (999 in older builds).
        self.batch_size = 10_000 if connection.vendor == "postgresql" else 900

    def existing_hashes(self, hexes: list[str]) -> set[str]:
        items = Item.objects.filter(project_id=self.project_id, content_hash__in=hexes)
        return set(items.values_list("content_hash", flat=True))

    def existing_external_ids(self, ids: list[str]) -> set[str]:
        items = Item.objects.filter(project_id=self.project_id, external_id__in=ids)
        return set(items.values_list("external_id", flat=True))


def project_has_items(project_id: int) -> bool:
    """Return whether the project holds any item (an empty one needs no lookups at all)."""
    return Item.objects.filter(project_id=project_id).exists()

"""Extension points through which higher apps add to pages and exports that lower apps render.

``labeling`` renders the project overview and the item export but must not import ``modeling`` or
``monitoring``; those apps register here from their ``AppConfig.ready`` instead (dependency
inversion, like Django admin's registry).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExportExtension:
    """Extra export columns, computed for a batch of items with one query.

    ``values(project, item_ids)`` returns ``{item_id: {column: value}}``; items it leaves out get
    ``None`` in every column.
    """

    columns: tuple[str, ...]
    values: Callable[[Any, Sequence[int]], dict[int, dict[str, Any]]]


_export_extensions: list[ExportExtension] = []


def register_export_extension(extension: ExportExtension) -> ExportExtension:
    """Add ``extension``'s columns to every item export (once, however often it is registered)."""
    if extension not in _export_extensions:
        _export_extensions.append(extension)
    return extension


def export_extensions() -> list[ExportExtension]:
    """Return the registered export extensions in registration order."""
    return list(_export_extensions)


@dataclass(frozen=True)
class Panel:
    title: str
    value: str
    url: str | None = None


PanelFunction = Callable[[Any], list[Panel]]
_overview_panels: list[PanelFunction] = []


def register_overview_panel(function: PanelFunction) -> PanelFunction:
    """Register ``function(project) -> [Panel]`` to be shown on the project overview."""
    if function not in _overview_panels:
        _overview_panels.append(function)
    return function


def overview_panels(project: Any) -> list[Panel]:
    """Return every registered app's panels for ``project``, in registration order."""
    return [panel for function in _overview_panels for panel in function(project)]

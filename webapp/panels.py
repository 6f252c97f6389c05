"""Figures that higher apps contribute to a project's overview page.

``labeling`` renders the overview but must not import ``modeling`` or ``monitoring``; those apps
register a panel function here from their ``AppConfig.ready`` instead (dependency inversion).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Panel:
    title: str
    value: str
    url: str | None = None


PanelFunction = Callable[[Any], list[Panel]]
_registry: list[PanelFunction] = []


def register_overview_panel(function: PanelFunction) -> PanelFunction:
    """Register ``function(project) -> [Panel]`` to be shown on the project overview."""
    if function not in _registry:
        _registry.append(function)
    return function


def overview_panels(project: Any) -> list[Panel]:
    """Return every registered app's panels for ``project``, in registration order."""
    return [panel for function in _registry for panel in function(project)]

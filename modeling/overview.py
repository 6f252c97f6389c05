"""The modeling figures on a project's overview page."""

from __future__ import annotations

from typing import Any

from modeling.models import ModelVersion
from webapp.extensions import Panel, register_overview_panel


@register_overview_panel
def model_version_panel(project: Any) -> list[Panel]:
    versions = ModelVersion.objects.filter(project=project)
    production = versions.filter(status=ModelVersion.Status.PRODUCTION).values_list("number", flat=True).first()
    return [
        Panel("Model versions", str(versions.count())),
        Panel("In production", f"v{production}" if production else "none yet"),
    ]

"""The model server's side of routing: which aliases to load, each under its ``model_key``, with what
loading its version needs (artifact, manifest hash, max length, truncation, int8). One query, which
the model server polls.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from modeling.models import Alias
from modeling.services.serving.routing import model_key


@dataclass(frozen=True)
class ServedAlias:
    """One alias the model server should serve, with what it needs to load the version."""

    key: str
    version: int
    path: str
    manifest_sha256: str
    max_length: int
    truncation: str
    quantize_int8: bool


def served_aliases() -> list[ServedAlias]:
    """Return every alias whose version has an artifact (one query; the model server polls it)."""
    rows = (
        Alias.objects.exclude(Q(version__artifact_path="") | Q(version__manifest_sha256=""))
        .values_list(
            "project_id",
            "name",
            "version__number",
            "version__artifact_path",
            "version__manifest_sha256",
            "version__train_config",
            "project__release_policy__quantize_int8",
        )
        .order_by("project_id", "name")
    )
    served = []
    for project_id, name, number, path, manifest, train_config, quantize in rows:
        config = train_config if isinstance(train_config, dict) else {}
        served.append(
            ServedAlias(
                key=model_key(project_id, name),
                version=number,
                path=path,
                manifest_sha256=manifest,
                max_length=int(config.get("max_length") or 256),
                truncation="head_tail" if config.get("truncation") == "head_tail" else "head",
                quantize_int8=bool(quantize),
            )
        )
    return served

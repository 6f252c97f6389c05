"""Routing, per request, from the project's release policy and aliases:

- no ``model``: the ``canary`` alias for ``canary_percent`` of callers, the rest ``production``.
  The split is sticky per caller: a hash of the project and the caller key (the ``X-Caller-Key``
  header, else the authenticated user) picks a bucket in [0, 100).
- ``"production"`` / ``"canary"``: that alias. ``<number>``: the alias that serves that version
  ("pinned"); a version that no alias points at is not loaded anywhere, so it is a 400.

The model server serves each alias under the key ``"<project id>:<alias>"`` (``model_key``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from labeling.models import Project
from modeling.models import Alias, ModelVersion, PredictionLog
from modeling.services.serving.errors import NO_MODEL_RETRY_AFTER, ServingUnavailable
from modeling.services.serving.state import ServingState
from webapp.errors import ValidationFailed


@dataclass(frozen=True)
class Route:
    """Which alias answers, what the log calls the route, and the version a pinned request demands.

    ``fallback``: a canary the split chose may be answered by production while it is still loading.
    """

    name: str
    alias: str
    version: int | None = None
    fallback: bool = False


def canary_bucket(*, project_id: int, caller_key: str) -> float:
    """Return the caller's fixed bucket in [0, 100): the same caller always lands in the same one."""
    digest = hashlib.sha256(f"{project_id}:{caller_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100.0


def route_choose(*, project: Project, state: ServingState, model: str | int | None, caller_key: str) -> Route:
    """Return the route for one request (see the module docstring); 400 for a model that is not served."""
    aliases = state.aliases
    if isinstance(model, int):
        return _pinned(project, aliases, model)
    if model == "canary":
        if Alias.Name.CANARY not in aliases:
            raise ValidationFailed("This project has no canary version.", details={"field": "model"})
        return Route(PredictionLog.Route.CANARY, Alias.Name.CANARY)
    if Alias.Name.PRODUCTION not in aliases:
        raise ServingUnavailable(
            "This project has no production model yet; promote a version first.",
            retry_after=NO_MODEL_RETRY_AFTER,
            code="no_production_model",
        )
    percent = state.policy.canary_percent
    split = model is None and Alias.Name.CANARY in aliases and percent > 0
    if split and canary_bucket(project_id=project.pk, caller_key=caller_key) < percent:
        return Route(PredictionLog.Route.CANARY, Alias.Name.CANARY, fallback=True)
    return Route(PredictionLog.Route.PRODUCTION, Alias.Name.PRODUCTION)


def _pinned(project: Project, aliases: dict[str, int], number: int) -> Route:
    for name in (Alias.Name.PRODUCTION, Alias.Name.CANARY, Alias.Name.SHADOW):
        if aliases.get(name) == number:
            return Route(PredictionLog.Route.PINNED, name, number)
    exists = ModelVersion.objects.filter(project=project, number=number).exists()
    served = ", ".join(f"{name} = version {version}" for name, version in sorted(aliases.items())) or "none"
    message = (
        f"Version {number} is not served: only the versions the production, canary and shadow aliases point at are "
        f"(now: {served})."
        if exists
        else f"This project has no version {number}."
    )
    raise ValidationFailed(message, details={"field": "model", "value": number})


def model_key(project_id: int, alias: str) -> str:
    """Return the key the model server serves ``alias`` of a project under."""
    return f"{project_id}:{alias}"

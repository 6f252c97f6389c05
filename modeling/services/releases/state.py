"""A version's release state as the comparison page and the API show it: the project's aliases, the
version's newest (and newest usable) comparison, whether it is stale, the gates now, the approvals.
"""

from __future__ import annotations

from dataclasses import dataclass

from labeling.models import Project
from modeling.gates import GateResult, failures
from modeling.models import Alias, Approval, Comparison, ModelVersion, ReleasePolicy
from modeling.services.releases.policy import comparison_gates, policy_for


def aliases_of(*, project: Project) -> dict[str, ModelVersion]:
    """Return {alias name: version} for the project's aliases that exist now."""
    rows = Alias.objects.filter(project=project).select_related("version")
    return {alias.name: alias.version for alias in rows}


def production_version(*, project: Project) -> ModelVersion | None:
    """Return the version the project's ``production`` alias points at, if any."""
    alias = Alias.objects.filter(project=project, name=Alias.Name.PRODUCTION).select_related("version").first()
    return alias.version if alias else None


def latest_comparison(*, version: ModelVersion, succeeded: bool = False) -> Comparison | None:
    """Return the version's newest comparison (only a succeeded one when ``succeeded``)."""
    rows = Comparison.objects.filter(candidate=version).select_related("production", "job", "created_by")
    if succeeded:
        rows = rows.filter(status=Comparison.Status.SUCCEEDED)
    return rows.order_by("-created_at", "-id").first()


@dataclass(frozen=True)
class ReleaseState:
    """Everything the comparison page and API show about one version's release."""

    version: ModelVersion
    policy: ReleasePolicy
    aliases: dict[str, ModelVersion]
    production: ModelVersion | None
    comparison: Comparison | None
    usable: Comparison | None
    stale: bool
    gates: list[GateResult] | None
    approvals: list[Approval]

    @property
    def failed(self) -> list[GateResult]:
        return failures(self.gates or [])

    @property
    def required(self) -> int:
        return int(self.policy.required_approvals)

    @property
    def alias_names(self) -> list[str]:
        return [name for name, target in self.aliases.items() if target.pk == self.version.pk]


def release_state(*, version: ModelVersion) -> ReleaseState:
    """Return the version's release state: aliases, newest comparison, gate verdicts now, approvals."""
    project = version.project
    policy = policy_for(project=project)
    aliases = aliases_of(project=project)
    production = aliases.get(Alias.Name.PRODUCTION)
    usable = latest_comparison(version=version, succeeded=True)
    stale = usable is not None and usable.production_id != (production.pk if production else None)
    gates = comparison_gates(comparison=usable, policy=policy) if usable is not None else None
    return ReleaseState(
        version=version,
        policy=policy,
        aliases=aliases,
        production=production,
        comparison=latest_comparison(version=version),
        usable=usable,
        stale=stale,
        gates=gates,
        approvals=list(version.approvals.select_related("user").order_by("created_at", "id")),
    )

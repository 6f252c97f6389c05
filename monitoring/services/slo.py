"""Service level objectives: reading and changing a project's SLOs, and evaluating their burn into alerts.

Evaluation (after every rollup fold, every 20 s: ``monitoring.tasks.alerts.evaluate_slos``): per project
and model version, the availability and latency burn over the policy windows (``monitoring.stats.burn``)
from the minute rollups; a firing policy fires ``burn:<slo>:<severity>:v<version>`` and a cleared one
resolves it (``alerts_sync``), so page and ticket are separate alerts that fire and resolve on their own
windows. The optional quality SLO burns on audited accuracy (``OutcomeRollup``, source "audit"), ticket
policies only: audit labels arrive hours late and an hourly bucket cannot honour a 5-minute window, so it
never pages; its alerts are of kind "accuracy" under the key prefix ``slo:quality:``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from labeling.models import Project
from monitoring.buckets import LATENCY_EDGES_MS
from monitoring.models import Alert, ServiceObjective
from monitoring.selectors.slo import (
    SLOS,
    VersionWindows,
    data_until,
    period_counts,
    quality_period_counts,
    quality_window_counts,
    window_counts,
)
from monitoring.services.alerts import AlertSpec, alerts_sync
from monitoring.stats.burn import (
    TICKET,
    Budget,
    BurnPolicy,
    ObjectiveError,
    PolicyResult,
    WindowCounts,
    check_objective,
    error_budget,
    evaluate_policies,
    scaled_policies,
    windows_of,
)
from webapp.errors import ValidationFailed

logger = logging.getLogger(__name__)

SLO_FIELDS = (
    "period_days",
    "availability_target",
    "latency_target",
    "latency_threshold_ms",
    "quality_target",
    "min_events",
)
QUALITY_PREFIX = "slo:quality:"
MAX_MIN_EVENTS = 1_000_000


def slo_get(*, project: Project) -> ServiceObjective:
    """Return the project's objectives (the defaults, unsaved, until an owner changes them)."""
    return ServiceObjective.objects.filter(project=project).first() or ServiceObjective(project=project)


def policies_for(objective: ServiceObjective) -> tuple[BurnPolicy, ...]:
    return scaled_policies(timedelta(days=objective.period_days))


def quality_policies(policies: tuple[BurnPolicy, ...]) -> tuple[BurnPolicy, ...]:
    return tuple(p for p in policies if p.severity == TICKET)


# --- validation -------------------------------------------------------------------------------------


def _number(name: str, value: Any, lo: float, hi: float, *, integer: bool = False) -> float | int:
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not float(value).is_integer()):
        raise ValidationFailed(f"{name} must be {kind}; got {value!r}.", details={name: [f"Must be {kind}."]})
    if not math.isfinite(value) or not lo <= value <= hi:
        message = f"{name} must lie between {lo:g} and {hi:g}; got {value:g}."
        raise ValidationFailed(message, details={name: [message]})
    return int(value) if integer else float(value)


def _validated(changes: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(SLO_FIELDS))
    if unknown:
        raise ValidationFailed(
            f"Unknown SLO fields: {', '.join(unknown)}; use {', '.join(SLO_FIELDS)}.",
            details={name: ["Unknown field."] for name in unknown},
        )
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "period_days":
            clean[name] = _number(name, value, 1, 90, integer=True)
        elif name == "min_events":
            clean[name] = _number(name, value, 1, MAX_MIN_EVENTS, integer=True)
        elif name == "latency_threshold_ms":
            clean[name] = _number(name, value, 1, max(LATENCY_EDGES_MS), integer=True)
            if clean[name] not in LATENCY_EDGES_MS:
                edges = ", ".join(str(e) for e in LATENCY_EDGES_MS)
                message = f"The latency threshold must be a histogram bucket edge ({edges} ms); got {value}."
                raise ValidationFailed(message, details={name: [message]})
        elif name == "quality_target" and value is None:
            clean[name] = None
        else:
            clean[name] = _number(name, value, 0.5, 0.99999)
    return clean


def _check_fireable(objective: ServiceObjective) -> None:
    policies = policies_for(objective)
    targets = [("availability", "availability_target", objective.availability_target, policies)]
    targets.append(("latency", "latency_target", objective.latency_target, policies))
    if objective.quality_target is not None:
        targets.append(("quality", "quality_target", objective.quality_target, quality_policies(policies)))
    for slo, name, target, slo_policies in targets:
        try:
            check_objective(target, slo_policies, slo=f"{slo} ({objective.period_days}-day period)")
        except ObjectiveError as exc:
            raise ValidationFailed(str(exc), details={name: [str(exc)]}) from None


@transaction.atomic
def slo_update(*, project: Project, user: Any, changes: Mapping[str, Any]) -> ServiceObjective:
    """Change the named SLO fields, all or none; 400 naming the bad field (range, bucket edge, never fires)."""
    clean = _validated(changes)
    objective = ServiceObjective.objects.select_for_update().filter(project=project).first()
    objective = objective or ServiceObjective(project=project)
    for name, value in clean.items():
        setattr(objective, name, value)
    _check_fireable(objective)
    objective.updated_by = user if getattr(user, "is_authenticated", False) else None
    objective.save()
    return objective


# --- evaluation -------------------------------------------------------------------------------------


def _slo_link(project: Project) -> str:
    return reverse("monitoring:slo", kwargs={"slug": project.slug})


def _evidence(
    *, slo: str, target: float, hits: list[PolicyResult], until: datetime, link: str, extra: Mapping[str, Any]
) -> dict[str, Any]:
    worst = max(hits, key=lambda r: (r.long_burn or 0.0) / r.policy.factor)
    return {
        "slo": slo,
        "objective": target,
        "policy": worst.policy.describe(),
        "policies_firing": [r.policy.name for r in hits],
        "burn_long": round(worst.long_burn or 0.0, 3),
        "burn_short": round(worst.short_burn or 0.0, 3),
        "threshold": worst.policy.factor,
        "events_long": worst.long_events,
        "bad_long": worst.long_bad,
        "error_rate_long": round(worst.long_bad / worst.long_events, 6) if worst.long_events else None,
        "data_until": until.isoformat(),
        "links": [{"label": "SLO burn chart", "url": link}],
        **extra,
    }


def _version_specs(
    objective: ServiceObjective,
    policies: tuple[BurnPolicy, ...],
    version: VersionWindows,
    until: datetime,
    link: str,
) -> dict[str, AlertSpec]:
    specs = {}
    targets = {"availability": objective.availability_target, "latency": objective.latency_target}
    for slo in SLOS:
        results = evaluate_policies(
            version.windows[slo], objective=targets[slo], policies=policies, min_events=objective.min_events
        )
        for severity in ("page", "ticket"):
            hits = [r for r in results if r.fires and r.policy.severity == severity]
            if not hits:
                continue
            what = "availability" if slo == "availability" else f"latency (<= {objective.latency_threshold_ms} ms)"
            specs[f"burn:{slo}:{severity}:v{version.version_number}"] = AlertSpec(
                severity=severity,
                title=f"{what.capitalize()} error budget burning fast on v{version.version_number}"
                if severity == "page"
                else f"{what.capitalize()} error budget burning on v{version.version_number}",
                evidence=_evidence(
                    slo=slo,
                    target=targets[slo],
                    hits=hits,
                    until=until,
                    link=link,
                    extra={"version_number": version.version_number},
                ),
                version_number=version.version_number,
            )
    return specs


def _quality_specs(
    project: Project, objective: ServiceObjective, policies: tuple[BurnPolicy, ...], now: datetime, link: str
) -> dict[str, AlertSpec]:
    if objective.quality_target is None:
        return {}
    tickets = quality_policies(policies)
    until, per_version = quality_window_counts(project=project, now=now, windows=windows_of(tickets))
    specs = {}
    for version, counts in per_version.items():
        results = evaluate_policies(
            counts, objective=objective.quality_target, policies=tickets, min_events=objective.min_events
        )
        hits = [r for r in results if r.fires]
        if hits and until is not None:
            specs[f"{QUALITY_PREFIX}v{version}"] = AlertSpec(
                severity=TICKET,
                title=f"Audited accuracy below its objective on v{version}",
                evidence=_evidence(
                    slo="quality",
                    target=objective.quality_target,
                    hits=hits,
                    until=until,
                    link=link,
                    extra={"version_number": version},
                ),
                version_number=version,
            )
    return specs


@dataclass(frozen=True)
class EvaluationResult:
    """What one evaluation saw: the end of its data and the alert keys that fire."""

    data_until: datetime
    firing: tuple[str, ...]


def slo_evaluate(*, project: Project, now: datetime | None = None) -> EvaluationResult:
    """Evaluate the project's SLO burn per version and fire/resolve its burn and quality alerts."""
    now = now or timezone.now()
    objective = slo_get(project=project)
    policies = policies_for(objective)
    until = data_until(now)
    link = _slo_link(project)
    per_version = window_counts(
        project=project, until=until, windows=windows_of(policies), threshold_ms=objective.latency_threshold_ms
    )
    burn: dict[str, AlertSpec] = {}
    for version in per_version.values():
        burn.update(_version_specs(objective, policies, version, until, link))
    quality = _quality_specs(project, objective, policies, now, link)
    with transaction.atomic():
        alerts_sync(project=project, kind=Alert.Kind.BURN, firing=burn, now=now)
        alerts_sync(project=project, kind=Alert.Kind.ACCURACY, firing=quality, now=now, key_prefix=QUALITY_PREFIX)
    return EvaluationResult(data_until=until, firing=tuple(sorted([*burn, *quality])))


def slos_evaluate_all(*, now: datetime | None = None) -> int:
    """Evaluate every project's SLOs; return how many were evaluated.

    One project's failure is logged and the others still run: a broken project must not silence the
    alerts of every other one.
    """
    count = 0
    for project in Project.objects.order_by("pk"):
        try:
            slo_evaluate(project=project, now=now)
        except Exception:
            logger.exception("SLO evaluation failed", extra={"project_id": project.pk})
            continue
        count += 1
    return count


# --- status for the page and the API ----------------------------------------------------------------


@dataclass(frozen=True)
class SloStatus:
    """One SLO now: its objective, the period's budget and each policy's verdict (all versions together)."""

    slo: str
    label: str
    objective: float
    budget: Budget
    results: list[PolicyResult]


def _summed(per_version: Mapping[int, VersionWindows], slo: str) -> dict[timedelta, WindowCounts]:
    totals: dict[timedelta, WindowCounts] = {}
    for version in per_version.values():
        for window, counts in version.windows[slo].items():
            prior = totals.get(window, WindowCounts(0, 0))
            totals[window] = WindowCounts(prior.events + counts.events, prior.bad + counts.bad)
    return totals


def slo_status(*, project: Project, now: datetime | None = None) -> tuple[datetime, list[SloStatus]]:
    """Return the end of the data and, per SLO, the error budget over the period and the policy verdicts."""
    now = now or timezone.now()
    objective = slo_get(project=project)
    policies = policies_for(objective)
    until = data_until(now)
    period_start = until - timedelta(days=objective.period_days)
    per_version = window_counts(
        project=project, until=until, windows=windows_of(policies), threshold_ms=objective.latency_threshold_ms
    )
    totals = period_counts(project=project, start=period_start, end=until, threshold_ms=objective.latency_threshold_ms)
    empty = {w: WindowCounts(0, 0) for w in windows_of(policies)}
    out = []
    labels = {"availability": "Availability", "latency": f"Latency (<= {objective.latency_threshold_ms} ms)"}
    targets = {"availability": objective.availability_target, "latency": objective.latency_target}
    for slo in SLOS:
        counts = {**empty, **_summed(per_version, slo)}
        results = evaluate_policies(counts, objective=targets[slo], policies=policies, min_events=objective.min_events)
        budget = error_budget(totals[slo].bad, totals[slo].events, targets[slo])
        out.append(SloStatus(slo, labels[slo], targets[slo], budget, results))
    if objective.quality_target is not None:
        tickets = quality_policies(policies)
        _, per_q = quality_window_counts(project=project, now=now, windows=windows_of(tickets))
        q_counts = {w: WindowCounts(0, 0) for w in windows_of(tickets)}
        for counts in per_q.values():
            for w, c in counts.items():
                q_counts[w] = WindowCounts(q_counts[w].events + c.events, q_counts[w].bad + c.bad)
        results = evaluate_policies(
            q_counts, objective=objective.quality_target, policies=tickets, min_events=objective.min_events
        )
        total = quality_period_counts(project=project, start=period_start, end=now)
        budget = error_budget(total.bad, total.events, objective.quality_target)
        out.append(SloStatus("quality", "Quality (audited accuracy)", objective.quality_target, budget, results))
    return until, out

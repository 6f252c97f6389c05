"""Reads behind the models pages: the learning curve with its stopping signal, and the retraining state."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from django.conf import settings

from labeling.models import Project
from labeling.stats.agreement import cohen_kappa
from modeling.ml.stopping import DEFAULT_THRESHOLD, DEFAULT_WINDOW, StopDecision, stabilizing_predictions
from modeling.models import ModelVersion, Retraining
from modeling.services.stop_set import stop_set_item_ids


@dataclass(frozen=True)
class CurvePoint:
    """One evaluated version: eval macro-F1 (95% bootstrap CI) against the gold labels it was trained on."""

    version: int
    status: str
    automatic: bool
    gold_labels: int
    eval_n: int | None
    macro_f1: float
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class StabilityPair:
    """Cohen's kappa between two successive scored versions' predictions on the stop set."""

    from_version: int
    to_version: int
    kappa: float | None
    observed: float
    items: int


@dataclass(frozen=True)
class LearningCurve:
    points: list[CurvePoint]
    pairs: list[StabilityPair]
    decision: StopDecision
    stop_set_size: int


@dataclass(frozen=True)
class RetrainingState:
    """What the models page says about retraining: the chain in flight, the follow-up, the last result."""

    running: Retraining | None
    pending: Retraining | None
    last_finished: Retraining | None
    labels_since_training: int
    threshold: int


def stopping_rule() -> tuple[float, int]:
    """Return the (threshold, window) of the stopping signal: settings.MODELING_STOP_KAPPA / _WINDOW or the paper's."""
    threshold = float(getattr(settings, "MODELING_STOP_KAPPA", DEFAULT_THRESHOLD))
    window = int(getattr(settings, "MODELING_STOP_WINDOW", DEFAULT_WINDOW))
    return threshold, window


def _point(version: ModelVersion) -> CurvePoint | None:
    evaluation = (version.metrics or {}).get("eval") or {}
    gold = (version.data or {}).get("train")
    if evaluation.get("macro_f1") is None or gold is None:
        return None
    interval = evaluation.get("macro_f1_ci") or {}
    return CurvePoint(
        version=version.number,
        status=version.status,
        automatic=_is_automatic(version),
        gold_labels=int(gold),
        eval_n=evaluation.get("n"),
        macro_f1=float(evaluation["macro_f1"]),
        ci_low=interval.get("low"),
        ci_high=interval.get("high"),
    )


def _is_automatic(version: ModelVersion) -> bool:
    # A version with no Retraining row raises RelatedObjectDoesNotExist, an AttributeError: getattr's default.
    run = getattr(version, "retraining", None)
    return run is not None and run.trigger == Retraining.Trigger.AUTO


def _pairs(versions: list[ModelVersion], stop_ids: set[int]) -> list[StabilityPair]:
    """Kappa between each scored version and the previous one, over the stop-set items both predicted."""
    scored = [v for v in versions if v.stop_predictions]
    pairs = []
    for before, after in pairwise(scored):
        common = sorted(
            key for key in before.stop_predictions.keys() & after.stop_predictions.keys() if int(key) in stop_ids
        )
        kappa = cohen_kappa([before.stop_predictions[k] for k in common], [after.stop_predictions[k] for k in common])
        pairs.append(StabilityPair(before.number, after.number, kappa.value, kappa.observed, kappa.n_items))
    return pairs


def stopping_message(decision: StopDecision) -> str:
    """Return the plain statement the page and the API show: stop, or keep labeling, and why."""
    if decision.stop:
        return f"Stop: predictions have stabilised ({decision.reason})."
    return f"Keep labeling: {decision.reason}."


def learning_curve(*, project: Project) -> LearningCurve:
    """Return every evaluated version's macro-F1 by gold labels and the stabilizing-predictions signal."""
    fields: Any = ("number", "status", "metrics", "data", "stop_predictions", "project_id", "retraining__trigger")
    versions = list(
        ModelVersion.objects.filter(project=project).select_related("retraining").only(*fields).order_by("number")
    )
    stop_ids = set(stop_set_item_ids(project_id=project.pk))
    pairs = _pairs(versions, stop_ids)
    threshold, window = stopping_rule()
    decision = stabilizing_predictions([p.kappa for p in pairs], threshold=threshold, window=window)
    points = [point for v in versions if (point := _point(v)) is not None]
    return LearningCurve(points=points, pairs=pairs, decision=decision, stop_set_size=len(stop_ids))


def retraining_state(*, project: Project) -> RetrainingState:
    """Return the project's running and pending retraining, the last finished one and the label counter."""
    runs = Retraining.objects.filter(project=project).select_related("version", "requested_by")
    by_status = {
        run.status: run for run in runs.filter(status__in=(Retraining.Status.RUNNING, Retraining.Status.PENDING))
    }
    finished = runs.filter(status__in=(Retraining.Status.SUCCEEDED, Retraining.Status.FAILED)).order_by("-finished_at")
    return RetrainingState(
        running=by_status.get(Retraining.Status.RUNNING),
        pending=by_status.get(Retraining.Status.PENDING),
        last_finished=finished.first(),
        labels_since_training=project.labels_since_training,
        threshold=project.retrain_after_labels,
    )

"""Candidate vs production on the same frozen eval split: starting the job and its body.

The job scores both versions on every gold item of the eval split (in item id order, so the two
prediction vectors are paired), then computes with the pure modules (``modeling.ml.metrics`` and
``modeling.ml.compare``) everything the comparison page and the gates read. With no version in
production the candidate is scored alone: only the absolute gates (minimum macro-F1, maximum ECE) apply.

``Comparison.results`` holds exactly this JSON::

    {
      "n": int, "labels": [names in the models' class order], "eval_digest": sha256 of "item id:gold" lines,
      "device": "cpu" | "cuda", "seconds": float,
      "candidate": MODEL, "production": MODEL | null,
      "paired": {"accuracy" | "macro_f1": {"candidate", "production", "delta", "delta_ci": {"low", "high"}}} | null,
      "per_class_deltas": [{"label", "n", "candidate", "production", "delta"}],       # [] without production
      "per_language_deltas": [{"language", "n", "candidate", "production", "delta"}],
      "mcnemar": {"candidate_only", "production_only", "both_right", "both_wrong", "statistic", "p_value"} | null,
      "disagreements": {"total", "regressions", "fixes", "both_wrong", "cap",
                        "items": [{"item_id", "gold", "candidate", "production",
                                   "candidate_confidence", "production_confidence"}]},   # regressions first
      "summaries": {"candidate": SUMMARY, "production": SUMMARY | null},   # what the gates read
      "gates": [GateResult as a dict],   # under the policy when the job ran; approval re-evaluates them
    }

    MODEL = {"version", "accuracy", "accuracy_ci": {"low", "high"}, "macro_f1", "macro_f1_ci", "ece", "brier",
             "per_class": [{"label", "precision", "recall", "f1", "support"}], "confusion": [[int]],
             "reliability": [{"lower", "upper", "confidence", "accuracy", "count"}],      # 15 bins
             "per_language": {"<code>": {"n", "accuracy", "macro_f1"}},
             "size": {"parameters", "bytes", "weights_bytes"},
             "latency": {"batch_size", "runs", "median_ms", "min_ms", "max_ms", "per_text_ms", "device"},
             "int8": INT8 | null}      # candidate only, when the policy serves int8
    SUMMARY = {"macro_f1", "ece", "per_class_f1", "class_support", "per_language_f1", "language_support"}
    INT8 = modeling.ml.compare.QuantizationDelta as a dict (int8 minus fp32 on CPU, paired: accuracy and
           macro-F1 with bootstrap intervals, agreement, McNemar) + {"latency": the int8 copy's MODEL "latency"}

torch and the model code are imported inside the job body only: the web process imports this module
to start a comparison.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from django.db import transaction
from django.utils import timezone

from labeling.models import Item, Project
from modeling.ml.compare import (
    disagreements,
    mcnemar,
    paired_bootstrap,
    per_class_f1,
    per_group_macro_f1,
    quantization_compare,
)
from modeling.ml.errors import MLError
from modeling.ml.metrics import (
    bootstrap_ci,
    calibration_metrics,
    confusion_matrix,
    macro_f1,
    per_class_metrics,
    per_group_metrics,
    reliability_bins,
)
from modeling.models import Comparison, ModelVersion
from modeling.services.releases import comparison_gates, gate_dict, lock_project, policy_for, require_manager
from modeling.services.releases import production_version as current_production
from webapp.errors import ApplicationError, Conflict
from webapp.jobs import job_create, job_enqueue
from webapp.models import Job, JobCancelled

if TYPE_CHECKING:
    from modeling.ml.artifacts import Classifier
    from modeling.ml.config import InferenceConfig

logger = logging.getLogger(__name__)

COMPARABLE = (ModelVersion.Status.CANDIDATE, ModelVersion.Status.APPROVED)
ACTIVE_JOB = (Job.Status.QUEUED, Job.Status.RUNNING)
DISAGREEMENT_CAP = 500
SCORING_BATCH = 64
LATENCY_BATCH = 32
LATENCY_RUNS = 5
N_RESAMPLES = 1000


# --- starting -------------------------------------------------------------------------------------


@transaction.atomic
def comparison_start(*, version: ModelVersion, user: Any) -> Comparison:
    """Queue a comparison of ``version`` with the current production version (owners and admins).

    A comparison of the same pair still queued or running is returned instead of a second one.
    409 for a version that is not a trained candidate or approved version.
    """
    project = lock_project(version.project_id)
    require_manager(project, user, "Running a comparison")
    version = ModelVersion.objects.get(pk=version.pk)
    if version.status not in COMPARABLE:
        raise Conflict(
            f"v{version.number} is {version.get_status_display().lower()}; "
            "only a candidate or approved version is compared with production.",
            code="not_comparable",
        )
    if not version.artifact_path or not version.manifest_sha256:
        raise Conflict(f"v{version.number} has no saved artifact to score with.", code="not_comparable")
    production = current_production(project=project)
    active = (
        Comparison.objects.filter(candidate=version, production=production, job__status__in=ACTIVE_JOB)
        .select_related("job")
        .first()
    )
    if active is not None:
        return active
    job = job_create(kind=Job.Kind.COMPARE, project_id=project.pk, user=user)
    comparison = Comparison.objects.create(
        project=project, candidate=version, production=production, job=job, created_by=job.created_by
    )
    job.params = {"comparison_id": comparison.pk}
    job.save(update_fields=["params"])
    from modeling.tasks import compare_versions

    job_enqueue(job=job, task=compare_versions)
    logger.info("comparison queued", extra={"comparison_id": comparison.pk, "job_id": str(job.pk)})
    return comparison


# --- the pure part: statistics from two prediction vectors ---------------------------------------


@dataclass
class Scored:
    """One version's outputs on the eval items (in item order) and what was measured about it."""

    version: int
    probabilities: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64]
    size: dict[str, Any]
    latency: dict[str, Any]
    int8: dict[str, Any] | None = None


@dataclass(frozen=True)
class EvalRows:
    """The frozen eval split: gold items in id order."""

    item_ids: list[int]
    texts: list[str]
    gold: list[str]
    languages: list[str]


def eval_digest(item_ids: Sequence[int], gold: Sequence[str]) -> str:
    """Return a sha256 naming exactly which items with which gold labels were compared."""
    digest = hashlib.sha256()
    for item_id, label in zip(item_ids, gold, strict=True):
        digest.update(f"{item_id}:{label}\n".encode())
    return digest.hexdigest()


def _model_block(
    scored: Scored, t: npt.NDArray[np.int64], languages: Sequence[str], labels: list[str]
) -> dict[str, Any]:
    k, pred = len(labels), scored.labels
    acc_ci, f1_ci = bootstrap_ci(t, pred, k, n_resamples=N_RESAMPLES)
    calibration = calibration_metrics(scored.probabilities, t)
    per_class = per_class_metrics(t, pred, labels)
    return {
        "version": scored.version,
        "accuracy": float((pred == t).mean()),
        "accuracy_ci": dataclasses.asdict(acc_ci),
        "macro_f1": macro_f1(t, pred, k),
        "macro_f1_ci": dataclasses.asdict(f1_ci),
        "ece": calibration.ece,
        "brier": calibration.brier,
        "per_class": [dataclasses.asdict(c) for c in per_class],
        "confusion": confusion_matrix(t, pred, k).tolist(),
        "reliability": [dataclasses.asdict(b) for b in reliability_bins(scored.probabilities, t)],
        "per_language": {code: dataclasses.asdict(g) for code, g in per_group_metrics(t, pred, languages, k).items()},
        "size": scored.size,
        "latency": scored.latency,
        "int8": scored.int8,
    }


def _summary(block: dict[str, Any]) -> dict[str, Any]:
    """Return what the gates read from one model's block."""
    return {
        "macro_f1": block["macro_f1"],
        "ece": block["ece"],
        "per_class_f1": {c["label"]: c["f1"] for c in block["per_class"]},
        "class_support": {c["label"]: c["support"] for c in block["per_class"]},
        "per_language_f1": {code: g["macro_f1"] for code, g in block["per_language"].items()},
        "language_support": {code: g["n"] for code, g in block["per_language"].items()},
    }


def _disagreements(
    rows: EvalRows, t: npt.NDArray[np.int64], candidate: Scored, production: Scored, labels: list[str]
) -> dict[str, Any]:
    """Return the items the two versions label differently: regressions, then fixes, then both wrong."""
    c, p = candidate.labels, production.labels
    indices = disagreements(c, p)
    regressions = [int(i) for i in indices if p[i] == t[i]]
    fixes = [int(i) for i in indices if c[i] == t[i]]
    both_wrong = [int(i) for i in indices if c[i] != t[i] and p[i] != t[i]]
    items = [
        {
            "item_id": rows.item_ids[i],
            "gold": labels[int(t[i])],
            "candidate": labels[int(c[i])],
            "production": labels[int(p[i])],
            "candidate_confidence": round(float(candidate.probabilities[i].max()), 4),
            "production_confidence": round(float(production.probabilities[i].max()), 4),
        }
        for i in (regressions + fixes + both_wrong)[:DISAGREEMENT_CAP]
    ]
    return {
        "total": len(indices),
        "regressions": len(regressions),
        "fixes": len(fixes),
        "both_wrong": len(both_wrong),
        "cap": DISAGREEMENT_CAP,
        "items": items,
    }


def _paired(
    rows: EvalRows, t: npt.NDArray[np.int64], candidate: Scored, production: Scored, labels: list[str]
) -> dict[str, Any]:
    c, p, k = candidate.labels, production.labels, len(labels)
    deltas = paired_bootstrap(t, c, p, k, n_resamples=N_RESAMPLES)
    classes = per_class_f1(t, c, p, labels)
    languages = per_group_macro_f1(t, c, p, rows.languages, k)
    return {
        "paired": {
            name: {
                "candidate": d.candidate,
                "production": d.production,
                "delta": d.delta,
                "delta_ci": dataclasses.asdict(d.delta_ci),
            }
            for name, d in deltas.items()
        },
        "per_class_deltas": [
            {"label": name, "n": g.n, "candidate": g.candidate, "production": g.production, "delta": g.delta}
            for name, g in classes.items()
        ],
        "per_language_deltas": [
            {"language": code, "n": g.n, "candidate": g.candidate, "production": g.production, "delta": g.delta}
            for code, g in languages.items()
        ],
        "mcnemar": dataclasses.asdict(mcnemar(t, c, p)),
        "disagreements": _disagreements(rows, t, candidate, production, labels),
    }


def comparison_results(
    *, rows: EvalRows, y_true: Sequence[int], labels: list[str], candidate: Scored, production: Scored | None
) -> dict[str, Any]:
    """Return the results JSON (module docstring) for the two versions' outputs on ``rows``."""
    t = np.asarray(y_true, dtype=np.int64)
    cand = _model_block(candidate, t, rows.languages, labels)
    prod = _model_block(production, t, rows.languages, labels) if production is not None else None
    empty: dict[str, Any] = {
        "paired": None,
        "per_class_deltas": [],
        "per_language_deltas": [],
        "mcnemar": None,
        "disagreements": {
            "total": 0,
            "regressions": 0,
            "fixes": 0,
            "both_wrong": 0,
            "cap": DISAGREEMENT_CAP,
            "items": [],
        },
    }
    return {
        "n": int(t.size),
        "labels": labels,
        "eval_digest": eval_digest(rows.item_ids, rows.gold),
        "candidate": cand,
        "production": prod,
        **(_paired(rows, t, candidate, production, labels) if production is not None else empty),
        "summaries": {"candidate": _summary(cand), "production": _summary(prod) if prod else None},
    }


# --- the job body ---------------------------------------------------------------------------------


def eval_rows(project: Project) -> EvalRows:
    """Return the project's gold eval items in id order (the frozen split both versions are scored on)."""
    rows = list(
        Item.objects.filter(project=project, split=Item.Split.EVAL, gold_label__isnull=False)
        .order_by("id")
        .values_list("id", "text", "gold_label__name", "language")
    )
    return EvalRows(
        item_ids=[r[0] for r in rows],
        texts=[r[1] for r in rows],
        gold=[r[2] for r in rows],
        languages=[r[3] or "und" for r in rows],
    )


def _set_state(comparison: Comparison, status: str, *, error: str = "", results: dict[str, Any] | None = None) -> None:
    comparison.status, comparison.error = status, error
    fields = ["status", "error"]
    if results is not None:
        comparison.results = results
        fields.append("results")
    if status in (Comparison.Status.SUCCEEDED, Comparison.Status.FAILED):
        comparison.finished_at = timezone.now()
        fields.append("finished_at")
    comparison.save(update_fields=fields)


def _job_result(comparison: Comparison) -> dict[str, Any]:
    results = comparison.results
    mc = results.get("mcnemar") or {}
    return {
        "comparison": comparison.pk,
        "candidate": comparison.candidate.number,
        "production": comparison.production.number if comparison.production else None,
        "eval_items": results.get("n"),
        "gates_failed": sum(1 for g in results.get("gates", []) if g["blocking"] and not g["passed"]),
        "mcnemar_p": mc.get("p_value"),
    }


def comparison_run(job: Job) -> dict[str, Any]:
    """Score the job's candidate and production on the eval split, store the results; return a summary.

    Safe to run again: a comparison that already succeeded is left as it is.
    """
    comparison = Comparison.objects.select_related("candidate", "production", "project").get(
        pk=job.params["comparison_id"]
    )
    if comparison.status == Comparison.Status.SUCCEEDED:
        return _job_result(comparison)
    _set_state(comparison, Comparison.Status.RUNNING)
    try:
        results = _compute(job, comparison)
    except JobCancelled:
        _set_state(comparison, Comparison.Status.FAILED, error="The comparison was cancelled.")
        raise
    except ApplicationError as exc:
        _set_state(comparison, Comparison.Status.FAILED, error=exc.message)
        raise
    except MLError as exc:
        _set_state(comparison, Comparison.Status.FAILED, error=str(exc))
        raise ApplicationError(str(exc), code=exc.code) from exc
    except Exception as exc:
        _set_state(comparison, Comparison.Status.FAILED, error=f"Internal error ({exc.__class__.__name__}).")
        raise
    _set_state(comparison, Comparison.Status.SUCCEEDED, results=results)
    return _job_result(comparison)


def _compute(job: Job, comparison: Comparison) -> dict[str, Any]:
    started = time.perf_counter()
    rows = eval_rows(comparison.project)
    if not rows.item_ids:
        raise ApplicationError("The eval split has no gold items to compare the versions on.", code="no_eval_data")
    policy = policy_for(project=comparison.project)
    candidate, production = comparison.candidate, comparison.production
    job.set_progress(0.02, f"scoring v{candidate.number} on {len(rows.texts)} eval items")
    loaded = [_score(candidate, rows, int8=policy.quantize_int8)]
    labels = loaded[0].labels
    if production is not None:
        job.set_progress(0.45, f"scoring v{production.number} (production) on {len(rows.texts)} eval items")
        loaded.append(_score(production, rows, int8=False))
        if loaded[1].labels != labels:
            raise ApplicationError(
                f"v{candidate.number} predicts {labels} but v{production.number} predicts {loaded[1].labels}: "
                "versions with different label sets cannot be compared item by item.",
                code="labels_differ",
            )
    job.set_progress(0.85, "timing batches")
    for scored, latency in zip(loaded, measure_latencies(loaded, rows.texts), strict=True):
        scored.scored.latency = latency
    job.set_progress(0.92, "computing the statistics")
    results = comparison_results(
        rows=rows,
        y_true=_label_ids(rows, labels, candidate),
        labels=labels,
        candidate=loaded[0].scored,
        production=loaded[1].scored if production is not None else None,
    )
    results["device"] = loaded[0].scored.latency["device"]
    comparison.results = results
    results["gates"] = [gate_dict(g) for g in comparison_gates(comparison=comparison, policy=policy)]
    results["seconds"] = round(time.perf_counter() - started, 3)
    return results


def _label_ids(rows: EvalRows, labels: list[str], version: ModelVersion) -> list[int]:
    index = {name: i for i, name in enumerate(labels)}
    unknown = sorted({name for name in rows.gold if name not in index})
    if unknown:
        raise ApplicationError(
            f"Eval items carry labels v{version.number} does not predict: {unknown}. Train a new version.",
            code="labels_changed",
        )
    return [index[name] for name in rows.gold]


def _load(version: ModelVersion) -> Classifier:
    """Load a version's artifact, refusing one whose files or manifest changed since it was saved."""
    from modeling.ml.artifacts import load_artifact
    from modeling.ml.errors import ArtifactError

    if not version.artifact_path or not version.manifest_sha256:
        raise ApplicationError(f"v{version.number} has no saved artifact to score with.", code="artifact_missing")
    try:
        return load_artifact(version.artifact_path, expected_manifest_sha256=version.manifest_sha256)
    except ArtifactError as exc:
        raise ApplicationError(
            f"The artifact of v{version.number} failed verification and was not used: {exc}", code=exc.code
        ) from exc


def _inference_config(version: ModelVersion) -> InferenceConfig:
    """Score as the version was evaluated at training time: its max length and truncation."""
    from modeling.ml.config import InferenceConfig

    config = version.train_config or {}
    truncation = config.get("truncation") if config.get("truncation") in ("head", "head_tail") else "head"
    return InferenceConfig(
        batch_size=SCORING_BATCH,
        max_length=int(config.get("max_length", 256)),
        truncation=truncation,
        head_tokens=config.get("head_tokens"),
        device="auto",
    )


@dataclass
class Loaded:
    """A loaded version, its outputs on the eval items, and the config it is timed with.

    ``int8_config`` is set when the policy serves int8: the int8 copy is timed beside the fp32 model.
    """

    classifier: Classifier
    config: InferenceConfig
    labels: list[str]
    scored: Scored
    int8_config: InferenceConfig | None = None


def _score(version: ModelVersion, rows: EvalRows, *, int8: bool) -> Loaded:
    """Load the version, score the eval texts and measure its size (and the int8 delta when asked)."""
    classifier = _load(version)
    config = _inference_config(version)
    predictions = classifier.predict(rows.texts, config)
    scored = Scored(
        version=version.number,
        probabilities=np.asarray(predictions.probabilities, dtype=np.float64),
        labels=np.asarray(predictions.labels, dtype=np.int64),
        size=_size(classifier, Path(version.artifact_path)),
        latency={},
    )
    loaded = Loaded(classifier, config, list(classifier.labels), scored)
    if int8:
        _score_int8(loaded, rows, version)
    return loaded


def _score_int8(loaded: Loaded, rows: EvalRows, version: ModelVersion) -> None:
    """Score the eval texts with the int8 copy the model server would serve; store the paired delta.

    The model server quantizes on CPU from fp32 weights, so fp32 on CPU is the reference: the
    version's own outputs when this job scored on CPU, otherwise a second fp32 pass on CPU (a GPU's
    bf16/fp16 outputs would mix a precision change into the quantization delta).
    """
    classifier, scored = loaded.classifier, loaded.scored
    cpu = dataclasses.replace(loaded.config, device="cpu", precision="fp32")
    if _device(classifier) == "cpu":
        fp32 = scored.probabilities
    else:
        fp32 = np.asarray(classifier.predict(rows.texts, cpu).probabilities, dtype=np.float64)
    loaded.int8_config = dataclasses.replace(cpu, quantize_int8=True)
    int8 = np.asarray(classifier.predict(rows.texts, loaded.int8_config).probabilities, dtype=np.float64)
    gold = _label_ids(rows, classifier.labels, version)
    delta = quantization_compare(gold, fp32, int8, len(classifier.labels), n_resamples=N_RESAMPLES)
    scored.int8 = {**dataclasses.asdict(delta), "latency": None}


def _device(classifier: Classifier) -> str:
    return next(classifier.model.parameters()).device.type


def measure_latencies(loaded: Sequence[Loaded], texts: Sequence[str]) -> list[dict[str, Any]]:
    """Return each version's median wall time over ``LATENCY_RUNS`` calls on one batch of ``LATENCY_BATCH`` texts.

    The versions take turns run by run, so a burst of load on a shared machine slows both alike instead
    of whichever happened to be timed then. Texts repeat when the eval split is smaller than a batch.
    Each version gets one untimed call first: the first forward pass pays for allocation (and on a GPU
    for kernel selection), which serving pays once. A version with an ``int8_config`` is timed a
    second time as its int8 copy, in the same turns; that timing is stored in its int8 block.
    """
    batch = [texts[i % len(texts)] for i in range(LATENCY_BATCH)]
    runs = [(one, one.config) for one in loaded] + [(one, one.int8_config) for one in loaded if one.int8_config]
    configs = [dataclasses.replace(config, batch_size=LATENCY_BATCH) for _, config in runs]
    devices = []
    for (one, _), config in zip(runs, configs, strict=True):
        one.classifier.predict(batch, config)
        devices.append("cpu" if config.quantize_int8 else _device(one.classifier))
    timings: list[list[float]] = [[] for _ in runs]
    for _ in range(LATENCY_RUNS):
        for (one, _), config, times in zip(runs, configs, timings, strict=True):
            started = time.perf_counter()
            one.classifier.predict(batch, config)
            times.append((time.perf_counter() - started) * 1000)
    latencies = [_latency(times, device) for times, device in zip(timings, devices, strict=True)]
    quantized = [one.scored.int8 for one in loaded if one.int8_config]
    for block, latency in zip(quantized, latencies[len(loaded) :], strict=True):
        if block is not None:
            block["latency"] = latency
    return latencies[: len(loaded)]


def _latency(timings: list[float], device: str) -> dict[str, Any]:
    median = statistics.median(timings)
    return {
        "batch_size": LATENCY_BATCH,
        "runs": len(timings),
        "median_ms": round(median, 3),
        "min_ms": round(min(timings), 3),
        "max_ms": round(max(timings), 3),
        "per_text_ms": round(median / LATENCY_BATCH, 4),
        "device": device,
    }


def _size(classifier: Classifier, path: Path) -> dict[str, Any]:
    files = [f for f in path.iterdir() if f.is_file()]
    return {
        "parameters": int(sum(p.numel() for p in classifier.model.parameters())),
        "bytes": int(sum(f.stat().st_size for f in files)),
        "weights_bytes": int(sum(f.stat().st_size for f in files if f.suffix == ".safetensors")),
    }

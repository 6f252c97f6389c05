"""The job body: read the frozen eval split, score the candidate and production, time them, compute the
results and the gates under the policy as it is now, and store them on the ``Comparison`` (its
status follows the job's: running, then succeeded or failed with a message). Safe to run again.
"""

from __future__ import annotations

import time
from typing import Any

from django.utils import timezone

from labeling.models import Item, Project
from modeling.ml.errors import MLError
from modeling.models import Comparison
from modeling.services.comparison.latency import measure_latencies
from modeling.services.comparison.results import EvalRows, comparison_results
from modeling.services.comparison.scoring import _label_ids, _score
from modeling.services.releases import comparison_gates, gate_dict, policy_for
from webapp.errors import ApplicationError
from webapp.models import Job, JobCancelled


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

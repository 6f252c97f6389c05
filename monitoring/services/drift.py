"""Drift runs: a window of production traffic tested against the serving version's reference.

Windows: ``hourly`` (the last closed hour) and ``daily`` (the last closed UTC day), run by beat for
every project whose production version has a ``DriftReference``; and ``on_demand`` (the last N
hours, 24 by default) when an owner asks. Each run stores a ``DriftRun`` whose ``results`` hold:

    {"overall": {TEST: TestResult.as_dict()},
     "per_language": {"<code>": {TEST: TestResult.as_dict() + {"bh_rejected", "alert"}}},
     "languages_too_small": {"<code>": n},          # below PER_LANGUAGE_MIN rows, not tested alone
     "sample": {"rows", "total", "cap"},            # the window's rows read, of how many
     "alerts": ["<test>" | "<code>:<test>"], "notes": [str]}

TEST is one of ``prediction`` (PSI, JS distance, chi-square), ``softmax_ks`` (KS per class,
Bonferroni), ``embedding_mmd``, ``length``, ``unk_rate`` (KS), ``script`` and ``language``
(chi-square); each entry also gets ``bh_rejected`` and ``alert``. The p-values of one run (every
test, overall and per language) are corrected together with Benjamini-Hochberg: seven tests over
ten languages at alpha each would otherwise flag something by chance in almost every window.

The job reads the raw prediction log (it is a job, not a page) but only a bounded sample: at most
``SAMPLE_ROWS`` rows of the window, the ones with the smallest ids. Ids are random UUIDs, so that
is a uniform random sample, and the same rows on a re-run.

After a detection, a domain classifier explains it (``monitoring.stats.explain``): reference eval
texts against the window's texts. Texts exist in the log only for the audit sample and for projects
that log texts; without them the explanation says so. Scheduled runs fire and resolve the drift
alerts (one per window kind and version, ticket severity, with the numbers and a link to the page);
on-demand runs are investigations and leave alerts alone.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from labeling.models import Item, Project
from labeling.services.queue_batches import QueueBatchResult, QueueText, queue_batch_add
from modeling.models import Alias, ModelVersion, PredictionLog
from modeling.services.releases import require_manager
from modeling.serving.projection import decode
from monitoring.models import Alert, DriftReference, DriftRun
from monitoring.services.alerts import AlertSpec, alerts_sync
from monitoring.services.reference import reference_load
from monitoring.stats.drift import (
    TestResult,
    benjamini_hochberg,
    categorical_shift,
    ks_test,
    mmd_test,
    prediction_shift,
    softmax_ks,
)
from monitoring.stats.explain import explain_shift
from webapp.errors import Conflict, ValidationFailed
from webapp.jobs import job_create, job_enqueue
from webapp.models import Job

logger = logging.getLogger(__name__)

ALPHA = 0.05
SAMPLE_ROWS = 2_000
WINDOW_SPANS = {DriftRun.Window.HOURLY: timedelta(hours=1), DriftRun.Window.DAILY: timedelta(days=1)}
# A window is run once its last rows are surely in the log (the server's write-behind flushes every 0.5 s).
SETTLE = timedelta(minutes=2)
ON_DEMAND_HOURS = 24
MAX_ON_DEMAND_HOURS = 24 * 30
PER_LANGUAGE_MIN = 100  # current rows of one language before it is tested on its own
PER_LANGUAGE_MIN_REFERENCE = 20
MMD_PERMUTATIONS = 500
MMD_PERMUTATIONS_PER_LANGUAGE = 200
EXPLAIN_TEXTS = 2_000
MIN_EXPLAIN_TEXTS = 20
CURRENT_LIKE_SHOWN = 10
CANDIDATES_KEPT = 500
SEND_DEFAULT = 50
SEND_MAX = 500
JOB_TASK = "drift_window"
TESTS = ("prediction", "softmax_ks", "embedding_mmd", "length", "unk_rate", "script", "language")
PER_LANGUAGE_TESTS = ("prediction", "softmax_ks", "embedding_mmd", "length", "unk_rate")


# --- the window's data -----------------------------------------------------------------------------


@dataclass
class Traffic:
    """One side of the tests: per-text outputs and descriptors (the reference, or a window's sample).

    ``probs``, ``unk_rates`` and ``embeddings`` cover only the texts that carry them (a row with other
    labels than the reference's, or logged before a descriptor existed), each with its languages.
    """

    labels: list[str]  # the reference's label order
    predicted: list[str]
    lengths: list[float]
    scripts: list[str]
    languages: list[str]
    probs: np.ndarray  # (n_p, k) in ``labels`` order
    prob_languages: list[str]
    unk_rates: list[float]
    unk_languages: list[str]
    embeddings: np.ndarray  # (n_e, dims)
    embedding_languages: list[str]
    total: int = 0
    item_ids: list[int] = field(default_factory=list)  # the reference's eval items
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.predicted)

    def only(self, language: str) -> Traffic:
        """Return the texts of one language."""

        def pick(languages: list[str]) -> list[int]:
            return [i for i, code in enumerate(languages) if code == language]

        rows, probs, unk, emb = (
            pick(self.languages),
            pick(self.prob_languages),
            pick(self.unk_languages),
            pick(self.embedding_languages),
        )
        return Traffic(
            labels=self.labels,
            predicted=[self.predicted[i] for i in rows],
            lengths=[self.lengths[i] for i in rows],
            scripts=[self.scripts[i] for i in rows],
            languages=[language] * len(rows),
            probs=self.probs[probs],
            prob_languages=[language] * len(probs),
            unk_rates=[self.unk_rates[i] for i in unk],
            unk_languages=[language] * len(unk),
            embeddings=self.embeddings[emb],
            embedding_languages=[language] * len(emb),
            total=len(rows),
        )


def reference_traffic(reference: DriftReference) -> Traffic:
    """Return the reference's per-text data as a ``Traffic``."""
    arrays = reference_load(reference)
    labels = list(reference.labels)
    languages = [str(code) or "und" for code in arrays["languages"]]
    return Traffic(
        labels=labels,
        predicted=[labels[int(i)] for i in arrays["predicted"]],
        lengths=[float(x) for x in arrays["lengths"]],
        scripts=[str(s) for s in arrays["scripts"]],
        languages=languages,
        probs=arrays["probs"].astype(np.float64),
        prob_languages=languages,
        unk_rates=[float(x) for x in arrays["unk_rates"]],
        unk_languages=languages,
        embeddings=arrays["embeddings"].astype(np.float64),
        embedding_languages=languages,
        total=reference.n_items,
        item_ids=[int(i) for i in arrays["item_ids"]],
    )


def _window_rows(project: Project, version: int, start: datetime, end: datetime) -> Any:
    return PredictionLog.objects.filter(
        project=project,
        route=PredictionLog.Route.PRODUCTION,
        version_number=version,
        created_at__gte=start,
        created_at__lt=end,
    )


def window_traffic(*, project: Project, version: int, labels: list[str], start: datetime, end: datetime) -> Traffic:
    """Return a uniform sample (at most ``SAMPLE_ROWS``) of the window's production predictions."""
    rows = _window_rows(project, version, start, end)
    total = rows.count()
    sample = list(
        rows.order_by("id").values_list("label", "probs", "input_chars", "unk_rate", "script", "language", "embedding")[
            :SAMPLE_ROWS
        ]
    )
    wanted = set(labels)
    probs, prob_lang, unk, unk_lang, emb, emb_lang = [], [], [], [], [], []
    dims = 0
    for _, row_probs, _, rate, _, language, raw in sample:
        code = language or "und"
        if isinstance(row_probs, dict) and set(row_probs) == wanted:
            probs.append([float(row_probs[name]) for name in labels])
            prob_lang.append(code)
        if rate is not None:
            unk.append(float(rate))
            unk_lang.append(code)
        if raw is not None:
            vector = decode(bytes(raw))
            dims = dims or vector.size
            if vector.size == dims:
                emb.append(vector)
                emb_lang.append(code)
    traffic = Traffic(
        labels=labels,
        predicted=[row[0] for row in sample],
        lengths=[float(row[2]) for row in sample],
        scripts=[row[4] or "Common" for row in sample],
        languages=[row[5] or "und" for row in sample],
        probs=np.asarray(probs, dtype=np.float64).reshape(len(probs), len(labels)),
        prob_languages=prob_lang,
        unk_rates=unk,
        unk_languages=unk_lang,
        embeddings=np.asarray(emb, dtype=np.float64).reshape(len(emb), dims),
        embedding_languages=emb_lang,
        total=total,
    )
    if len(probs) < len(sample):
        traffic.notes.append(f"{len(sample) - len(probs)} predictions carry other labels than the reference's.")
    if len(unk) < len(sample):
        traffic.notes.append(f"{len(sample) - len(unk)} predictions were logged without an unknown-token rate.")
    if len(emb) < len(sample):
        traffic.notes.append(
            f"{len(sample) - len(emb)} predictions were logged without an embedding "
            "(before the model server picked up the reference's projection)."
        )
    return traffic


# --- the tests ---------------------------------------------------------------------------------------


def _tests(reference: Traffic, current: Traffic, *, names: tuple[str, ...], permutations: int) -> dict[str, TestResult]:
    results: dict[str, TestResult] = {}
    if "prediction" in names:
        results["prediction"] = prediction_shift(
            {label: reference.predicted.count(label) for label in reference.labels},
            dict(Counter(current.predicted)),
            alpha=ALPHA,
        )
    if "softmax_ks" in names:
        results["softmax_ks"] = softmax_ks(reference.probs, current.probs, alpha=ALPHA, labels=reference.labels)
    if "embedding_mmd" in names:
        # No logged embedding yet (the server picks the projection up within a minute): an empty side,
        # which the test reports as not tested rather than as "no drift".
        embeddings = current.embeddings if current.embeddings.shape[0] else reference.embeddings[:0]
        if embeddings.shape[1] == reference.embeddings.shape[1]:
            results["embedding_mmd"] = mmd_test(
                reference.embeddings, embeddings, permutations=permutations, alpha=ALPHA, seed=0
            )
    if "length" in names:
        results["length"] = ks_test(reference.lengths, current.lengths, test="length", alpha=ALPHA)
    if "unk_rate" in names:
        results["unk_rate"] = ks_test(reference.unk_rates, current.unk_rates, test="unk_rate", alpha=ALPHA)
    if "script" in names:
        results["script"] = categorical_shift(
            dict(Counter(reference.scripts)), dict(Counter(current.scripts)), test="script", alpha=ALPHA
        )
    if "language" in names and any(code != "und" for code in current.languages):
        results["language"] = categorical_shift(
            dict(Counter(reference.languages)), dict(Counter(current.languages)), test="language", alpha=ALPHA
        )
    return results


def _bh_p(result: dict[str, Any]) -> float | None:
    """The p-value a test contributes to the correction across languages (Bonferroni's for softmax KS)."""
    if result.get("p_value") is None:
        return None
    if result["test"] == "softmax_ks":
        return float(result["details"]["bonferroni_p"])
    return float(result["p_value"])


def per_language_results(reference: Traffic, current: Traffic) -> tuple[dict[str, Any], dict[str, int]]:
    """Test each language with enough rows on both sides (uncorrected: ``correct`` does that)."""
    counts = Counter(current.languages)
    reference_counts = Counter(reference.languages)
    tested = sorted(
        code
        for code, n in counts.items()
        if code != "und" and n >= PER_LANGUAGE_MIN and reference_counts.get(code, 0) >= PER_LANGUAGE_MIN_REFERENCE
    )
    too_small = {code: n for code, n in counts.items() if code not in tested and code != "und"}
    results = {
        code: {
            name: result.as_dict()
            for name, result in _tests(
                reference.only(code),
                current.only(code),
                names=PER_LANGUAGE_TESTS,
                permutations=MMD_PERMUTATIONS_PER_LANGUAGE,
            ).items()
        }
        for code in tested
    }
    return results, too_small


def correct(entries: list[dict[str, Any]]) -> None:
    """Set ``bh_rejected`` and ``alert`` on every test result of one run, Benjamini-Hochberg over all of them.

    One family per run (every overall test and every per-language test): under no drift at all the run
    then flags drift with probability at most ALPHA, however many tests and languages it holds. A test
    alerts when BH rejects it and its own guard (too few rows, PSI below its threshold) does not hold.
    """
    scored = [(entry, _bh_p(entry)) for entry in entries]
    tested = [(entry, p) for entry, p in scored if p is not None]
    flags = benjamini_hochberg([min(1.0, p) for _, p in tested], alpha=ALPHA)
    for entry in entries:
        entry["bh_rejected"], entry["alert"] = False, False
    for (entry, _), flag in zip(tested, flags, strict=True):
        entry["bh_rejected"] = flag
        entry["alert"] = flag and not entry["details"].get("guard")


def drift_results(reference: Traffic, current: Traffic) -> dict[str, Any]:
    """Return the results JSON (module docstring) of every test on ``current`` against ``reference``."""
    overall = {
        name: result.as_dict()
        for name, result in _tests(reference, current, names=TESTS, permutations=MMD_PERMUTATIONS).items()
    }
    per_language, too_small = per_language_results(reference, current)
    correct([*overall.values(), *(entry for tests in per_language.values() for entry in tests.values())])
    alerts = [name for name, entry in overall.items() if entry["alert"]]
    alerts += [f"{code}:{name}" for code, tests in per_language.items() for name, r in tests.items() if r["alert"]]
    notes = list(current.notes)
    if not any(code != "und" for code in current.languages):
        notes.append(
            "The prediction log has no per-text language for this project (the API records one only for "
            "single-language projects): the language mix and per-language tests were not run."
        )
    return {
        "overall": overall,
        "per_language": per_language,
        "languages_too_small": too_small,
        "sample": {"rows": current.n, "total": current.total, "cap": SAMPLE_ROWS},
        "alerts": alerts,
        "notes": notes,
    }


# --- running a window --------------------------------------------------------------------------------


def production_with_reference(project: Project) -> tuple[ModelVersion | None, DriftReference | None]:
    """Return the project's production version and its drift reference (either may be None)."""
    alias = Alias.objects.filter(project=project, name=Alias.Name.PRODUCTION).select_related("version").first()
    if alias is None:
        return None, None
    return alias.version, DriftReference.objects.filter(model_version=alias.version).first()


def drift_run_compute(
    *,
    project: Project,
    version: ModelVersion,
    reference: DriftReference,
    window: str,
    start: datetime,
    end: datetime,
    user: Any = None,
    job: Job | None = None,
) -> DriftRun:
    """Test the window against the reference, explain a detection, store the run; scheduled runs sync alerts."""
    base = reference_traffic(reference)
    current = window_traffic(project=project, version=version.number, labels=base.labels, start=start, end=end)
    results = drift_results(base, current)
    drifted = bool(results["alerts"])
    run = DriftRun(
        project=project,
        version_number=version.number,
        window=window,
        window_start=start,
        window_end=end,
        n_reference=base.n,
        n_current=current.total,
        results=results,
        drifted=drifted,
        job=job,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    if drifted:
        run.explanation = explain_window(project=project, version=version.number, start=start, end=end, base=base)
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError:  # this scheduled window was stored meanwhile by another worker
        return DriftRun.objects.get(project=project, version_number=version.number, window=window, window_end=end)
    if window != DriftRun.Window.ON_DEMAND:
        drift_alerts_sync(project=project, run=run)
    logger.info(
        "drift run",
        extra={"project_id": project.pk, "window": window, "n": current.total, "drifted": drifted, "run_id": run.pk},
    )
    return run


def drift_windows_run(*, window: str, now: datetime | None = None) -> int:
    """Run the last closed ``window`` for every project with a referenced production version; return runs made."""
    now = now or timezone.now()
    span = WINDOW_SPANS[window]
    settled = now - SETTLE
    if window == DriftRun.Window.DAILY:
        end = settled.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        end = settled.replace(minute=0, second=0, microsecond=0)
    made = 0
    for alias in Alias.objects.filter(name=Alias.Name.PRODUCTION).select_related("version", "project"):
        reference = DriftReference.objects.filter(model_version=alias.version).first()
        if reference is None:
            continue
        done = DriftRun.objects.filter(
            project=alias.project, version_number=alias.version.number, window=window, window_end=end
        ).exists()
        if done:
            continue
        try:
            drift_run_compute(
                project=alias.project,
                version=alias.version,
                reference=reference,
                window=window,
                start=end - span,
                end=end,
            )
        except Exception:  # one project's failure must not stop the others' windows; the next beat retries it
            logger.exception("drift window failed", extra={"project_id": alias.project_id, "window": window})
            continue
        made += 1
    return made


# --- alerts --------------------------------------------------------------------------------------------


def _hourly_confirmed(project: Project, run: DriftRun, key: str) -> bool:
    """Whether the hour before drifted too, or the alert already fires (it then stays until an hour is clean)."""
    if Alert.objects.filter(project=project, key=key, state=Alert.State.FIRING).exists():
        return True
    return DriftRun.objects.filter(
        project=project, version_number=run.version_number, window=run.window, window_end=run.window_start, drifted=True
    ).exists()


def drift_alerts_sync(*, project: Project, run: DriftRun) -> None:
    """Fire (or keep) this window kind's drift alert when the run drifted; resolve it when it did not.

    A run flags drift by chance with probability at most ALPHA (see ``correct``): one a day for hourly
    windows. So an hourly alert needs two drifted hours in a row (ALPHA squared by chance, about once a
    month), a daily one a single drifted day (about one false alert in twenty days).
    """
    prefix = f"drift:{run.window}:"
    key = f"{prefix}v{run.version_number}"
    firing: dict[str, AlertSpec] = {}
    if run.drifted and (run.window != DriftRun.Window.HOURLY or _hourly_confirmed(project, run, key)):
        tests = []
        for name in run.results["alerts"]:
            code, _, test = name.rpartition(":")
            entry = run.results["per_language"][code][test] if code else run.results["overall"][test]
            tests.append(
                {
                    "test": test,
                    "language": code or None,
                    "statistic": entry["statistic"],
                    "p_value": entry["p_value"],
                    "threshold": entry["threshold"],
                }
            )
        url = reverse("monitoring:drift", kwargs={"slug": project.slug}) + f"?run={run.pk}"
        firing[key] = AlertSpec(
            severity=Alert.Severity.TICKET,
            title=f"Drift in v{run.version_number} ({run.get_window_display().lower()} window): "
            + ", ".join(run.results["alerts"]),
            evidence={
                "run": run.pk,
                "window": run.window,
                "window_start": run.window_start.isoformat(),
                "window_end": run.window_end.isoformat(),
                "n_reference": run.n_reference,
                "n_current": run.n_current,
                "tests": tests,
                "url": url,
            },
            version_number=run.version_number,
        )
    alerts_sync(project=project, kind=Alert.Kind.DRIFT, firing=firing, key_prefix=prefix)


# --- explanation -----------------------------------------------------------------------------------------


def _no_texts(status: str, message: str, n: int = 0) -> dict[str, Any]:
    return {"status": status, "message": message, "n_texts": n}


def explain_window(*, project: Project, version: int, start: datetime, end: datetime, base: Traffic) -> dict[str, Any]:
    """Run the domain classifier on reference eval texts vs the window's logged texts (see the module doc)."""
    rows = list(
        _window_rows(project, version, start, end)
        .filter(text__isnull=False)
        .order_by("id")
        .values_list("id", "text", "confidence", "embedding")[:EXPLAIN_TEXTS]
    )
    if not rows:
        return _no_texts(
            "no_texts",
            "No texts logged in this window: the project does not log prediction texts and no audit sample "
            "fell in it. Turn on text logging in the release policy (texts are redacted) to see what changed.",
        )
    if len(rows) < MIN_EXPLAIN_TEXTS:
        return _no_texts(
            "too_few_texts",
            f"Only {len(rows)} texts were logged in this window; at least {MIN_EXPLAIN_TEXTS} are needed.",
            len(rows),
        )
    item_ids = base.item_ids
    texts_by_id = dict(Item.objects.filter(pk__in=item_ids).values_list("id", "text"))
    kept = [index for index, item_id in enumerate(item_ids) if item_id in texts_by_id]
    reference_texts = [texts_by_id[item_ids[i]] for i in kept]
    if len(reference_texts) < 2:
        return _no_texts("no_reference_texts", "The reference's eval items were deleted: nothing to compare with.")
    current_vectors = [decode(bytes(raw)) if raw is not None else None for *_, raw in rows]
    dims = base.embeddings.shape[1]
    use_embeddings = all(v is not None and v.size == dims for v in current_vectors) and dims > 0
    try:
        explanation = explain_shift(
            reference_texts,
            [row[1] for row in rows],
            reference_embeddings=base.embeddings[kept] if use_embeddings else None,
            current_embeddings=np.vstack(current_vectors).astype(np.float64) if use_embeddings else None,  # type: ignore[arg-type]
            seed=0,
        )
    except ValueError as exc:  # e.g. every text empty after redaction: say why rather than fail the run
        return _no_texts("failed", f"The explanation could not be computed: {exc}", len(rows))
    return _explanation_dict(explanation.as_dict(), rows, use_embeddings)


def _explanation_dict(result: dict[str, Any], rows: list[tuple[Any, ...]], use_embeddings: bool) -> dict[str, Any]:
    scores = result.pop("current_scores")
    entries = [
        {
            "id": str(row[0]),
            "score": round(float(score), 4),
            "confidence": round(float(row[2]), 4),
            # Most drifted *and* least sure: the texts whose labels teach the next version most.
            "priority": round(float(score) * (1.0 - float(row[2])), 6),
        }
        for row, score in zip(rows, scores, strict=True)
    ]
    texts = {str(row[0]): row[1] for row in rows}
    current_like = sorted(entries, key=lambda e: -e["score"])[:CURRENT_LIKE_SHOWN]
    return {
        "status": "ok",
        **{key: result[key] for key in ("auc", "auc_low", "auc_high", "top_tokens", "n_reference", "n_current")},
        "embeddings_used": use_embeddings,
        "current_like": [{**entry, "text": texts[entry["id"]]} for entry in current_like],
        "candidates": sorted(entries, key=lambda e: -e["priority"])[:CANDIDATES_KEPT],
    }


# --- on demand -------------------------------------------------------------------------------------------


def drift_run_request(*, project: Project, user: Any, hours: int = ON_DEMAND_HOURS) -> Job:
    """Queue an on-demand run over the last ``hours`` (owners and admins); reuse one already queued."""
    require_manager(project, user, "Running the drift tests")
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_ON_DEMAND_HOURS:
        raise ValidationFailed(
            f"hours must be a whole number from 1 to {MAX_ON_DEMAND_HOURS}.", details={"field": "hours"}
        )
    version, reference = production_with_reference(project)
    if version is None:
        raise Conflict("This project has no production version: there is no traffic to test.", code="no_production")
    if reference is None:
        raise Conflict(
            f"v{version.number} has no drift reference yet; it is computed shortly after a version is approved.",
            code="no_reference",
        )
    active = Job.objects.filter(
        kind=Job.Kind.MAINTENANCE,
        project=project,
        params__task=JOB_TASK,
        status__in=(Job.Status.QUEUED, Job.Status.RUNNING),
    ).first()
    if active is not None:
        return active
    from monitoring.tasks.drift import run_drift_window

    with transaction.atomic():
        job = job_create(
            kind=Job.Kind.MAINTENANCE, project_id=project.pk, user=user, params={"task": JOB_TASK, "hours": hours}
        )
        job_enqueue(job=job, task=run_drift_window)
    return job


def drift_run_job(job: Job) -> dict[str, Any]:
    """The on-demand job's body: test the last ``hours`` of production traffic; return the run's id."""
    existing = DriftRun.objects.filter(job=job).first()
    if existing is not None:
        return {"drift_run": existing.pk, "drifted": existing.drifted}
    project = Project.objects.get(pk=job.project_id)
    version, reference = production_with_reference(project)
    if version is None or reference is None:
        raise Conflict("The production version changed and has no drift reference yet.", code="no_reference")
    end = timezone.now()
    job.set_progress(0.1, "testing the window against the reference")
    run = drift_run_compute(
        project=project,
        version=version,
        reference=reference,
        window=DriftRun.Window.ON_DEMAND,
        start=end - timedelta(hours=int(job.params.get("hours", ON_DEMAND_HOURS))),
        end=end,
        user=job.created_by,
        job=job,
    )
    return {"drift_run": run.pk, "drifted": run.drifted, "n_current": run.n_current}


# --- send to labeling ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    """What a send to labeling did (``already``: an earlier send, nothing changed now)."""

    run: DriftRun
    queued: int
    message: str
    already: bool = False
    batch: QueueBatchResult | None = None


@transaction.atomic
def drift_send_to_labeling(*, run: DriftRun, user: Any, limit: int = SEND_DEFAULT) -> SendResult:
    """Queue the run's most drifted texts (domain score x (1 - confidence)) as tag ``drift:<run id>``.

    Owners and admins; once per run (a second call reports the first and changes nothing). Their
    priorities sit above the active-learning batch's (an owner asked for them), best first.
    """
    project = Project.objects.get(pk=run.project_id)
    require_manager(project, user, "Sending drifted texts to labeling")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= SEND_MAX:
        raise ValidationFailed(f"limit must be a whole number from 1 to {SEND_MAX}.", details={"field": "limit"})
    run = DriftRun.objects.select_for_update().get(pk=run.pk)
    explanation = run.explanation or {}
    sent = explanation.get("sent")
    if sent:
        return SendResult(
            run, sent["queued"], f"Already sent on {sent['at'][:16].replace('T', ' ')} UTC: {sent['message']}", True
        )
    if not run.drifted:
        raise Conflict("This run detected no drift: there are no drifted texts to send.", code="no_drift")
    if explanation.get("status") != "ok":
        raise Conflict(
            f"No texts to send: {explanation.get('message', 'no explanation was computed')}", code="no_texts"
        )
    candidates = explanation["candidates"][:limit]
    logged = {
        str(row[0]): row
        for row in PredictionLog.objects.filter(
            project=project, id__in=[uuid.UUID(c["id"]) for c in candidates], text__isnull=False
        ).values_list("id", "text", "language", "label", "version_number")
    }
    texts = _queue_texts(project, run, [c for c in candidates if c["id"] in logged], logged)
    if not texts:
        raise Conflict("The run's texts are no longer in the prediction log (retention removed them).", code="no_texts")
    batch = queue_batch_add(project=project, texts=texts, tag=f"drift:{run.pk}")
    message = f"{batch.message[:-1]} under tag drift:{run.pk} (from {len(candidates)} ranked texts)."
    explanation["sent"] = {
        "at": timezone.now().isoformat(),
        "by": getattr(user, "username", ""),
        "queued": batch.queued,
        "created": len(batch.created),
        "requeued": len(batch.requeued),
        "already_labeled": len(batch.already_labeled),
        "message": message,
    }
    run.explanation = explanation
    run.sent_to_labeling = batch.queued
    run.save(update_fields=["explanation", "sent_to_labeling"])
    return SendResult(run, batch.queued, message, False, batch)


def _queue_texts(
    project: Project, run: DriftRun, chosen: list[dict[str, Any]], logged: dict[str, Any]
) -> list[QueueText]:
    top = max(1, project.al_batch_size) + len(chosen)
    texts = []
    for rank, candidate in enumerate(chosen):
        _, text, language, label, version = logged[candidate["id"]]
        if not text or text.isspace() or "\x00" in text or len(text) > project.max_text_chars:
            continue
        texts.append(
            QueueText(
                text=text,
                priority=float(top - rank),
                language=language or "",
                metadata={
                    "prediction_id": candidate["id"],
                    "drift_run": run.pk,
                    "version": version,
                    "predicted_label": label,
                    "domain_score": candidate["score"],
                    "confidence": candidate["confidence"],
                },
            )
        )
    return texts

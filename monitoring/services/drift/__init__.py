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

The package, by what each part does: ``traffic`` (the reference's data and a window's sample),
``results`` (the tests, the correction, the results JSON), ``windows`` (running and storing a window),
``alerts`` (firing and resolving drift alerts), ``explanation`` (the domain classifier's account of a
detection), ``on_demand`` (an owner's run as a job) and ``send_to_labeling`` (drifted texts back to the
queue). Everything public is re-exported here: import it from ``monitoring.services.drift``.
"""

from __future__ import annotations

from monitoring.services.drift.alerts import drift_alerts_sync
from monitoring.services.drift.explanation import (
    CANDIDATES_KEPT,
    CURRENT_LIKE_SHOWN,
    EXPLAIN_TEXTS,
    MIN_EXPLAIN_TEXTS,
    explain_window,
)
from monitoring.services.drift.on_demand import (
    JOB_TASK,
    MAX_ON_DEMAND_HOURS,
    ON_DEMAND_HOURS,
    drift_run_job,
    drift_run_request,
)
from monitoring.services.drift.results import (
    ALPHA,
    MMD_PERMUTATIONS,
    MMD_PERMUTATIONS_PER_LANGUAGE,
    PER_LANGUAGE_MIN,
    PER_LANGUAGE_MIN_REFERENCE,
    PER_LANGUAGE_TESTS,
    TESTS,
    correct,
    drift_results,
    per_language_results,
)
from monitoring.services.drift.send_to_labeling import SEND_DEFAULT, SEND_MAX, SendResult, drift_send_to_labeling
from monitoring.services.drift.traffic import SAMPLE_ROWS, Traffic, reference_traffic, window_traffic
from monitoring.services.drift.windows import (
    SETTLE,
    WINDOW_SPANS,
    drift_run_compute,
    drift_windows_run,
    production_with_reference,
)

__all__ = [
    "ALPHA",
    "CANDIDATES_KEPT",
    "CURRENT_LIKE_SHOWN",
    "EXPLAIN_TEXTS",
    "JOB_TASK",
    "MAX_ON_DEMAND_HOURS",
    "MIN_EXPLAIN_TEXTS",
    "MMD_PERMUTATIONS",
    "MMD_PERMUTATIONS_PER_LANGUAGE",
    "ON_DEMAND_HOURS",
    "PER_LANGUAGE_MIN",
    "PER_LANGUAGE_MIN_REFERENCE",
    "PER_LANGUAGE_TESTS",
    "SAMPLE_ROWS",
    "SEND_DEFAULT",
    "SEND_MAX",
    "SETTLE",
    "TESTS",
    "WINDOW_SPANS",
    "SendResult",
    "Traffic",
    "correct",
    "drift_alerts_sync",
    "drift_results",
    "drift_run_compute",
    "drift_run_job",
    "drift_run_request",
    "drift_send_to_labeling",
    "drift_windows_run",
    "explain_window",
    "per_language_results",
    "production_with_reference",
    "reference_traffic",
    "window_traffic",
]

"""Drift windows end to end: a real tiny XLM-R serves stable or shifted traffic through the real
model-server runner and log sink; the window runs test it against the version's reference, alert
(or stay quiet), correct per-language tests with Benjamini-Hochberg and explain a detection."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import Alert, DriftRun
from monitoring.services.drift import drift_run_request, drift_windows_run
from monitoring.services.drift import traffic as drift_traffic
from monitoring.services.drift.results import _bh_p
from monitoring.tasks.drift import run_drift_window
from tests.monitoring.test_drift_fixtures import (
    build_reference,
    drift_artifact,
    drift_artifact_source,
    drift_project,
    serve,
    texts,
)
from webapp.errors import Conflict, Forbidden
from webapp.models import Job

__all__ = ["drift_artifact", "drift_artifact_source"]

# The log sink closes a connection left in a transaction: these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)


def _midnight(days: int = 0):
    now = timezone.now()
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days)


@pytest.fixture
def referenced(project, drift_artifact):
    version = drift_project(project, drift_artifact)
    assert build_reference(version).status == Job.Status.SUCCEEDED
    return project, drift_artifact, version


def _daily(project, at_day: int) -> DriftRun:
    """Run the daily window that closed at midnight ``at_day`` days from today."""
    assert drift_windows_run(window="daily", now=_midnight(at_day) + timedelta(minutes=10)) == 1
    return DriftRun.objects.get(project=project, window="daily", window_end=_midnight(at_day))


def test_stable_traffic_raises_no_drift_and_no_alert(referenced):
    project, artifact, _ = referenced
    traffic = {"en": texts("stable", 200, "en", seed=1), "es": texts("stable", 200, "es", seed=1)}
    serve(project, artifact, traffic, at=_midnight() - timedelta(hours=6))
    run = _daily(project, 0)
    results = run.results
    assert (run.drifted, results["alerts"], run.n_current, run.n_reference) == (False, [], 400, 120)
    tested = {name for name, entry in results["overall"].items() if entry["p_value"] is not None}
    assert {"softmax_ks", "embedding_mmd", "length", "unk_rate", "language"} <= tested
    # The untrained tiny model predicts one label for (nearly) every text: the chi-square may have one cell.
    assert "prediction" in results["overall"]
    assert set(results["per_language"]) == {"en", "es"}
    assert not any(e["bh_rejected"] for tests in results["per_language"].values() for e in tests.values())
    assert run.explanation is None  # explained only after a detection
    assert not Alert.objects.filter(project=project).exists()
    assert drift_windows_run(window="daily", now=_midnight() + timedelta(minutes=20)) == 0  # once per window


def test_shifted_traffic_fires_a_drift_alert_that_resolves_when_traffic_is_stable_again(referenced):
    project, artifact, _ = referenced
    shifted = {"en": texts("shifted", 200, "en", seed=2), "es": texts("shifted", 200, "es", seed=2)}
    serve(project, artifact, shifted, at=_midnight() - timedelta(hours=6))
    run = _daily(project, 0)
    assert run.drifted and {"length", "embedding_mmd"} <= set(run.results["alerts"])
    length = run.results["overall"]["length"]
    assert length["alert"] and length["details"]["current_median"] > 3 * length["details"]["reference_median"]
    alert = Alert.objects.get(project=project, state=Alert.State.FIRING)
    assert (alert.kind, alert.severity, alert.key, alert.version_number) == ("drift", "ticket", "drift:daily:v1", 1)
    assert alert.evidence["url"] == f"/projects/{project.slug}/monitoring/drift/?run={run.pk}"
    assert {t["test"] for t in alert.evidence["tests"]} >= {"length", "embedding_mmd"}
    assert alert.evidence["n_current"] == 400
    # The explanation: reference texts vs the window's logged texts.
    explanation = run.explanation
    assert explanation["status"] == "ok" and explanation["auc"] > 0.9 and explanation["auc_low"] > 0.8
    assert explanation["n_current"] == 400 and explanation["n_reference"] == 120
    shifted_words = {"mountain", "glacier", "passport", "montaña", "pasaporte", "volcán", "itinerary"}
    tokens = " ".join(token for token, _ in explanation["top_tokens"])
    assert any(word[:3] in tokens for word in shifted_words)
    assert all(entry["text"] in shifted["en"] + shifted["es"] for entry in explanation["current_like"])
    # The next day is stable again: the alert resolves.
    stable = {"en": texts("stable", 150, "en", seed=3), "es": texts("stable", 150, "es", seed=3)}
    serve(project, artifact, stable, at=_midnight(1) - timedelta(hours=6))
    assert not _daily(project, 1).drifted
    alert.refresh_from_db()
    assert alert.state == Alert.State.RESOLVED and alert.resolved_at is not None


def test_per_language_tests_are_corrected_together_and_find_the_one_shifted_language(referenced):
    project, artifact, _ = referenced
    traffic = {
        "en": texts("stable", 150, "en", seed=4),
        "es": texts("shifted", 150, "es", seed=4),
        "fr": texts("stable", 12, "en", seed=5),  # too few rows (and no reference) to test alone
    }
    serve(project, artifact, traffic, at=_midnight() - timedelta(hours=3))
    run = _daily(project, 0)
    per_language = run.results["per_language"]
    assert set(per_language) == {"en", "es"} and run.results["languages_too_small"] == {"fr": 12}
    assert per_language["es"]["length"]["alert"] and per_language["es"]["length"]["bh_rejected"]
    assert not any(entry["alert"] for entry in per_language["en"].values())
    assert "es:length" in run.results["alerts"] and not any(a.startswith("en:") for a in run.results["alerts"])
    # Every p-value of the run is in one Benjamini-Hochberg family: a rejected entry's p-value is below
    # alpha times its rank over the number of tests, never merely below alpha.
    entries = [*run.results["overall"].values(), *(e for t in per_language.values() for e in t.values())]
    p_values = sorted(_bh_p(e) for e in entries if e["p_value"] is not None)
    largest_rejected = max(_bh_p(e) for e in entries if e["bh_rejected"])
    rank = p_values.index(largest_rejected) + 1
    assert largest_rejected <= 0.05 * rank / len(p_values)


def test_an_hourly_alert_needs_two_drifted_hours_in_a_row(referenced):
    project, artifact, _ = referenced
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    for offset in (2, 1):
        start = hour - timedelta(hours=offset)
        batch = {"en": texts("shifted", 120, "en", seed=offset)}
        serve(project, artifact, batch, at=start + timedelta(minutes=30))
        assert drift_windows_run(window="hourly", now=start + timedelta(hours=1, minutes=5)) == 1
        run = DriftRun.objects.get(project=project, window="hourly", window_end=start + timedelta(hours=1))
        assert run.drifted
        firing = Alert.objects.filter(project=project, state=Alert.State.FIRING)
        assert firing.count() == (0 if offset == 2 else 1)
    assert firing.get().key == "drift:hourly:v1"


def test_without_logged_texts_the_explanation_says_so(project, drift_artifact):
    version = drift_project(project, drift_artifact, log_texts=False)
    build_reference(version)
    serve(
        project,
        drift_artifact,
        {"en": texts("shifted", 120, "en", seed=6)},
        at=_midnight() - timedelta(hours=2),
        log_text=False,
    )
    run = _daily(project, 0)
    assert run.drifted and run.explanation["status"] == "no_texts"
    assert "No texts logged" in run.explanation["message"]


def test_the_window_is_read_as_a_bounded_sample(referenced, monkeypatch):
    project, artifact, _ = referenced
    monkeypatch.setattr(drift_traffic, "SAMPLE_ROWS", 60)
    serve(project, artifact, {"en": texts("stable", 100, "en", seed=7)}, at=_midnight() - timedelta(hours=1))
    run = _daily(project, 0)
    assert run.results["sample"] == {"rows": 60, "total": 100, "cap": 60} and run.n_current == 100
    assert run.results["overall"]["length"]["n_current"] == 60


def test_an_owner_runs_the_tests_on_demand_without_touching_alerts(referenced, owner, reviewer):
    project, artifact, _ = referenced
    serve(project, artifact, {"en": texts("shifted", 120, "en", seed=8)})
    with pytest.raises(Forbidden):
        drift_run_request(project=project, user=reviewer)
    job = drift_run_request(project=project, user=owner, hours=2)
    assert drift_run_request(project=project, user=owner) == job  # one at a time
    run_drift_window(str(job.pk))
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.message
    run = DriftRun.objects.get(pk=job.result["drift_run"])
    assert (run.window, run.drifted, run.created_by, run.job_id) == ("on_demand", True, owner, job.pk)
    assert run.window_end - run.window_start == timedelta(hours=2)
    assert not Alert.objects.filter(project=project).exists()


def test_on_demand_needs_a_reference_and_a_sane_span(project, drift_artifact, owner):
    drift_project(project, drift_artifact)
    with pytest.raises(Conflict, match="no drift reference yet"):
        drift_run_request(project=project, user=owner)
    with pytest.raises(Exception, match="hours must be"):
        drift_run_request(project=project, user=owner, hours=0)

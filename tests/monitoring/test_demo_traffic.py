"""The scripted demo traffic: volume, mix, latencies, errors, feedback, the drifted stretch, routing as the
API routes (sticky canary callers, shadow copies), and the management command."""

from __future__ import annotations

import io
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from labeling.models import Item
from modeling.models import Alias, ModelVersion, PredictionError, PredictionFeedback, PredictionLog, ReleasePolicy
from modeling.services.serving import canary_bucket
from monitoring.demo import TrafficSpec, traffic_simulate
from monitoring.selectors.canary import canary_report, canary_time_range

# The real sink (made for the model server's writer thread) drops a connection left inside a
# transaction, so these tests run outside one, as the command does.
pytestmark = pytest.mark.django_db(transaction=True)

END = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def alias(project, name: str, number: int) -> None:
    version = ModelVersion.objects.create(project=project, number=number, status="production", base_checkpoint="x")
    Alias.objects.create(project=project, name=name, version=version)


def test_a_stream_has_the_rate_languages_labels_latencies_errors_and_feedback(project):
    alias(project, "production", 4)
    summary = traffic_simulate(project=project, spec=TrafficSpec(minutes=60, rate=40, end=END, error_share=0.02))
    rows = PredictionLog.objects.filter(project=project)
    # Poisson arrivals: 2,400 requests expected, sd about 49.
    assert 2400 - 250 < summary.requests < 2400 + 250
    assert rows.count() == summary.written == summary.predictions > summary.requests - summary.errors
    assert not rows.filter(created_at__lt=END - timedelta(minutes=60)).exists()
    assert not rows.filter(created_at__gte=END).exists()
    assert set(rows.values_list("route", flat=True)) == {"production"}
    assert set(rows.values_list("version_number", flat=True)) == {4}
    languages = Counter(rows.values_list("language", flat=True))
    assert set(languages) == {"en", "de", "es", "fr"} and languages["en"] > languages["de"] > languages["fr"]
    labels = Counter(rows.values_list("label", flat=True))
    assert set(labels) == {"negative", "neutral", "positive"} and labels["positive"] > labels["negative"]
    latencies = list(rows.values_list("latency_ms", flat=True))
    assert 8 < statistics.median(latencies) < 40 and max(latencies) > 3 * statistics.median(latencies)
    for confidence, probs, label in rows.values_list("confidence", "probs", "label")[:200]:
        assert max(probs, key=probs.get) == label and probs[label] == pytest.approx(confidence, abs=1e-5)
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
    errors = PredictionError.objects.filter(project=project)
    assert errors.count() == summary.errors > 10
    assert set(errors.values_list("status_code", flat=True)) == {429, 503}
    feedback = PredictionFeedback.objects.filter(project=project)
    assert feedback.count() == summary.feedback and 0.02 * summary.predictions < summary.feedback
    served = dict(rows.values_list("id", "created_at"))
    assert all(f.prediction_id in served and f.created_at >= served[f.prediction_id] for f in feedback)
    # Texts are not kept: the project did not opt in (only the sink's audit sample is).
    assert rows.filter(text__isnull=False, audit=False).count() == 0
    assert rows.filter(audit=True).exclude(text=None).count() == rows.filter(audit=True).count()


def test_feedback_carries_the_gold_label_of_the_item_the_text_came_from(project):
    negative = project.labels.get(name="negative")
    Item.objects.create(
        project=project, text="the printer is on fire", content_hash="a" * 64, language="en", gold_label=negative
    )
    traffic_simulate(project=project, spec=TrafficSpec(minutes=30, rate=60, end=END, feedback_share=1.0))
    fire = PredictionLog.objects.filter(project=project, input_chars=len("the printer is on fire"))
    assert fire.exists()
    labels = set(
        PredictionFeedback.objects.filter(prediction_id__in=fire.values("id")).values_list("label__name", flat=True)
    )
    assert labels == {"negative"}


def test_the_drifted_stretch_changes_languages_labels_and_quality(project):
    summary = traffic_simulate(
        project=project, spec=TrafficSpec(minutes=90, rate=40, end=END, drift=True, feedback_share=1.0, seed=3)
    )
    assert summary.drift_start == END - timedelta(minutes=30)
    rows = PredictionLog.objects.filter(project=project)
    before, after = rows.filter(created_at__lt=summary.drift_start), rows.filter(created_at__gte=summary.drift_start)
    assert not before.filter(language="pt").exists() and after.filter(language="pt").count() > 100
    share = lambda qs, **kw: qs.filter(**kw).count() / qs.count()  # noqa: E731
    assert share(after, language="en") < share(before, language="en") - 0.25
    assert share(after, label="negative") > share(before, label="negative") + 0.1
    assert statistics.mean(after.values_list("input_chars", flat=True)) > statistics.mean(
        before.values_list("input_chars", flat=True)
    )
    assert statistics.mean(after.values_list("confidence", flat=True)) < statistics.mean(
        before.values_list("confidence", flat=True)
    )

    def accuracy(qs) -> float:
        truth = dict(
            PredictionFeedback.objects.filter(prediction_id__in=qs.values("id")).values_list(
                "prediction_id", "label__name"
            )
        )
        return sum(truth[pk] == label for pk, label in qs.values_list("id", "label") if pk in truth) / len(truth)

    assert accuracy(before) > 0.8 > 0.75 > accuracy(after)


def test_canary_callers_are_sticky_and_production_requests_get_shadow_copies(project):
    alias(project, "production", 1)
    alias(project, "canary", 2)
    alias(project, "shadow", 3)
    ReleasePolicy.objects.create(project=project, canary_percent=30.0, shadow_enabled=True)
    summary = traffic_simulate(project=project, spec=TrafficSpec(minutes=20, rate=60, end=END))
    rows = PredictionLog.objects.filter(project=project)
    for caller, route in rows.exclude(route="shadow").values_list("caller", "route").distinct():
        assert (route == "canary") == (canary_bucket(project_id=project.pk, caller_key=caller) < 30.0)
    assert set(rows.filter(route="canary").values_list("version_number", flat=True)) == {2}
    assert 0.1 < summary.routes["canary"] / (summary.routes["canary"] + summary.routes["production"]) < 0.5
    assert summary.routes["shadow"] == summary.routes["production"]
    # Every shadow copy pairs with its production twin on the canary page.
    report = canary_report(project=project, time_range=canary_time_range({"range": "1h"}, now=END))
    assert report.shadow.rows == report.shadow.pairs == summary.routes["shadow"]
    assert report.canary.rows == summary.routes["canary"]
    # A shadow version is a sibling of production: it mostly keeps production's label (about 0.92 plus
    # the chance agreements of the rest), and popular texts reach canary callers too.
    assert 0.9 < report.shadow.agreement.value < 0.99
    assert report.canary.pairs > 10


def test_the_same_seed_writes_the_same_stream(project, other_project):
    first = traffic_simulate(project=project, spec=TrafficSpec(minutes=10, rate=30, end=END, seed=7))
    second = traffic_simulate(project=other_project, spec=TrafficSpec(minutes=10, rate=30, end=END, seed=7))
    assert (first.requests, first.languages, first.labels) == (second.requests, second.languages, second.labels)


def test_inside_a_transaction_the_stream_is_refused_before_writing(project):
    from django.db import transaction

    with transaction.atomic(), pytest.raises(RuntimeError, match="outside a transaction"):
        traffic_simulate(project=project, spec=TrafficSpec(minutes=5, rate=30, end=END))
    assert not PredictionLog.objects.exists()


def test_the_command_writes_traffic_and_refuses_bad_input(project):
    out = io.StringIO()
    call_command("simulate_traffic", project.slug, "--minutes", "5", "--rate", "30", "--drift", stdout=out)
    written = PredictionLog.objects.filter(project=project).count()
    assert written > 50 and f"{written} predictions logged" in out.getvalue() and "drifted from" in out.getvalue()
    with pytest.raises(CommandError, match="No project with the slug 'nope'"):
        call_command("simulate_traffic", "nope", "--minutes", "5")
    with pytest.raises(CommandError, match="minutes must be 1 to"):
        call_command("simulate_traffic", project.slug, "--minutes", "0")
    with pytest.raises(CommandError, match="rate must be above 0"):
        call_command("simulate_traffic", project.slug, "--rate", "-1")
    with pytest.raises(CommandError, match="--end must be an ISO 8601"):
        call_command("simulate_traffic", project.slug, "--end", "yesterday")
    assert PredictionLog.objects.filter(project=project).count() == written

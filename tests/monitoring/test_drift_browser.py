"""The drift page in a real headless Chromium after shifted traffic from a real tiny model: plotly draws
each test over time, the run shows the detection and its explanation, and "Send to labeling" queues
the batch and says so."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from labeling.models import Item
from monitoring.models import DriftRun
from monitoring.services.drift import drift_windows_run
from tests.browser import LIVE_MARKS, login
from tests.monitoring.test_drift_fixtures import (
    build_reference,
    drift_artifact,
    drift_artifact_source,
    drift_project,
    serve,
    texts,
)

__all__ = ["drift_artifact", "drift_artifact_source"]

pytestmark = LIVE_MARKS

RENDERED = """(name) => {
  const el = document.querySelector('[data-figure="' + name + '"]');
  return el && el.dataset.rendered === "1" ? Number(el.dataset.points) : null;
}"""


def test_the_drift_page_draws_the_tests_and_sends_the_drifted_texts(chromium_page, project, owner, drift_artifact):
    tab, base_url = chromium_page
    version = drift_project(project, drift_artifact)
    build_reference(version)
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    for day, kind in ((-1, "stable"), (0, "shifted")):
        end = midnight + timedelta(days=day)
        batches = {"en": texts(kind, 120, "en", seed=day + 5), "es": texts(kind, 120, "es", seed=day + 5)}
        serve(project, drift_artifact, batches, at=end - timedelta(hours=5))
        drift_windows_run(window="daily", now=end + timedelta(minutes=10))
    run = DriftRun.objects.get(project=project, window_end=midnight)
    assert run.drifted and DriftRun.objects.count() == 2

    login(tab, base_url, owner.username)
    tab.goto(f"{base_url}/projects/{project.slug}/monitoring/drift/?range=7d")
    tab.wait_for_function(f"() => ({RENDERED})('length') !== null")
    for name in ("length", "embedding_mmd", "softmax_ks"):
        assert tab.evaluate(RENDERED, name) >= 3  # two windows and the threshold line
    assert "Drift detected" in tab.inner_text("#run-verdict")
    assert "ROC AUC" in tab.inner_text("#explanation")
    tab.fill("#send-to-labeling input[name=limit]", "7")
    tab.click("#send-to-labeling button[type=submit]")
    tab.wait_for_selector("#sent")
    assert "7 texts queued" in tab.inner_text("#sent")
    assert Item.objects.filter(project=project, queue_tag=f"drift:{run.pk}").count() == 7

"""A model version's page in a real headless Chromium: the progress bar and loss curve grow live.

The first test is end to end: an owner submits the train form, a real Celery worker fine-tunes a
tiny RoBERTa checkpoint, and the open version page draws the job's progress and the loss curve as
the worker writes them. The second writes the same rows from the test itself, so it can check each
intermediate state exactly. Either way the page must pick them up through its own polling (the htmx
job partial and the version progress endpoint) and reload once into the metrics when training ends.
"""

from __future__ import annotations

import time

import pytest

from labeling.models import Role
from modeling.models import ModelVersion
from tests.browser import LIVE_MARKS, login
from tests.factories import JobFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.modeling import conftest as modeling_fixtures
from tests.modeling.test_pages import realistic_metrics
from tests.worker_harness import running_worker

# The tiny checkpoints and a private artifact root, shared with the modeling tests.
tiny_checkpoints = modeling_fixtures.tiny_checkpoints
artifact_root = modeling_fixtures.artifact_root

pytestmark = LIVE_MARKS


def _sample(tab) -> tuple[str, int, str] | None:
    """Return (status badge, loss points drawn, job progress %) as the page shows them now."""
    from playwright.sync_api import Error

    try:
        return tab.evaluate(
            """() => {
              const chart = document.getElementById('chart-loss');
              const bar = document.querySelector('.job-progress [role=progressbar]');
              return [document.querySelector('h1 .badge').textContent.trim(),
                      chart && chart.data ? chart.data[0].x.length : 0,
                      bar ? bar.getAttribute('aria-valuenow') : ''];
            }"""
        )
    except Error:  # the page is reloading into the finished version
        return None


@pytest.mark.integration
def test_a_real_training_run_fills_the_progress_bar_and_grows_the_loss_curve(
    chromium_page, tiny_checkpoints, artifact_root, tmp_path
):
    tab, base_url = chromium_page
    # Enough tiny training texts and epochs that the run spans several polls even on a fast machine.
    sizes = modeling_fixtures.PoolSizes(train=320)  # enough steps that the page polls while it trains, even when idle
    project = modeling_fixtures.make_project("tiny-live", tiny_checkpoints.roberta, sizes)
    MembershipFactory(project=project, user=UserFactory(username="trainer"), role=Role.OWNER)
    login(tab, base_url, "trainer")
    with running_worker(tmp_path, env={"HF_HUB_OFFLINE": "1"}) as worker:
        tab.goto(f"{base_url}/projects/tiny-live/models/")
        tab.get_by_role("link", name="Train the first version").click()
        tab.fill("#id_epochs", "50")
        tab.fill("#id_lr", "0.005")
        tab.fill("#id_max_length", "32")
        tab.fill("#id_early_stopping_patience", "")
        tab.click("form.train-form button[type=submit]")
        tab.wait_for_url(f"{base_url}/projects/tiny-live/models/1/")
        samples = []
        # Polled until the run ends, for up to 10 minutes: a 2-core machine busy with other work has taken
        # over 4 minutes for these 50 epochs (2026-11-22); an idle one takes far less.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            sample = _sample(tab)
            if sample:
                samples.append(tuple(sample))
                if sample[0] in ("Candidate", "Failed"):
                    break
            tab.wait_for_timeout(200)
        version = ModelVersion.objects.get(project=project, number=1)
        assert version.status == ModelVersion.Status.CANDIDATE, (version.error, worker.log()[-3000:])
    while_training = [s for s in samples if s[0] == "Training"]
    points = sorted({s[1] for s in while_training if s[1]})
    progress = sorted({int(s[2]) for s in while_training if s[2]})
    assert len(points) >= 2, samples  # the curve grew while the page was open, without a reload
    assert len(progress) >= 2 and progress[0] < 100, samples
    tab.get_by_role("heading", name="Per class").wait_for()
    assert tab.locator("h1 .badge").inner_text() == "Candidate"
    assert _loss_points(tab) == len([p for p in version.history if p["loss"] is not None]) > points[0]
    assert tab.evaluate("() => document.getElementById('chart-confusion').data[0].x") == ["negative", "positive"]


def _point(step: int) -> dict:
    evaluation = {"accuracy": 0.5 + step / 100, "macro_f1": 0.45 + step / 100} if step % 3 == 0 else None
    return {"step": step, "epoch": step / 6, "loss": 1.2 / step, "lr": 3e-5, "eval": evaluation, "t": float(step)}


def _loss_points(tab) -> int:
    return tab.evaluate("() => (document.getElementById('chart-loss').data || [{x: []}])[0].x.length")


def test_progress_bar_and_loss_curve_grow_while_a_version_trains(chromium_page):
    tab, base_url = chromium_page
    project = ProjectFactory(slug="live-project", name="Live project", labels=["negative", "neutral", "إيجابي"])
    MembershipFactory(project=project, user=UserFactory(username="watcher"), role=Role.REVIEWER)
    login(tab, base_url, "watcher")
    job = JobFactory(project=project, kind="train", status="running", progress=0.1, message="step 2/12")
    version = ModelVersion.objects.create(
        project=project,
        number=1,
        status=ModelVersion.Status.TRAINING,
        base_checkpoint="tiny-roberta",
        history=[_point(1), _point(2)],
        job=job,
    )
    tab.goto(f"{base_url}/projects/live-project/models/1/")
    tab.wait_for_function("() => document.getElementById('chart-loss').data")
    assert _loss_points(tab) == 2
    bar = tab.locator(f"#job-{job.pk} [role=progressbar]")
    assert bar.get_attribute("aria-valuenow") == "10"

    # The worker logs more steps and moves the job on; the open page picks both up by polling.
    version.history = [_point(step) for step in range(1, 8)]
    version.save(update_fields=["history"])
    job.set_progress(0.55, "step 7/12")
    tab.wait_for_function("() => document.getElementById('chart-loss').data[0].x.length === 7")
    tab.wait_for_function(
        f"() => document.querySelector('#job-{job.pk} [role=progressbar]').getAttribute('aria-valuenow') === '55'"
    )
    assert "step 7/12" in tab.inner_text(f"#job-{job.pk}")
    assert tab.evaluate("() => document.getElementById('chart-eval').data[0].x") == [3, 6]
    assert "Step 7" in tab.inner_text("#live-step")
    assert tab.locator("h1 .badge").inner_text() == "Training"
    assert tab.get_by_role("heading", name="Per class").count() == 0

    # Training ends: the page stops polling and reloads once into the finished version's metrics.
    version.history = [_point(step) for step in range(1, 13)]
    version.save(update_fields=["history"])
    job.mark_succeeded({"version": 1})
    version.mark_candidate(
        metrics=realistic_metrics(), artifact_path="/tmp/v1", manifest_sha256="ef" * 32, temperature=1.7
    )
    tab.get_by_role("heading", name="Per class").wait_for()
    assert tab.locator("h1 .badge").inner_text() == "Candidate"
    assert tab.get_attribute("#version-page", "data-live") == "0"
    assert _loss_points(tab) == 12
    cells = tab.evaluate("() => document.getElementById('chart-confusion').data[0].text")
    assert cells == [[str(n) for n in row] for row in version.metrics["eval"]["confusion"]]

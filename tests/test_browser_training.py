"""A model version's page in a real headless Chromium: the progress bar and loss curve grow live.

The version's history and job progress are written from the test while the page is open, exactly
the rows the training task writes, so the page must pick them up through its own polling (the htmx
job partial and the version progress endpoint) without a reload; when the version finishes, the
page reloads once into the metrics view.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connections

from labeling.models import Role
from modeling.models import ModelVersion
from tests.factories import JobFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.modeling.test_pages import realistic_metrics

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
    ),
]


@pytest.fixture
def page(live_server, monkeypatch):
    """A logged-in Chromium page on the live server."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes while the
    # page is open are plain blocking calls all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    user = UserFactory(username="watcher")
    project = ProjectFactory(slug="live-project", name="Live project", labels=["negative", "neutral", "إيجابي"])
    MembershipFactory(project=project, user=user, role=Role.REVIEWER)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1280, "height": 1000})
        tab.set_default_timeout(20_000)
        tab.goto(f"{live_server.url}/accounts/login/")
        tab.fill("#id_username", "watcher")
        tab.fill("#id_password", PASSWORD)
        tab.click("main button[type=submit]")
        tab.wait_for_url(f"{live_server.url}/projects/")
        yield tab, project, live_server.url
        # Under Playwright's running event loop the ORM keeps its connection in a separate context
        # from the rest of the test; close it here, or PostgreSQL refuses to drop the test database.
        connections.close_all()
        browser.close()


def _point(step: int) -> dict:
    evaluation = {"accuracy": 0.5 + step / 100, "macro_f1": 0.45 + step / 100} if step % 3 == 0 else None
    return {"step": step, "epoch": step / 6, "loss": 1.2 / step, "lr": 3e-5, "eval": evaluation, "t": float(step)}


def _loss_points(tab) -> int:
    return tab.evaluate("() => (document.getElementById('chart-loss').data || [{x: []}])[0].x.length")


def test_progress_bar_and_loss_curve_grow_while_a_version_trains(page):
    tab, project, base_url = page
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

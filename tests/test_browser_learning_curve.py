"""The learning-curve page in a real headless Chromium: plotly draws the curve and the kappa chart, or the page
says honestly that there is no data; "Retrain now" on the models page answers with what happened."""

from __future__ import annotations

import hashlib

from labeling.models import Item, Label, Role
from modeling.models import ModelVersion, Retraining
from modeling.services.stop_set import stop_set_ensure
from tests.browser import LIVE_MARKS, login
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.modeling.test_pages import realistic_metrics

pytestmark = LIVE_MARKS

DRAWN = """(name) => {
  const el = document.querySelector('[data-figure="' + name + '"]');
  return el && el.data ? [el.data[0].x.length, el.querySelectorAll('.main-svg').length > 0] : null;
}"""


def _project(slug: str):
    project = ProjectFactory(slug=slug, labels=["a", "b"])
    user = UserFactory(username=f"owner-{slug}")
    MembershipFactory(project=project, user=user, role=Role.OWNER)
    return project, user


def test_the_page_draws_the_curve_and_the_kappa_chart(chromium_page):
    tab, base_url = chromium_page
    project, user = _project("curve")
    texts = [f"stop {i}" for i in range(4)]
    Item.objects.bulk_create(
        [Item(project=project, text=t, content_hash=hashlib.sha256(t.encode()).hexdigest()) for t in texts]
    )
    ids = stop_set_ensure(project_id=project.pk)
    a, b = Label.objects.filter(project=project).values_list("id", flat=True)
    for number, (train, stop) in enumerate([(100, [a, a, b, b]), (250, [a, b, b, b]), (400, [a, b, b, b])], 1):
        version = ModelVersion.objects.create(
            project=project,
            number=number,
            status="candidate",
            base_checkpoint="x",
            metrics=realistic_metrics(),
            data={"train": train, "eval": 120},
            stop_predictions={str(i): label for i, label in zip(ids, stop, strict=True)},
        )
    Retraining.objects.create(project=project, trigger="auto", status="succeeded", version=version)
    login(tab, base_url, user.username)
    tab.goto(f"{base_url}/projects/curve/models/learning-curve/")
    tab.wait_for_function(f"() => ({DRAWN})('curve') && ({DRAWN})('stability')")
    assert tab.evaluate(DRAWN, "curve") == [3, True]
    assert tab.evaluate(DRAWN, "stability") == [2, True]
    assert "Keep labeling" in tab.inner_text("#stop-verdict")
    assert tab.locator(".chart-empty").count() == 0
    assert tab.locator("#curve .badge-auto").count() == 1


def test_the_page_says_there_is_no_data_and_retrain_now_reports_the_refusal(chromium_page):
    tab, base_url = chromium_page
    _, user = _project("empty")
    login(tab, base_url, user.username)
    tab.goto(f"{base_url}/projects/empty/models/learning-curve/")
    assert "no model version has been trained and evaluated" in tab.inner_text("#curve-empty")
    assert "kappa needs two versions" in tab.inner_text("#stability-empty")
    assert tab.locator("[data-figure]").count() == 0
    tab.goto(f"{base_url}/projects/empty/models/")
    # The form posts and redirects back to this same URL: wait for that navigation, not for the URL.
    with tab.expect_navigation():
        tab.click("text=Retrain now")
    assert "Not enough labelled data to train" in tab.inner_text(".messages")
    assert not Retraining.objects.exists()

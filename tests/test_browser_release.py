"""The release flow in a real headless Chromium: an owner runs comparisons from the page, sees a failing
gate block one candidate, approves and promotes a passing one, and the prediction API then answers
with the new version.

The versions are real tiny RoBERTa artifacts (one well trained, one barely trained). The comparison
jobs are started by the page's button and run by this test process (the same job body a gpu worker
runs), so the open page has to notice the job's end through its own polling and reload into the results.
A real ``manage.py model_server`` process follows the alias table; the API is called over HTTP on the
live server with the owner's token.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labeling.models import Role
from modeling.models import Alias, Comparison, ModelVersion, ReleaseEvent
from modeling.services.releases import policy_for, release_approve, release_promote
from modeling.tasks import compare_versions
from tests.browser import LIVE_MARKS, login
from tests.factories import MembershipFactory, UserFactory
from tests.modeling import conftest as modeling_fixtures
from tests.modeling import test_releases_fixtures as release_fixtures
from tests.modeling.serving.harness import running_model_server
from tests.modeling.test_releases_fixtures import make_version

tiny_checkpoints = modeling_fixtures.tiny_checkpoints
release_artifacts = release_fixtures.release_artifacts

pytestmark = LIVE_MARKS


def _compare_from_the_page(tab, base_url: str, version: ModelVersion) -> Comparison:
    """Click "Run the comparison", watch the progress bar, run the job, and wait for the page's reload."""
    tab.goto(f"{base_url}/projects/{version.project.slug}/models/{version.number}/compare/")
    tab.click("#run-comparison")
    tab.locator("#comparison-job [role=progressbar]").wait_for()
    assert tab.locator("#comparison-job .job-status").inner_text().startswith("Queued")
    comparison = Comparison.objects.get(candidate=version)
    compare_versions(str(comparison.job_id))
    tab.locator("#gates").wait_for()  # the page saw the job end and reloaded into the results
    assert tab.locator("#comparison-job").count() == 0
    comparison.refresh_from_db()
    assert comparison.status == Comparison.Status.SUCCEEDED, comparison.error
    return comparison


def _predict(tab, base_url: str, slug: str, token: str, texts: list[str]) -> dict:
    """Call the prediction API over HTTP on the live server with a token (Playwright's request context)."""
    response = tab.request.post(
        f"{base_url}/api/v1/projects/{slug}/predict",
        data=json.dumps({"texts": texts}),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    assert response.status == 200, response.text()
    body: dict = response.json()
    return body


@pytest.mark.integration
def test_an_owner_sees_a_failing_gate_and_approves_and_promotes_a_passing_candidate(
    chromium_page, tiny_checkpoints, release_artifacts, tmp_path, settings
):
    from rest_framework.authtoken.models import Token

    from modeling.services.comparison import comparison_start

    tab, base_url = chromium_page
    project = modeling_fixtures.make_project("tiny-release", tiny_checkpoints.roberta)
    owner = UserFactory(username="releaser")
    MembershipFactory(project=project, user=owner, role=Role.OWNER)
    # v1 (barely trained) went to production earlier; v2 is no better; v3 learned the task.
    v1 = make_version(project, 1, release_artifacts.weak)
    v2 = make_version(project, 2, release_artifacts.weak)
    v3 = make_version(project, 3, release_artifacts.strong)
    compare_versions(str(comparison_start(version=v1, user=owner).job_id))
    release_approve(version=v1, user=owner)
    release_promote(version=v1, user=owner)
    token = Token.objects.create(user=owner).key
    settings.API_RATE_LIMIT_STORE = f"file://{tmp_path / 'ratelimit'}"
    with running_model_server(tmp_path) as server:
        settings.MODEL_SERVER_ADDRESS = server.address
        server.wait_serving(f"{project.pk}:production", 1)
        texts = ["love this great happy park", "awful terrible sad phone"]
        assert _predict(tab, base_url, "tiny-release", token, texts)["model_version"] == 1
        _release_from_the_pages(tab, base_url, project, v2, v3, tmp_path)
        # The model server follows the production alias; the API answers with the promoted version.
        server.wait_serving(f"{project.pk}:production", 3)
        answer = _predict(tab, base_url, "tiny-release", token, texts)
    assert answer["model_version"] == 3
    assert [p["label"] for p in answer["predictions"]] == ["positive", "negative"]


def _release_from_the_pages(tab, base_url: str, project, v2: ModelVersion, v3: ModelVersion, shots: Path) -> None:
    login(tab, base_url, "releaser")

    # The owner sets the bar on the policy page: eval macro-F1 of at least 0.9.
    tab.goto(f"{base_url}/projects/tiny-release/models/releases/policy/")
    tab.fill("#id_min_macro_f1", "0.9")
    tab.click("form.policy-form button[type=submit]")
    tab.get_by_text("Release policy saved.").wait_for()
    assert policy_for(project=project).min_macro_f1 == 0.9

    # v2: the gate fails, and approving is refused naming the gate and the margin.
    _compare_from_the_page(tab, base_url, v2)
    failing = tab.locator("#gates li.fail")
    assert failing.count() == 1
    assert failing.get_attribute("data-gate") == "min_macro_f1"
    assert "eval macro-F1 0.333 is below the minimum 0.900 (short by 56.7 points)" in failing.inner_text()
    tab.fill("#approve-comment", "try anyway")
    tab.click("#approve")
    assert "Approval is blocked by 1 failing gate: min_macro_f1" in tab.inner_text("#action-error")
    assert tab.input_value("#approve-comment") == "try anyway"
    v2.refresh_from_db()
    assert v2.status == ModelVersion.Status.CANDIDATE

    # v3: every gate passes; the statistics and both confusion matrices are drawn; approve, then promote.
    _compare_from_the_page(tab, base_url, v3)
    assert tab.locator("#gates li.fail").count() == 0 and "all pass" in tab.inner_text("#gates h2")
    tab.wait_for_function("() => document.getElementById('chart-confusion-production').data")
    cells = tab.evaluate("() => document.getElementById('chart-confusion-candidate').data[0].text")
    assert cells == [["8", "0"], ["0", "8"]]
    assert "Exact two-sided p" in tab.inner_text("#mcnemar-p")
    assert "Where they disagree: 8 items" in tab.inner_text("#disagreements")
    tab.screenshot(path=str(shots / "comparison.png"), full_page=True)
    tab.fill("#approve-comment", "beats v1 on every slice")
    tab.click("#approve")
    tab.get_by_text("v3 is approved; it can be promoted.").wait_for()
    tab.click("#promote")
    tab.get_by_text("v3 is now in production.").wait_for()
    assert Alias.objects.get(project=project, name="production").version == v3
    assert [v.status for v in ModelVersion.objects.filter(project=project).order_by("number")] == [
        "retired",
        "candidate",
        "production",
    ]
    assert ReleaseEvent.objects.filter(project=project, kind="alias", from_value="1", to_value="3").exists()

    # The history page says what was in production when.
    tab.goto(f"{base_url}/projects/tiny-release/models/releases/")
    rows = tab.locator("table.timeline tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).inner_text().startswith("v3") and "now" in rows.nth(0).inner_text()
    assert rows.nth(1).inner_text().startswith("v1")

"""The release pages: the comparison page per role and state, its actions (approve with and without an
override, reject, promote, aliases, send to review), the history with rollback, and the policy form."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from labeling.models import Item
from modeling.models import Alias, Comparison, ModelVersion, ReleaseEvent
from modeling.services.releases import policy_for, release_approve, release_promote
from tests.factories import JobFactory
from tests.modeling.test_releases import release_project
from tests.modeling.test_releases_fixtures import make_version, stored_comparison

__all__ = ["release_project"]

pytestmark = pytest.mark.django_db
SLUG = "acme-sentiment"


def _page(name: str, number: int | None = None) -> str:
    kwargs = {"slug": SLUG} if number is None else {"slug": SLUG, "number": number}
    return reverse(f"modeling:{name}", kwargs=kwargs)


def _production(project, number: int, user) -> ModelVersion:
    version = make_version(project, number)
    stored_comparison(version, 1.0, 1.0)
    release_approve(version=version, user=user)
    return release_promote(version=version, user=user)


def _failing_candidate(project, owner) -> ModelVersion:
    _production(project, 1, owner)
    candidate = make_version(project, 2)
    stored_comparison(candidate, 0.8, 1.0)
    return candidate


def _figures(html: str) -> dict:
    match = re.search(r'<script id="release-figures" type="application/json">(.*?)</script>', html, re.S)
    assert match, "no figure data on the page"
    return json.loads(match.group(1))


def test_the_comparison_page_shows_gates_metrics_statistics_and_figures(release_project, owner, client_for):
    _failing_candidate(release_project, owner)
    response = client_for(owner).get(_page("comparison", 2))
    html = response.content.decode()
    assert response.status_code == 200
    assert '<span class="verdict fail">1 failing</span>' in html
    assert "eval macro-F1 drops 20.0 points vs production (1.000 → 0.800); the limit is 1 (over by 19.0 points)" in html
    assert "Candidate v2" in html and "Production v1" in html
    assert "Exact two-sided p = <strong>0.0078</strong>" in html  # 8 discordant pairs, all one way: 2 / 2^8
    assert "Where they disagree: 8 items" in html and 'id="send-to-review"' in html
    assert html.count('class="regression"') == 8
    figures = _figures(html)
    assert set(figures) == {"confusion_candidate", "confusion_production", "reliability", "per_class", "per_language"}
    assert figures["confusion_candidate"]["data"][0]["text"] == [["16", "4"], ["4", "16"]]
    assert [t["name"] for t in figures["reliability"]["data"]] == [
        "Perfect calibration",
        "Candidate v2",
        "Production v1",
    ]
    assert "Parameters" in html and "2.0 ms" in html


def test_reviewers_read_the_page_without_any_action(release_project, owner, reviewer, client_for):
    _failing_candidate(release_project, owner)
    html = client_for(reviewer).get(_page("comparison", 2)).content.decode()
    assert "over by 19.0 points" in html
    for marker in ('id="approve"', 'id="reject"', 'id="run-comparison"', 'id="send-to-review"', 'id="set-canary"'):
        assert marker not in html
    assert "Model owners and admins approve" in html


def test_only_admins_see_the_override_field_and_only_when_gates_fail(release_project, owner, admin_member, client_for):
    _failing_candidate(release_project, owner)
    assert 'name="override_reason"' not in client_for(owner).get(_page("comparison", 2)).content.decode()
    html = client_for(admin_member).get(_page("comparison", 2)).content.decode()
    assert 'name="override_reason"' in html and "Approve with override" in html
    stored_comparison(make_version(release_project, 3), 1.0, 1.0)
    assert 'name="override_reason"' not in client_for(admin_member).get(_page("comparison", 3)).content.decode()


def test_approving_against_failing_gates_re_renders_with_the_reason_and_keeps_the_comment(
    release_project, owner, client_for
):
    _failing_candidate(release_project, owner)
    response = client_for(owner).post(_page("release-approve", 2), {"comment": "my careful note"})
    html = response.content.decode()
    assert response.status_code == 409
    assert 'id="action-error"' in html and "Approval is blocked by 1 failing gate: max_regression" in html
    assert "my careful note</textarea>" in html
    assert ModelVersion.objects.get(number=2).status == "candidate"


def test_an_admin_override_from_the_page_approves_and_is_recorded(release_project, owner, admin_member, client_for):
    _failing_candidate(release_project, owner)
    response = client_for(admin_member).post(
        _page("release-approve", 2), {"comment": "", "override_reason": "Known label noise in eval"}
    )
    assert response.status_code == 302 and response["Location"] == _page("comparison", 2)
    assert ModelVersion.objects.get(number=2).status == "approved"
    assert ReleaseEvent.objects.get(kind="override").comment == "Known label noise in eval"


def test_approve_then_promote_from_the_page(release_project, owner, client_for):
    stored_comparison(make_version(release_project, 1), 1.0)
    client = client_for(owner)
    assert client.post(_page("release-approve", 1), {"comment": "ok"}).status_code == 302
    html = client.get(_page("comparison", 1)).content.decode()
    assert "v1 is approved; it can be promoted." in html and 'id="promote"' in html
    assert client.post(_page("release-promote", 1), {"comment": ""}).status_code == 302
    assert Alias.objects.get(name="production").version.number == 1
    assert "v1 is now in production." in client.get(_page("comparison", 1)).content.decode()


def test_reject_and_alias_buttons(release_project, owner, client_for):
    make_version(release_project, 1)
    client = client_for(owner)
    assert client.post(_page("release-alias", 1), {"name": "canary", "action": "set"}).status_code == 302
    html = client.get(_page("comparison", 1)).content.decode()
    assert "The canary alias now points at v1." in html and 'id="clear-canary"' in html
    assert 'badge-alias-canary">canary</span>' in html
    response = client.post(_page("release-alias", 1), {"name": "canary", "action": "explode"})
    assert response.status_code == 400 and "Choose to set or clear the alias." in response.content.decode()
    assert client.post(_page("release-reject", 1), {"comment": "no"}).status_code == 302
    assert ModelVersion.objects.get(number=1).status == "rejected" and not Alias.objects.exists()
    response = client.post(_page("release-reject", 1))
    assert (
        response.status_code == 409
        and "only a candidate or approved version can be rejected" in response.content.decode()
    )


def test_send_to_review_from_the_page(release_project, owner, client_for):
    _failing_candidate(release_project, owner)
    response = client_for(owner).post(_page("comparison-send-to-review", 2), follow=True)
    assert "8 items sent to review." in response.content.decode()
    assert Item.objects.filter(status=Item.Status.IN_REVIEW).count() == 8


def test_a_running_comparison_shows_the_job_progress_bar(release_project, owner, client_for):
    version = make_version(release_project, 1)
    job = JobFactory(project=release_project, kind="compare", status="running", progress=0.4, message="scoring v1")
    Comparison.objects.create(project=release_project, candidate=version, job=job, status="running")
    html = client_for(owner).get(_page("comparison", 1)).content.decode()
    assert 'id="comparison-job"' in html and 'aria-valuenow="40"' in html and "scoring v1" in html
    assert f'hx-get="/jobs/{job.pk}/progress/"' in html


def test_a_failed_comparison_says_why(release_project, owner, client_for):
    version = make_version(release_project, 1)
    job = JobFactory(project=release_project, kind="compare", status="failed")
    Comparison.objects.create(
        project=release_project, candidate=version, job=job, status="failed", error="The artifact of v1 failed"
    )
    html = client_for(owner).get(_page("comparison", 1)).content.decode()
    assert "The last comparison failed" in html and "The artifact of v1 failed" in html


def test_a_comparison_whose_job_ended_without_it_is_shown_as_failed(release_project, owner, client_for):
    version = make_version(release_project, 1)
    job = JobFactory(project=release_project, kind="compare", status="failed", error="Worker lost (reaped).")
    Comparison.objects.create(project=release_project, candidate=version, job=job, status="running")
    html = client_for(owner).get(_page("comparison", 1)).content.decode()
    assert 'id="comparison-job"' not in html
    assert "The last comparison failed" in html and "Worker lost (reaped)." in html


def test_the_history_page_lists_production_periods_and_rolls_back(release_project, owner, reviewer, client_for):
    _production(release_project, 1, owner)
    _production(release_project, 2, owner)
    html = client_for(reviewer).get(_page("release-history")).content.decode()
    assert "What was in production when" in html and 'id="rollback"' not in html
    assert html.count("<strong>now</strong>") == 1
    client = client_for(owner)
    assert "Roll back to v1" in client.get(_page("release-history")).content.decode()
    response = client.post(_page("release-rollback"), {"comment": "bad canary numbers"})
    assert response.status_code == 302
    assert Alias.objects.get(name="production").version.number == 1
    html = client.get(_page("release-history")).content.decode()
    assert "Rolled back: v1 is in production again." in html and "rolled back to" in html
    assert "bad canary numbers" in html
    response = client.post(_page("release-rollback"), {"comment": "again"})
    assert response.status_code == 409 and "no earlier production version" in response.content.decode()


def test_the_policy_form_saves_and_shows_field_errors_with_400(release_project, owner, client_for):
    client = client_for(owner)
    assert "Minimum eval macro-F1" in client.get(_page("release-policy")).content.decode()
    form = {
        "min_macro_f1": "0.7",
        "max_regression_points": "2",
        "max_class_regression_points": "",
        "max_language_regression_points": "5",
        "max_ece": "",
        "min_slice_items": "30",
        "required_approvals": "2",
        "two_person_rule": "on",
        "canary_percent": "10",
        "max_texts_per_request": "64",
        "max_text_chars": "20000",
        "rate_limit_per_minute": "600",
    }
    response = client.post(_page("release-policy"), form)
    assert response.status_code == 302
    policy = policy_for(project=release_project)
    assert (policy.min_macro_f1, policy.max_class_regression_points, policy.required_approvals) == (0.7, None, 2)
    assert (policy.two_person_rule, policy.shadow_enabled, policy.canary_percent) == (True, False, 10.0)
    response = client.post(_page("release-policy"), {**form, "canary_percent": "120", "required_approvals": "0"})
    html = response.content.decode()
    assert response.status_code == 400 and html.count('class="error-message small"') == 2
    assert policy_for(project=release_project).canary_percent == 10.0


def test_the_version_pages_link_to_the_release_flow(release_project, owner, client_for):
    _production(release_project, 1, owner)
    make_version(release_project, 2)
    client = client_for(owner)
    from modeling.services.releases import alias_set

    alias_set(project=release_project, user=owner, name="shadow", version=ModelVersion.objects.get(number=2))
    html = client.get(reverse("modeling:version-list", kwargs={"slug": SLUG})).content.decode()
    assert _page("release-history") in html and _page("release-policy") in html
    assert _page("comparison", 2) in html and "badge-alias-shadow" in html
    html = client.get(reverse("modeling:version-detail", kwargs={"slug": SLUG, "number": 2})).content.decode()
    assert 'id="release-link"' in html and _page("comparison", 2) in html

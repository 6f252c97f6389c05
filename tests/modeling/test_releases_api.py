"""The release API: every endpoint's success and every error status it answers, in the error format.

Anonymous (401) and outsider (404, identical to a missing project) answers are in the permission matrix
(tests/permission_rows/releases.py); here an outsider is checked once per kind of endpoint as well.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import Item
from modeling.models import Alias, Approval, Comparison, ModelVersion, ReleaseEvent
from modeling.services.releases import policy_for, release_approve, release_promote
from tests.modeling.test_releases import release_project, second_owner
from tests.modeling.test_releases_fixtures import make_version, stored_comparison
from webapp.models import Job

__all__ = ["release_project", "second_owner"]

pytestmark = pytest.mark.django_db
SLUG = "acme-sentiment"


def _url(route: str, number: int | None = None, **extra) -> str:
    kwargs = {"slug": SLUG, **extra}
    if number is not None:
        kwargs["number"] = number
    return reverse(route, kwargs=kwargs)


def _error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def _production(project, number: int, user) -> ModelVersion:
    version = make_version(project, number)
    stored_comparison(version, 1.0, 1.0)
    release_approve(version=version, user=user)
    return release_promote(version=version, user=user)


# --- policy ---------------------------------------------------------------------------------------


def test_members_read_the_policy_and_owners_change_it(release_project, reviewer, owner, api_client_for):
    body = api_client_for(reviewer).get(_url("api-release-policy")).json()
    assert body["required_approvals"] == 1 and body["max_regression_points"] == 1.0 and body["min_macro_f1"] is None
    response = api_client_for(owner).patch(
        _url("api-release-policy"), {"min_macro_f1": 0.75, "two_person_rule": True, "canary_percent": 5}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["min_macro_f1"], response.json()["updated_by"]) == (0.75, "owner")
    policy = policy_for(project=release_project)
    assert (policy.min_macro_f1, policy.two_person_rule, policy.canary_percent) == (0.75, True, 5.0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"required_approvals": 0}, "required_approvals"),
        ({"max_ece": 1.5}, "max_ece"),
        ({"canary_percent": -1}, "canary_percent"),
        ({"min_macro_f1": "high"}, "min_macro_f1"),
        ({"max_ece": "NaN"}, "max_ece"),
        ({"shadow_enabled": "maybe"}, "shadow_enabled"),
        ({"colour": "red"}, "colour"),
        ({"max_texts_per_request": 0}, "max_texts_per_request"),
    ],
)
def test_a_bad_policy_change_is_a_400_naming_the_field_and_changes_nothing(
    release_project, owner, api_client_for, body, field
):
    response = api_client_for(owner).patch(
        _url("api-release-policy"), {**body, "max_regression_points": 3}, format="json"
    )
    error = _error(response, 400, "validation_error")
    assert field in error["details"]
    assert policy_for(project=release_project).max_regression_points == 1.0


def test_reviewers_cannot_change_the_policy(release_project, reviewer, api_client_for):
    _error(api_client_for(reviewer).patch(_url("api-release-policy"), {"max_ece": 0.1}, format="json"), 403)


# --- comparisons ----------------------------------------------------------------------------------


def test_starting_a_comparison_answers_202_with_its_job(release_project, owner, api_client_for):
    make_version(release_project, 1)
    response = api_client_for(owner).post(_url("api-comparison-start", 1))
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["candidate"], body["production"]) == ("queued", 1, None)
    assert body["job"]["kind"] == "compare" and body["job"]["status"] == "queued"
    assert Job.objects.get(pk=body["job"]["id"]).params == {"comparison_id": body["id"]}


def test_comparison_start_errors(release_project, owner, reviewer, outsider, api_client_for):
    make_version(release_project, 1, status=ModelVersion.Status.FAILED)
    _error(api_client_for(owner).post(_url("api-comparison-start", 1)), 409, "not_comparable")
    _error(api_client_for(owner).post(_url("api-comparison-start", 7)), 404, "not_found")
    _error(api_client_for(reviewer).post(_url("api-comparison-start", 1)), 403)
    _error(api_client_for(outsider).post(_url("api-comparison-start", 1)), 404)
    assert not Comparison.objects.exists()


def test_the_release_state_shows_the_comparison_gates_and_approvals(release_project, owner, reviewer, api_client_for):
    _production(release_project, 1, owner)
    candidate = make_version(release_project, 2)
    empty = api_client_for(reviewer).get(_url("api-comparison", 2)).json()
    assert (empty["comparison"], empty["gates"], empty["production"], empty["stale"]) == (None, None, 1, False)
    stored_comparison(candidate, 0.8, 1.0)
    body = api_client_for(reviewer).get(_url("api-comparison", 2)).json()
    assert body["comparison"]["status"] == "succeeded" and body["comparison"]["production"] == 1
    results = body["comparison"]["results"]
    assert results["mcnemar"]["production_only"] == 8 and results["disagreements"]["total"] == 8
    assert body["gates_failed"] == 1 and body["required_approvals"] == 1 and body["approvals"] == []
    failing = [g for g in body["gates"] if not g["passed"] and g["blocking"]]
    assert failing[0]["gate"] == "max_regression" and "over by 19.0 points" in failing[0]["message"]
    _error(api_client_for(reviewer).get(_url("api-comparison", 9)), 404)


def test_sending_disagreements_to_review(release_project, owner, reviewer, api_client_for):
    _production(release_project, 1, owner)
    make_version(release_project, 2)
    _error(api_client_for(owner).post(_url("api-comparison-send-to-review", 2)), 409, "nothing_to_send")
    stored_comparison(ModelVersion.objects.get(number=2), 0.9, 1.0)
    _error(api_client_for(reviewer).post(_url("api-comparison-send-to-review", 2)), 403)
    response = api_client_for(owner).post(_url("api-comparison-send-to-review", 2))
    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["sent"]) == 4 and body["message"] == "4 items sent to review."
    assert Item.objects.filter(pk__in=body["sent"], status=Item.Status.IN_REVIEW).count() == 4


# --- approve, reject, promote, rollback -----------------------------------------------------------


def test_approve_answers_with_the_count_and_the_status(release_project, owner, api_client_for):
    stored_comparison(make_version(release_project, 1), 1.0)
    response = api_client_for(owner).post(_url("api-release-approve", 1), {"comment": "good"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "version": 1,
        "status": "approved",
        "approvals": 1,
        "required_approvals": 1,
        "approved": True,
        "overridden": [],
    }


def test_a_failing_gate_is_a_409_with_the_gate_and_the_margin(release_project, owner, admin_member, api_client_for):
    _production(release_project, 1, owner)
    stored_comparison(make_version(release_project, 2), 0.8, 1.0)
    error = _error(api_client_for(owner).post(_url("api-release-approve", 2), {}, format="json"), 409, "gates_failed")
    assert "max_regression: eval macro-F1 drops 20.0 points" in error["message"]
    assert error["details"]["failed"][0]["threshold"] == 1.0
    denied = _error(
        api_client_for(owner).post(_url("api-release-approve", 2), {"override_reason": "please"}, format="json"), 403
    )
    assert denied["code"] == "override_needs_admin"
    response = api_client_for(admin_member).post(
        _url("api-release-approve", 2), {"override_reason": "known eval noise"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert [g["gate"] for g in response.json()["overridden"]] == ["max_regression"]
    assert ReleaseEvent.objects.filter(kind="override", comment="known eval noise").count() == 1


def test_approve_errors(release_project, owner, reviewer, api_client_for):
    make_version(release_project, 1, created_by=owner)
    client = api_client_for(owner)
    _error(client.post(_url("api-release-approve", 1), {}, format="json"), 409, "comparison_required")
    stored_comparison(ModelVersion.objects.get(number=1), 1.0)
    policy = policy_for(project=release_project)
    policy.two_person_rule = True
    policy.save()
    _error(client.post(_url("api-release-approve", 1), {}, format="json"), 403, "two_person_rule")
    _error(client.post(_url("api-release-approve", 1), {"comment": ["a"]}, format="json"), 400, "validation_error")
    _error(client.post(_url("api-release-approve", 1), {"comment": "x" * 5001}, format="json"), 400)
    _error(client.post(_url("api-release-approve", 1), {"commment": "typo"}, format="json"), 400)
    _error(api_client_for(reviewer).post(_url("api-release-approve", 1), {}, format="json"), 403, "permission_denied")
    _error(client.post(_url("api-release-approve", 5), {}, format="json"), 404)
    assert not Approval.objects.exists()


def test_reject_promote_and_rollback(release_project, owner, api_client_for):
    client = api_client_for(owner)
    _production(release_project, 1, owner)
    v2 = make_version(release_project, 2)
    _error(client.post(_url("api-release-promote", 2), {}, format="json"), 409, "not_approved")
    stored_comparison(v2, 1.0, 1.0)
    release_approve(version=v2, user=owner)
    response = client.post(_url("api-release-promote", 2), {"comment": "go"}, format="json")
    assert (response.status_code, response.json()) == (200, {"version": 2, "status": "production"})
    response = client.post(_url("api-release-rollback"), {"comment": "revert"}, format="json")
    assert (response.status_code, response.json()) == (200, {"version": 1, "status": "production"})
    _error(client.post(_url("api-release-rollback"), {}, format="json"), 409, "nothing_to_roll_back")
    make_version(release_project, 3)
    response = client.post(_url("api-release-reject", 3), {"comment": "worse"}, format="json")
    assert (response.status_code, response.json()) == (200, {"version": 3, "status": "rejected"})
    _error(client.post(_url("api-release-reject", 3), {}, format="json"), 409, "not_rejectable")
    _error(client.post(_url("api-release-reject", 8), {}, format="json"), 404)


# --- aliases --------------------------------------------------------------------------------------


def test_put_and_delete_the_canary_alias(release_project, owner, api_client_for):
    make_version(release_project, 1)
    client = api_client_for(owner)
    response = client.put(_url("api-alias", name="canary"), {"version": 1, "comment": "10%"}, format="json")
    assert (response.status_code, response.json()) == (200, {"name": "canary", "version": 1})
    assert Alias.objects.get(project=release_project, name="canary").version.number == 1
    response = client.delete(_url("api-alias", name="canary"))
    assert response.status_code == 204 and not Alias.objects.exists()
    assert client.delete(_url("api-alias", name="canary")).status_code == 204  # already gone: no change
    assert ReleaseEvent.objects.filter(kind="alias").count() == 2


def test_alias_errors(release_project, owner, reviewer, api_client_for):
    make_version(release_project, 1)
    make_version(release_project, 2, status=ModelVersion.Status.REJECTED)
    client = api_client_for(owner)
    _error(client.put(_url("api-alias", name="production"), {"version": 1}, format="json"), 400, "bad_alias")
    _error(client.put(_url("api-alias", name="beta"), {"version": 1}, format="json"), 400, "bad_alias")
    _error(client.delete(_url("api-alias", name="production")), 400, "bad_alias")
    _error(client.put(_url("api-alias", name="shadow"), {}, format="json"), 400, "validation_error")
    _error(client.put(_url("api-alias", name="shadow"), {"version": 0}, format="json"), 400)
    _error(client.put(_url("api-alias", name="shadow"), {"version": 99}, format="json"), 404)
    _error(client.put(_url("api-alias", name="shadow"), {"version": 2}, format="json"), 409, "not_aliasable")
    _error(api_client_for(reviewer).put(_url("api-alias", name="shadow"), {"version": 1}, format="json"), 403)
    _error(api_client_for(reviewer).delete(_url("api-alias", name="shadow")), 403)
    assert not Alias.objects.exists() and not ReleaseEvent.objects.exists()


# --- history --------------------------------------------------------------------------------------


def test_history_lists_production_periods_and_every_event(release_project, owner, reviewer, api_client_for):
    _production(release_project, 1, owner)
    _production(release_project, 2, owner)
    body = api_client_for(reviewer).get(_url("api-release-history")).json()
    assert (body["production"], body["aliases"], body["rollback_to"]) == (2, {"production": 2}, 1)
    assert [(p["version"], p["action"], p["actor"], p["ended_at"] is None) for p in body["timeline"]] == [
        (2, "promote", "owner", True),
        (1, "promote", "owner", False),
    ]
    assert body["timeline"][1]["ended_at"] == body["timeline"][0]["started_at"]
    kinds = [(e["kind"], e["version"], e["from_value"], e["to_value"]) for e in body["events"]]
    assert kinds[0] == ("alias", 2, "1", "2") and len(kinds) == ReleaseEvent.objects.count() == 9
    page = api_client_for(reviewer).get(_url("api-release-history"), {"limit": 4}).json()
    assert len(page["events"]) == 4 and page["next_before"] == page["events"][-1]["id"]
    rest = api_client_for(reviewer).get(_url("api-release-history"), {"before": page["next_before"]}).json()
    assert [e["id"] for e in page["events"] + rest["events"]] == [e["id"] for e in body["events"]]
    assert rest["next_before"] is None


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "abc"}, {"limit": "5000"}, {"before": "-1"}])
def test_history_refuses_bad_paging(release_project, reviewer, api_client_for, query):
    _error(api_client_for(reviewer).get(_url("api-release-history"), query), 400, "validation_error")

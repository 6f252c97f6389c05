"""The release services: gates blocking approval, overrides, the two-person rule, required approvals,
promotion and rollback, canary/shadow aliases, rejection, the policy, and the audit record of each move.

Comparisons here are computed by the real statistics (``comparison_results``) from chosen predictions
on 40 gold eval items, so every gate verdict is the real one; the comparison job itself is covered by
``test_comparison.py``.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from labeling.models import Item, ProjectCounts, Role
from labeling.services.counts import project_recount
from labeling.services.review import review_resolve
from modeling.models import Alias, Approval, ModelVersion, ReleaseEvent, ReleasePolicy
from modeling.services.releases import (
    GatesFailed,
    alias_clear,
    alias_set,
    disagreements_send_to_review,
    policy_for,
    release_approve,
    release_history,
    release_policy_update,
    release_promote,
    release_reject,
    release_rollback,
)
from tests.factories import MembershipFactory, UserFactory
from tests.modeling.conftest import LABELS
from tests.modeling.test_releases_fixtures import eval_items, make_version, stored_comparison
from webapp.errors import Conflict, Forbidden, NotFound, ValidationFailed

pytestmark = pytest.mark.django_db
Status = ModelVersion.Status


@pytest.fixture
def release_project(project):
    """The conftest project with LABELS and 40 gold eval items (20 per label; 27 en, 13 es)."""
    project.labels.all().delete()
    for i, name in enumerate(LABELS):
        project.labels.create(name=name, order=i)
    eval_items(project)
    return project


@pytest.fixture
def second_owner(project):
    user = UserFactory(username="owner2")
    MembershipFactory(project=project, user=user, role=Role.OWNER)
    return user


def _events(project) -> list[tuple]:
    rows = ReleaseEvent.objects.filter(project=project).order_by("id")
    return [
        (e.kind, e.subject, e.version.number if e.version else None, e.from_value, e.to_value, e.actor.username)
        for e in rows
    ]


def _to_production(version: ModelVersion, user, correct: float = 1.0) -> ModelVersion:
    """Compare, approve and promote ``version`` through the services."""
    stored_comparison(version, correct, 1.0)
    release_approve(version=version, user=user)
    return release_promote(version=version, user=user)


def _state(version: ModelVersion) -> str:
    version.refresh_from_db()
    return version.status


# --- approval and gates ---------------------------------------------------------------------------


def test_approval_needs_a_finished_comparison(release_project, owner):
    candidate = make_version(release_project, 1)
    with pytest.raises(Conflict) as caught:
        release_approve(version=candidate, user=owner)
    assert caught.value.code == "comparison_required" and "run one before approving" in caught.value.message
    assert not Approval.objects.exists() and not ReleaseEvent.objects.exists()


def test_a_failing_gate_blocks_approval_saying_which_gate_and_by_how_much(release_project, owner):
    _to_production(make_version(release_project, 1), owner)
    candidate = make_version(release_project, 2)
    # Right on the first 32 of 40 items: per class precision = recall = 0.8, so macro-F1 is exactly 0.800.
    stored_comparison(candidate, 0.8, 1.0)
    events_before = ReleaseEvent.objects.count()
    with pytest.raises(GatesFailed) as caught:
        release_approve(version=candidate, user=owner, comment="ship it")
    error = caught.value
    assert (error.code, error.status_code) == ("gates_failed", 409)
    assert error.message.startswith("Approval is blocked by 1 failing gate: max_regression: eval macro-F1 drops 20.0")
    assert "(1.000 → 0.800); the limit is 1 (over by 19.0 points)" in error.message
    assert [g["gate"] for g in error.details["failed"]] == ["max_regression"]
    assert error.details["failed"][0]["observed"] == pytest.approx(-20.0)
    # Per-class (n=20) and per-language slices are under the 30-item minimum: reported, not blocking.
    small = [g for g in error.details["gates"] if not g["blocking"]]
    assert {g["gate"] for g in small} == {"max_class_regression", "max_language_regression"}
    assert all("not blocking" in g["message"] for g in small)
    assert _state(candidate) == Status.CANDIDATE
    assert not Approval.objects.filter(version=candidate).exists() and ReleaseEvent.objects.count() == events_before


def test_an_absolute_gate_blocks_without_production(release_project, owner):
    policy = policy_for(project=release_project)
    policy.min_macro_f1 = 0.9
    policy.save()
    candidate = make_version(release_project, 1)
    stored_comparison(candidate, 0.8)
    with pytest.raises(
        GatesFailed, match=r"min_macro_f1: eval macro-F1 0\.800 is below the minimum 0\.900 \(short by 10\.0"
    ):
        release_approve(version=candidate, user=owner)


def test_gates_are_evaluated_under_the_policy_as_it_is_at_approval(release_project, owner):
    _to_production(make_version(release_project, 1), owner)
    candidate = make_version(release_project, 2)
    stored_comparison(candidate, 0.8, 1.0)
    release_policy_update(project=release_project, user=owner, changes={"max_regression_points": 25.0})
    outcome = release_approve(version=candidate, user=owner)
    assert outcome.approved and outcome.overridden == []


def test_an_admin_override_with_a_written_reason_is_recorded(release_project, owner, admin_member):
    _to_production(make_version(release_project, 1), owner)
    candidate = make_version(release_project, 2)
    comparison = stored_comparison(candidate, 0.8, 1.0)
    outcome = release_approve(
        version=candidate, user=admin_member, comment="hotfix", override_reason="Eval split is stale; see #42."
    )
    assert outcome.approved and [g.gate for g in outcome.overridden] == ["max_regression"]
    approval = Approval.objects.get(version=candidate)
    assert (approval.user, approval.override_reason) == (admin_member, "Eval split is stale; see #42.")
    override = ReleaseEvent.objects.get(version=candidate, kind=ReleaseEvent.Kind.OVERRIDE)
    assert (override.actor, override.comment) == (admin_member, "Eval split is stale; see #42.")
    assert override.details["comparison"] == comparison.pk
    assert [g["gate"] for g in override.details["failed"]] == ["max_regression"]
    assert "over by 19.0 points" in override.details["failed"][0]["message"]
    assert _events(release_project)[-3:] == [
        ("approval", "", 2, "", "", "projadmin"),
        ("override", "", 2, "", "", "projadmin"),
        ("status", "", 2, "candidate", "approved", "projadmin"),
    ]


def test_an_owner_cannot_override_failing_gates(release_project, owner):
    _to_production(make_version(release_project, 1), owner)
    candidate = make_version(release_project, 2)
    stored_comparison(candidate, 0.8, 1.0)
    with pytest.raises(Forbidden) as caught:
        release_approve(version=candidate, user=owner, override_reason="trust me")
    assert caught.value.code == "override_needs_admin"
    assert _state(candidate) == Status.CANDIDATE and not Approval.objects.filter(version=candidate).exists()


def test_the_two_person_rule_stops_the_trainer_but_not_a_colleague(release_project, owner, second_owner):
    release_policy_update(project=release_project, user=owner, changes={"two_person_rule": True})
    candidate = make_version(release_project, 1, created_by=owner)
    stored_comparison(candidate, 1.0)
    with pytest.raises(Forbidden) as caught:
        release_approve(version=candidate, user=owner)
    assert caught.value.code == "two_person_rule" and "you trained v1" in caught.value.message
    assert _state(candidate) == Status.CANDIDATE and not Approval.objects.exists()
    assert release_approve(version=candidate, user=second_owner).approved


def test_without_the_two_person_rule_the_trainer_may_approve(release_project, owner):
    candidate = make_version(release_project, 1, created_by=owner)
    stored_comparison(candidate, 1.0)
    assert release_approve(version=candidate, user=owner).approved


def test_required_approvals_are_counted_once_per_person(release_project, owner, second_owner):
    release_policy_update(project=release_project, user=owner, changes={"required_approvals": 2})
    candidate = make_version(release_project, 1)
    stored_comparison(candidate, 1.0)
    first = release_approve(version=candidate, user=owner, comment="fine by me")
    assert (first.approvals, first.required, first.approved) == (1, 2, False)
    assert _state(candidate) == Status.CANDIDATE
    with pytest.raises(Conflict, match="You already approved v1"):
        release_approve(version=candidate, user=owner)
    with pytest.raises(Conflict, match=r"it needs 1 more approval\)"):
        release_promote(version=candidate, user=owner)
    second = release_approve(version=candidate, user=second_owner)
    assert (second.approvals, second.approved) == (2, True)
    assert [e[:2] + e[3:] for e in _events(release_project)] == [
        ("approval", "", "", "", "owner"),
        ("approval", "", "", "", "owner2"),
        ("status", "", "candidate", "approved", "owner2"),
    ]
    with pytest.raises(Conflict, match="already approved"):
        release_approve(version=candidate, user=owner)


def test_a_comparison_against_an_older_production_is_stale(release_project, owner):
    candidate = make_version(release_project, 2)
    stored_comparison(candidate, 1.0)  # no production yet
    _to_production(make_version(release_project, 1), owner)
    with pytest.raises(Conflict) as caught:
        release_approve(version=candidate, user=owner)
    assert caught.value.code == "comparison_stale"
    assert "made against no production version, but production is now v1" in caught.value.message


@pytest.mark.parametrize("status", [Status.QUEUED, Status.FAILED, Status.REJECTED, Status.RETIRED])
def test_only_candidates_can_be_approved(release_project, owner, status):
    version = make_version(release_project, 1, status=status)
    with pytest.raises(Conflict, match=f"v1 is {status}; only a candidate can be approved"):
        release_approve(version=version, user=owner)


def test_reviewers_get_403_and_outsiders_404_from_every_action(release_project, reviewer, outsider, owner):
    version = make_version(release_project, 1)
    stored_comparison(version, 1.0)
    actions = [
        lambda user: release_approve(version=version, user=user),
        lambda user: release_reject(version=version, user=user),
        lambda user: release_promote(version=version, user=user),
        lambda user: release_rollback(project=release_project, user=user),
        lambda user: alias_set(project=release_project, user=user, name="canary", version=version),
        lambda user: alias_clear(project=release_project, user=user, name="canary"),
        lambda user: release_policy_update(project=release_project, user=user, changes={"max_ece": 0.1}),
        lambda user: disagreements_send_to_review(version=version, user=user),
    ]
    for action in actions:
        with pytest.raises(Forbidden):
            action(reviewer)
        with pytest.raises(NotFound):
            action(outsider)
    assert _state(version) == Status.CANDIDATE and not ReleaseEvent.objects.exists() and not Alias.objects.exists()


def test_comments_must_be_text_of_reasonable_length(release_project, owner):
    version = make_version(release_project, 1)
    stored_comparison(version, 1.0)
    with pytest.raises(ValidationFailed, match="comment is at most 5000 characters"):
        release_approve(version=version, user=owner, comment="x" * 5001)
    with pytest.raises(ValidationFailed, match="override_reason must be text"):
        release_approve(version=version, user=owner, override_reason=["why"])  # type: ignore[arg-type]
    assert not Approval.objects.exists()


# --- promotion, rollback and the audit trail ------------------------------------------------------


def test_promotion_moves_production_and_retires_the_previous_version_with_one_event_per_move(release_project, owner):
    v1 = _to_production(make_version(release_project, 1), owner)
    v2 = make_version(release_project, 2)
    stored_comparison(v2, 1.0, 1.0)
    release_approve(version=v2, user=owner, comment="same scores, smaller")
    release_promote(version=v2, user=owner, comment="release 2")
    assert (_state(v1), _state(v2)) == (Status.RETIRED, Status.PRODUCTION)
    assert Alias.objects.get(project=release_project, name="production").version == v2
    assert _events(release_project) == [
        ("approval", "", 1, "", "", "owner"),
        ("status", "", 1, "candidate", "approved", "owner"),
        ("status", "", 1, "approved", "production", "owner"),
        ("alias", "production", 1, "", "1", "owner"),
        ("approval", "", 2, "", "", "owner"),
        ("status", "", 2, "candidate", "approved", "owner"),
        ("status", "", 1, "production", "retired", "owner"),
        ("status", "", 2, "approved", "production", "owner"),
        ("alias", "production", 2, "1", "2", "owner"),
    ]
    move = ReleaseEvent.objects.filter(kind="alias").order_by("id").last()
    assert (move.comment, move.details) == ("release 2", {"action": "promote"})


def test_only_an_approved_version_can_be_promoted(release_project, owner):
    candidate = make_version(release_project, 1)
    with pytest.raises(Conflict) as caught:
        release_promote(version=candidate, user=owner)
    assert caught.value.code == "not_approved" and "needs 1 more approval" in caught.value.message
    production = _to_production(make_version(release_project, 2), owner)
    with pytest.raises(Conflict, match="already in production"):
        release_promote(version=production, user=owner)
    assert not Alias.objects.filter(version=candidate).exists()


def test_rollback_moves_production_back_one_release_at_a_time(release_project, owner, admin_member):
    v1 = _to_production(make_version(release_project, 1), owner)
    v2 = _to_production(make_version(release_project, 2), owner)
    v3 = _to_production(make_version(release_project, 3), owner)
    history = release_history(project=release_project)
    assert history.rollback_to == 2
    target = release_rollback(project=release_project, user=admin_member, comment="v3 misroutes refunds")
    assert target == v2 and (_state(v2), _state(v3)) == (Status.PRODUCTION, Status.RETIRED)
    assert Alias.objects.get(project=release_project, name="production").version == v2
    assert _events(release_project)[-3:] == [
        ("status", "", 3, "production", "retired", "projadmin"),
        ("status", "", 2, "retired", "production", "projadmin"),
        ("alias", "production", 2, "3", "2", "projadmin"),
    ]
    move = ReleaseEvent.objects.filter(kind="alias").order_by("id").last()
    assert (move.comment, move.details) == ("v3 misroutes refunds", {"action": "rollback"})
    # A second rollback goes further back, never back and forth between the last two.
    assert release_rollback(project=release_project, user=owner) == v1
    assert (_state(v1), _state(v2)) == (Status.PRODUCTION, Status.RETIRED)
    with pytest.raises(Conflict) as caught:
        release_rollback(project=release_project, user=owner)
    assert caught.value.code == "nothing_to_roll_back"
    periods = [(p.version, p.action, p.ended_at is None) for p in release_history(project=release_project).timeline]
    assert periods == [(1, "rollback", True), (2, "rollback", False), (3, "promote", False), (2, "promote", False),
                       (1, "promote", False)]  # fmt: skip


def test_rollback_without_an_earlier_production_version_changes_nothing(release_project, owner):
    with pytest.raises(Conflict, match="no earlier production version"):
        release_rollback(project=release_project, user=owner)
    only = _to_production(make_version(release_project, 1), owner)
    events = ReleaseEvent.objects.count()
    with pytest.raises(Conflict):
        release_rollback(project=release_project, user=owner)
    assert _state(only) == Status.PRODUCTION and ReleaseEvent.objects.count() == events


def test_promote_after_a_rollback_is_rolled_back_to_the_version_it_replaced(release_project, owner):
    _to_production(make_version(release_project, 1), owner)
    _to_production(make_version(release_project, 2), owner)
    release_rollback(project=release_project, user=owner)  # back to v1
    _to_production(make_version(release_project, 3), owner)
    assert release_rollback(project=release_project, user=owner).number == 1


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_promotions_move_the_alias_one_after_the_other(release_project, owner, second_owner):
    v1, v2 = make_version(release_project, 1), make_version(release_project, 2)
    for version in (v1, v2):
        ModelVersion.objects.filter(pk=version.pk).update(status=Status.APPROVED)
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def promote(version: ModelVersion, user) -> None:
        barrier.wait()
        try:
            release_promote(version=version, user=user)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=promote, args=args) for args in ((v1, owner), (v2, second_owner))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    moves = list(ReleaseEvent.objects.filter(kind="alias", subject="production").order_by("id"))
    # The second move starts from where the first left the alias: no lost update, no two productions.
    assert [m.from_value for m in moves] == ["", moves[0].to_value]
    winner = int(moves[1].to_value)
    assert Alias.objects.get(project=release_project, name="production").version.number == winner
    assert sorted(ModelVersion.objects.values_list("status", flat=True)) == ["production", "retired"]


# --- canary and shadow aliases, rejection ---------------------------------------------------------


@pytest.mark.parametrize("name", ["canary", "shadow"])
def test_canary_and_shadow_aliases_are_set_moved_and_cleared_with_a_record_each(release_project, owner, name):
    v2, v3 = make_version(release_project, 2), make_version(release_project, 3, status=Status.APPROVED)
    alias_set(project=release_project, user=owner, name=name, version=v2, comment="5% first")
    alias_set(project=release_project, user=owner, name=name, version=v2)  # unchanged: no event
    alias_set(project=release_project, user=owner, name=name, version=v3)
    assert Alias.objects.get(project=release_project, name=name).version == v3
    assert alias_clear(project=release_project, user=owner, name=name) is True
    assert alias_clear(project=release_project, user=owner, name=name) is False  # nothing to clear: no event
    assert not Alias.objects.filter(project=release_project).exists()
    assert _events(release_project) == [
        ("alias", name, 2, "", "2", "owner"),
        ("alias", name, 3, "2", "3", "owner"),
        ("alias", name, 3, "3", "", "owner"),
    ]
    assert ReleaseEvent.objects.order_by("id").first().comment == "5% first"


@pytest.mark.parametrize("status", [Status.QUEUED, Status.FAILED, Status.REJECTED, Status.RETIRED, Status.PRODUCTION])
def test_only_candidates_and_approved_versions_take_canary_or_shadow(release_project, owner, status):
    version = make_version(release_project, 1, status=status)
    with pytest.raises(Conflict, match="only a candidate or approved version can be the canary"):
        alias_set(project=release_project, user=owner, name="canary", version=version)
    assert not Alias.objects.exists() and not ReleaseEvent.objects.exists()


@pytest.mark.parametrize(("name", "message"), [("production", "only by promoting"), ("beta", "Unknown alias 'beta'")])
def test_production_and_unknown_aliases_cannot_be_set_directly(release_project, owner, name, message):
    with pytest.raises(ValidationFailed, match=message):
        alias_set(project=release_project, user=owner, name=name, version=make_version(release_project, 1))
    with pytest.raises(ValidationFailed, match=message):
        alias_clear(project=release_project, user=owner, name=name)


def test_promoting_the_canary_removes_its_canary_alias(release_project, owner):
    version = make_version(release_project, 1)
    alias_set(project=release_project, user=owner, name="canary", version=version)
    _to_production(version, owner)
    assert list(Alias.objects.values_list("name", flat=True)) == ["production"]
    assert ("alias", "canary", 1, "1", "", "owner") in _events(release_project)


def test_rejection_is_recorded_and_drops_the_version_from_canary(release_project, owner):
    version = make_version(release_project, 1)
    alias_set(project=release_project, user=owner, name="shadow", version=version)
    release_reject(version=version, user=owner, comment="overfits the eval split")
    assert _state(version) == Status.REJECTED and not Alias.objects.exists()
    assert _events(release_project)[-2:] == [
        ("alias", "shadow", 1, "1", "", "owner"),
        ("status", "", 1, "candidate", "rejected", "owner"),
    ]
    assert ReleaseEvent.objects.order_by("id").last().comment == "overfits the eval split"
    with pytest.raises(Conflict, match="only a candidate or approved version can be rejected"):
        release_reject(version=version, user=owner)


def test_a_production_version_is_rolled_back_not_rejected(release_project, owner):
    production = _to_production(make_version(release_project, 1), owner)
    with pytest.raises(Conflict, match="Roll back instead"):
        release_reject(version=production, user=owner)


def test_the_history_pages_through_events_newest_first_without_overlap(release_project, owner):
    _to_production(make_version(release_project, 1), owner)
    history = release_history(project=release_project, limit=2)
    assert len(history.events) == 2 and history.has_more and history.next_before is not None
    older = release_history(project=release_project, limit=2, before=history.next_before)
    assert {e.pk for e in older.events}.isdisjoint({e.pk for e in history.events})
    assert [p.version for p in history.timeline] == [1] and history.aliases["production"].number == 1


# --- the policy -----------------------------------------------------------------------------------


def test_the_policy_changes_all_or_nothing_naming_each_bad_field(release_project, owner):
    with pytest.raises(ValidationFailed) as caught:
        release_policy_update(
            project=release_project,
            user=owner,
            changes={"max_ece": 0.1, "required_approvals": 9, "canary_percent": 150.0, "min_macro_f1": -0.5},
        )
    assert set(caught.value.details) == {"required_approvals", "canary_percent", "min_macro_f1"}
    assert "required_approvals" in caught.value.message
    policy = policy_for(project=release_project)
    assert (policy.max_ece, policy.required_approvals) == (None, 1)
    with pytest.raises(ValidationFailed, match="Unknown release policy fields: colour"):
        release_policy_update(project=release_project, user=owner, changes={"colour": "red"})
    updated = release_policy_update(
        project=release_project, user=owner, changes={"max_ece": 0.1, "min_macro_f1": None, "canary_percent": 10.0}
    )
    stored = ReleasePolicy.objects.get(pk=release_project.pk)
    assert (
        (stored.max_ece, stored.canary_percent, stored.updated_by)
        == (0.1, 10.0, owner)
        == (
            updated.max_ece,
            updated.canary_percent,
            updated.updated_by,
        )
    )


# --- disagreements to review ----------------------------------------------------------------------


def test_disagreements_go_to_review_keeping_their_gold_until_an_owner_decides(release_project, owner):
    _to_production(make_version(release_project, 1), owner)
    candidate = make_version(release_project, 2)
    comparison = stored_comparison(candidate, 0.9, 1.0)
    listed = [d["item_id"] for d in comparison.results["disagreements"]["items"]]
    assert len(listed) == 4
    project_recount(project=release_project)
    gold_before = dict(Item.objects.filter(pk__in=listed).values_list("pk", "gold_label"))
    batch = disagreements_send_to_review(version=candidate, user=owner)
    assert batch.sent == listed and batch.message == "4 items sent to review."
    items = Item.objects.filter(pk__in=listed)
    assert {item.status for item in items} == {Item.Status.IN_REVIEW}
    assert dict(items.values_list("pk", "gold_label")) == gold_before  # the eval split stays as it was
    counts = ProjectCounts.objects.get(pk=release_project.pk)
    assert (counts.in_review, counts.gold) == (4, 36)
    again = disagreements_send_to_review(version=candidate, user=owner)
    assert (again.sent, again.already_in_review) == ([], listed)
    assert again.message == "0 items sent to review, 4 already in review."
    # The labeling review page decides: the owner's label becomes the gold label.
    other = release_project.labels.exclude(pk=gold_before[listed[0]]).get()
    review_resolve(project=release_project, user=owner, item_id=listed[0], label=other.name)
    decided = Item.objects.get(pk=listed[0])
    assert (decided.status, decided.gold_label, decided.gold_source) == (Item.Status.GOLD, other, "adjudication")
    incremental = ProjectCounts.objects.get(pk=release_project.pk)
    recounted = project_recount(project=release_project)
    assert (incremental.in_review, incremental.gold) == (recounted.in_review, recounted.gold) == (3, 37)


def test_there_is_nothing_to_send_without_a_comparison_against_production(release_project, owner):
    candidate = make_version(release_project, 1)
    stored_comparison(candidate, 0.5)
    with pytest.raises(Conflict) as caught:
        disagreements_send_to_review(version=candidate, user=owner)
    assert caught.value.code == "nothing_to_send"
    assert not Item.objects.filter(status=Item.Status.IN_REVIEW).exists()

"""The queue API: next item, submit, skip, heartbeat, and their error answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Annotation, Item, Lease, Project, Skip
from tests.labeling.test_queue import assert_counts_true, make_queue, reviewer_named

pytestmark = pytest.mark.django_db
BASE = "/api/v1/projects/acme-sentiment"


def test_next_leases_the_top_item_and_204_when_the_queue_is_empty(project, reviewer, api_client_for):
    _low, high = make_queue(project, [0.1, 0.9])
    client = api_client_for(reviewer)
    response = client.post(f"{BASE}/queue/next")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["item"]["id"] == high.pk and body["item"]["text"] == high.text
    assert body["lease"]["item"] == high.pk and Lease.objects.filter(pk=body["lease"]["id"]).exists()
    lease = body["lease"]["id"]
    submitted = client.post(
        f"{BASE}/annotations", {"item": high.pk, "label": "positive", "lease": lease}, format="json"
    )
    assert submitted.status_code == 201, submitted.content
    assert client.post(f"{BASE}/queue/next").json()["item"]["id"] == _low.pk
    assert api_client_for(reviewer_named(project, "second")).post(f"{BASE}/queue/next").status_code == 204


def test_submit_is_idempotent_on_client_key(project, reviewer, api_client_for):
    (item,) = make_queue(project, [0.5])
    client = api_client_for(reviewer)
    lease = client.post(f"{BASE}/queue/next").json()["lease"]["id"]
    payload = {"item": item.pk, "label": "neutral", "lease": lease, "client_key": "abc", "seconds_spent": 3.2}
    first = client.post(f"{BASE}/annotations", payload, format="json")
    again = client.post(f"{BASE}/annotations", payload, format="json")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"] and Annotation.objects.count() == 1
    item.refresh_from_db()
    assert (item.status, item.gold_label.name) == (Item.Status.GOLD, "neutral")
    assert_counts_true(project)


def test_a_label_outside_the_set_is_a_400_naming_the_valid_ones(project, reviewer, api_client_for):
    (item,) = make_queue(project, [0.5])
    client = api_client_for(reviewer)
    lease = client.post(f"{BASE}/queue/next").json()["lease"]["id"]
    response = client.post(f"{BASE}/annotations", {"item": item.pk, "label": "angry", "lease": lease}, format="json")
    assert response.status_code == 400
    assert "use one of: negative, neutral, positive" in response.json()["error"]["message"]
    assert Annotation.objects.count() == 0


def test_a_lease_that_expired_and_went_to_someone_else_is_a_409(project, reviewer, api_client_for):
    (item,) = make_queue(project, [0.5])
    client = api_client_for(reviewer)
    lease = client.post(f"{BASE}/queue/next").json()["lease"]["id"]
    Lease.objects.filter(pk=lease).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api_client_for(reviewer_named(project, "second")).post(f"{BASE}/queue/next").status_code == 200
    response = client.post(f"{BASE}/annotations", {"item": item.pk, "label": "positive", "lease": lease}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    heartbeat = client.post(f"{BASE}/leases/{lease}/heartbeat")
    assert heartbeat.status_code == 409


def test_skip_and_heartbeat(project, reviewer, api_client_for):
    first, second = make_queue(project, [0.9, 0.8])
    client = api_client_for(reviewer)
    lease = client.post(f"{BASE}/queue/next").json()["lease"]["id"]
    beat = client.post(f"{BASE}/leases/{lease}/heartbeat")
    assert beat.status_code == 200 and beat.json()["id"] == lease
    # A skip answers 200 with the next item (it answered 204 before the labeling page needed one round trip).
    skipped = client.post(f"{BASE}/queue/skip", {"lease": lease, "reason": "spam"}, format="json")
    assert skipped.status_code == 200, skipped.content
    assert (skipped.json()["item"], skipped.json()["reason"]) == (first.pk, "spam")
    assert skipped.json()["next"]["item"]["id"] == second.pk and skipped.json()["prefetched"] is None
    assert Skip.objects.get(user=reviewer).item_id == first.pk
    assert client.post(f"{BASE}/queue/next").json()["item"]["id"] == second.pk
    other = api_client_for(reviewer_named(project, "second"))
    assert other.post(f"{BASE}/leases/{lease}/heartbeat").status_code == 404
    assert_counts_true(project)


def test_an_outsider_gets_404_and_unknown_fields_a_400(project, reviewer, outsider, api_client_for):
    make_queue(project, [0.5])
    assert api_client_for(outsider).post(f"{BASE}/queue/next").status_code == 404
    client = api_client_for(reviewer)
    typo = client.post(f"{BASE}/queue/skip", {"lease": "x", "reson": "typo"}, format="json")
    assert typo.status_code == 400 and set(typo.json()["error"]["details"]) == {"reson"}
    bad_id = client.post(f"{BASE}/queue/skip", {"lease": "x"}, format="json")
    assert bad_id.status_code == 400 and set(bad_id.json()["error"]["details"]) == {"lease"}


def suggest(item, label, confidence: float, version: int) -> None:
    Item.objects.filter(pk=item.pk).update(
        predicted_label=label, predicted_confidence=confidence, predicted_by_version=version
    )


def test_next_carries_the_suggestion_the_staleness_and_the_queue_size(project, reviewer, api_client_for):
    first, _second, _third = make_queue(project, [0.9, 0.8, 0.7])
    Item.objects.filter(project=project).update(ranked_by_version=7)
    Project.objects.filter(pk=project.pk).update(labels_since_training=140)
    suggest(first, project.labels.get(name="positive"), 0.83, 7)
    body = api_client_for(reviewer).post(f"{BASE}/queue/next").json()
    positive = project.labels.get(name="positive")
    assert body["suggestion"] == {"label": positive.pk, "label_name": "positive", "confidence": 0.83, "version": 7}
    assert body["staleness"] == {"ranked_by_version": 7, "labels_since_training": 140}
    assert body["remaining"] == 2 and body["prefetched"] is None
    assert (body["item"]["is_random_pick"], body["item"]["overlap_target"]) == (False, 1)


def test_next_with_prefetch_holds_two_items_and_a_missing_suggestion_is_null(project, reviewer, api_client_for):
    first, second, _third = make_queue(project, [0.9, 0.8, 0.7])
    client = api_client_for(reviewer)
    body = client.post(f"{BASE}/queue/next", {"prefetch": True}, format="json").json()
    assert (body["item"]["id"], body["prefetched"]["item"]["id"]) == (first.pk, second.pk)
    assert body["suggestion"] is None and body["prefetched"]["suggestion"] is None
    assert body["remaining"] == 1
    assert body["prefetched"]["lease"]["id"] != body["lease"]["id"]
    again = client.post(f"{BASE}/queue/next").json()  # no new lease: the same two come back
    assert (again["lease"]["id"], again["prefetched"]["lease"]["id"]) == (
        body["lease"]["id"],
        body["prefetched"]["lease"]["id"],
    )
    assert Lease.objects.filter(user=reviewer).count() == 2
    bad = client.post(f"{BASE}/queue/next", {"prefetch": "maybe"}, format="json")
    assert bad.status_code == 400 and set(bad.json()["error"]["details"]) == {"prefetch"}


def test_a_submit_returns_the_next_item_and_with_prefetch_the_one_after(project, reviewer, api_client_for):
    first, second, third, _fourth = make_queue(project, [0.9, 0.8, 0.7, 0.6])
    client = api_client_for(reviewer)
    held = client.post(f"{BASE}/queue/next", {"prefetch": True}, format="json").json()
    payload = {"item": first.pk, "label": "negative", "lease": held["lease"]["id"], "prefetch": True}
    submitted = client.post(f"{BASE}/annotations", {**payload, "client_key": "k-1"}, format="json")
    assert submitted.status_code == 201, submitted.content
    body = submitted.json()
    assert body["next"]["lease"]["id"] == held["prefetched"]["lease"]["id"]
    assert (body["next"]["item"]["id"], body["prefetched"]["item"]["id"]) == (second.pk, third.pk)
    assert body["remaining"] == 1 and Annotation.objects.get().label.name == "negative"
    # A retried request (same client key) writes nothing and leases nothing more.
    retry = client.post(f"{BASE}/annotations", {**payload, "client_key": "k-1"}, format="json").json()
    assert retry["id"] == body["id"] and retry["prefetched"]["lease"]["id"] == body["prefetched"]["lease"]["id"]
    assert Annotation.objects.count() == 1 and Lease.objects.filter(released_at__isnull=True).count() == 2
    plain = {"item": second.pk, "label": "neutral", "lease": body["next"]["lease"]["id"]}
    without = client.post(f"{BASE}/annotations", plain, format="json").json()
    assert without["next"]["item"]["id"] == third.pk and without["prefetched"] is None  # still holds only third
    assert_counts_true(project)


def test_the_last_submit_returns_no_next_item(project, reviewer, api_client_for):
    (item,) = make_queue(project, [0.5])
    client = api_client_for(reviewer)
    lease = client.post(f"{BASE}/queue/next").json()["lease"]["id"]
    body = client.post(
        f"{BASE}/annotations", {"item": item.pk, "label": "neutral", "lease": lease, "prefetch": True}, format="json"
    ).json()
    assert (body["next"], body["prefetched"], body["remaining"]) == (None, None, 0)


def test_undo_re_leases_the_item_to_its_author_first(project, reviewer, api_client_for):
    first, second, third = make_queue(project, [0.9, 0.8, 0.7])
    client = api_client_for(reviewer)
    lease = client.post(f"{BASE}/queue/next", {"prefetch": True}, format="json").json()["lease"]["id"]
    submit = {"item": first.pk, "label": "positive", "lease": lease, "prefetch": True}
    annotation = client.post(f"{BASE}/annotations", submit, format="json").json()
    response = client.post(f"{BASE}/annotations/{annotation['id']}/undo", {"prefetch": True}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["retracted"] == annotation["id"]
    assert (body["item"]["id"], body["prefetched"]["item"]["id"]) == (first.pk, second.pk)
    retract = Annotation.objects.get(kind=Annotation.Kind.RETRACT)
    assert (retract.retracts_id, retract.user_id) == (annotation["id"], reviewer.pk)
    first.refresh_from_db()
    third.refresh_from_db()
    assert (first.status, first.gold_label) == (Item.Status.LEASED, None)
    assert third.status == Item.Status.QUEUED  # the prefetch behind the undone submission went back
    again = client.post(f"{BASE}/annotations/{annotation['id']}/undo")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    assert_counts_true(project)


def test_undo_of_an_older_submission_is_a_409_and_of_someone_elses_a_404(project, reviewer, api_client_for):
    first, second, _third = make_queue(project, [0.9, 0.8, 0.7])
    client = api_client_for(reviewer)
    ids = []
    for item in (first, second):
        lease = client.post(f"{BASE}/queue/next").json()["lease"]["id"]
        ids.append(client.post(f"{BASE}/annotations", {"item": item.pk, "label": "neutral", "lease": lease}).json())
    older = client.post(f"{BASE}/annotations/{ids[0]['id']}/undo")
    assert older.status_code == 409 and "latest" in older.json()["error"]["message"]
    other = api_client_for(reviewer_named(project, "second"))
    theirs = other.post(f"{BASE}/annotations/{ids[1]['id']}/undo")
    missing = other.post(f"{BASE}/annotations/999999/undo")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()  # someone else's annotation looks exactly like none
    assert Annotation.objects.filter(kind=Annotation.Kind.RETRACT).count() == 0


def test_skip_on_a_lease_that_expired_and_went_to_someone_else_is_a_409(project, reviewer, api_client_for):
    (_item,) = make_queue(project, [0.5])
    client = api_client_for(reviewer)
    lease = client.post(f"{BASE}/queue/next").json()["lease"]["id"]
    Lease.objects.filter(pk=lease).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api_client_for(reviewer_named(project, "second")).post(f"{BASE}/queue/next").status_code == 200
    response = client.post(f"{BASE}/queue/skip", {"lease": lease, "reason": "late"}, format="json")
    assert response.status_code == 409 and "went to another reviewer" in response.json()["error"]["message"]
    assert Skip.objects.count() == 0


def test_a_label_of_another_project_by_id_is_a_400(project, other_project, reviewer, api_client_for):
    (item,) = make_queue(project, [0.5])
    client = api_client_for(reviewer)
    lease = client.post(f"{BASE}/queue/next").json()["lease"]["id"]
    foreign = other_project.labels.first()
    response = client.post(f"{BASE}/annotations", {"item": item.pk, "label": foreign.pk, "lease": lease})
    assert response.status_code == 400 and response.json()["error"]["details"] == {"label": foreign.pk}
    item.refresh_from_db()
    assert item.status == Item.Status.LEASED and Annotation.objects.count() == 0


def test_a_reviewer_of_another_project_gets_404_everywhere(project, other_project, reviewer, api_client_for):
    (item,) = make_queue(project, [0.5])
    client = api_client_for(reviewer)
    lease = client.post(f"{BASE}/queue/next").json()["lease"]["id"]
    annotation = client.post(f"{BASE}/annotations", {"item": item.pk, "label": "neutral", "lease": lease}).json()
    stranger = reviewer_named(other_project, "stranger")
    outside = api_client_for(stranger)
    calls = [
        outside.post(f"{BASE}/queue/next"),
        outside.post(f"{BASE}/annotations", {"item": item.pk, "label": "neutral", "lease": lease}),
        outside.post(f"{BASE}/queue/skip", {"lease": lease}),
        outside.post(f"{BASE}/annotations/{annotation['id']}/undo"),
        outside.post(f"{BASE}/leases/{lease}/heartbeat"),
    ]
    assert [c.status_code for c in calls] == [404] * 5
    assert {c.json()["error"]["message"] for c in calls} == {"Project not found."}
    # Their own project's slug does not reach this project's items either.
    response = outside.post(
        f"/api/v1/projects/{other_project.slug}/annotations", {"item": item.pk, "label": "neutral", "lease": lease}
    )
    assert response.status_code == 404 and "not found in this project" in response.json()["error"]["message"]
    assert Annotation.objects.count() == 1

"""The queue API: next item, submit, skip, heartbeat, and their error answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Annotation, Item, Lease, Skip
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
    assert client.post(f"{BASE}/queue/skip", {"lease": lease, "reason": "spam"}, format="json").status_code == 204
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

"""Send to labeling: a drift run's most drifted texts become exactly one tagged queue batch, once;
and the drift API and page around it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from labeling.models import Item
from monitoring.models import DriftRun
from monitoring.services.drift import drift_send_to_labeling, drift_windows_run
from tests.monitoring.test_drift_fixtures import (
    build_reference,
    drift_artifact,
    drift_artifact_source,
    drift_project,
    serve,
    texts,
)
from webapp.errors import Conflict, Forbidden, ValidationFailed

__all__ = ["drift_artifact", "drift_artifact_source"]

pytestmark = pytest.mark.django_db(transaction=True)  # the log sink commits for real


def _midnight():
    return timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)


def _daily_run(project, artifact, kind: str) -> DriftRun:
    batches = {"en": texts(kind, 150, "en", seed=11), "es": texts(kind, 150, "es", seed=11)}
    serve(project, artifact, batches, at=_midnight() - timedelta(hours=4))
    drift_windows_run(window="daily", now=_midnight() + timedelta(minutes=10))
    return DriftRun.objects.get(project=project, window="daily")


@pytest.fixture
def drifted(project, drift_artifact):
    version = drift_project(project, drift_artifact)
    build_reference(version)
    run = _daily_run(project, drift_artifact, "shifted")
    assert run.drifted and run.explanation["status"] == "ok"
    return run


def test_the_most_drifted_texts_become_one_tagged_batch_ranked_by_score_times_uncertainty(drifted, project, owner):
    candidates = drifted.explanation["candidates"]
    priorities = [c["priority"] for c in candidates]
    assert priorities == sorted(priorities, reverse=True)
    assert all(c["priority"] == pytest.approx(c["score"] * (1 - c["confidence"]), abs=2e-4) for c in candidates)

    result = drift_send_to_labeling(run=drifted, user=owner, limit=10)
    tag = f"drift:{drifted.pk}"
    items = list(Item.objects.filter(project=project, queue_tag=tag).order_by("-priority"))
    assert len(items) == result.queued == 10 and not result.already
    assert {item.status for item in items} == {Item.Status.QUEUED}
    assert [item.metadata["prediction_id"] for item in items] == [c["id"] for c in candidates[:10]]
    # Above the whole active-learning batch (priorities al_batch_size..1), best first.
    top = project.al_batch_size + 10
    assert [item.priority for item in items] == [float(top - rank) for rank in range(10)]
    assert items[0].metadata["drift_run"] == drifted.pk and items[0].language in ("en", "es")
    assert Item.objects.filter(project=project, queue_tag__startswith="drift:").count() == 10
    drifted.refresh_from_db()
    assert drifted.sent_to_labeling == 10 and drifted.explanation["sent"]["by"] == "owner"
    assert result.message.startswith("10 texts queued for labeling") and tag in result.message

    again = drift_send_to_labeling(run=drifted, user=owner, limit=50)
    assert again.already and again.queued == 10 and "Already sent" in again.message
    assert Item.objects.filter(project=project, queue_tag=tag).count() == 10


def test_only_owners_send_and_only_runs_that_drifted(drifted, project, reviewer, owner):
    with pytest.raises(Forbidden):
        drift_send_to_labeling(run=drifted, user=reviewer)
    with pytest.raises(ValidationFailed):
        drift_send_to_labeling(run=drifted, user=owner, limit=0)
    quiet = DriftRun.objects.create(
        project=project,
        version_number=1,
        window="on_demand",
        window_start=_midnight(),
        window_end=_midnight(),
        drifted=False,
    )
    with pytest.raises(Conflict, match="no drift"):
        drift_send_to_labeling(run=quiet, user=owner)
    assert not Item.objects.filter(project=project, queue_tag__startswith="drift:").exists()


def test_the_api_lists_runs_shows_one_and_sends_it(drifted, project, owner, reviewer, api_client_for):
    member = api_client_for(reviewer)
    runs = member.get(reverse("api-drift-runs", kwargs={"slug": project.slug})).json()
    assert [r["id"] for r in runs] == [drifted.pk] and runs[0]["drifted"] and "length" in runs[0]["alerts"]
    assert member.get(reverse("api-drift-runs", kwargs={"slug": project.slug}) + "?window=weekly").status_code == 400
    detail = member.get(reverse("api-drift-run", kwargs={"slug": project.slug, "run_id": drifted.pk})).json()
    assert detail["results"]["overall"]["length"]["alert"] and detail["explanation"]["status"] == "ok"
    send_url = reverse("api-drift-send", kwargs={"slug": project.slug, "run_id": drifted.pk})
    assert member.post(send_url, {"limit": 5}, format="json").status_code == 403
    manager = api_client_for(owner)
    assert manager.post(send_url, {"limt": 5}, format="json").status_code == 400  # a typo changes nothing
    assert not Item.objects.filter(queue_tag__startswith="drift:").exists()
    body = manager.post(send_url, {"limit": 5}, format="json").json()
    assert (body["queued"], body["created"], body["tag"], body["already"]) == (5, 5, f"drift:{drifted.pk}", False)
    assert manager.post(send_url, {"limit": 5}, format="json").json()["already"] is True
    started = manager.post(reverse("api-drift-runs", kwargs={"slug": project.slug}), {"hours": 3}, format="json")
    assert started.status_code == 202 and started.json()["hours"] == 3


def test_the_page_shows_the_tests_the_run_and_its_explanation(drifted, project, owner, reviewer, client_for):
    url = reverse("monitoring:drift", kwargs={"slug": project.slug}) + "?range=7d"
    page = client_for(reviewer).get(url)
    html = page.content.decode()
    assert page.status_code == 200 and 'data-drifted="1"' in html and 'id="explanation"' in html
    figures = page.context["figures"]
    assert figures["length"] and figures["embedding_mmd"] and figures["length"]["data"][0]["y"]
    assert 'data-figure="length"' in html and 'id="send-to-labeling"' not in html  # reviewers do not act
    owner_page = client_for(owner).get(url).content.decode()
    assert 'id="send-to-labeling"' in owner_page and 'id="run-now"' in owner_page
    sent = client_for(owner).post(
        reverse("monitoring:drift-send", kwargs={"slug": project.slug, "run_id": drifted.pk}), {"limit": "3"}
    )
    assert sent.status_code == 302 and sent["Location"].endswith(f"?run={drifted.pk}")
    assert Item.objects.filter(queue_tag=f"drift:{drifted.pk}").count() == 3
    after = client_for(owner).get(url).content.decode()
    assert 'id="sent"' in after and "3 texts queued" in after


def test_the_page_says_honestly_when_there_is_no_reference_or_no_run(project, drift_artifact, reviewer, client_for):
    url = reverse("monitoring:drift", kwargs={"slug": project.slug})
    assert 'id="no-production"' in client_for(reviewer).get(url).content.decode()
    drift_project(project, drift_artifact)
    html = client_for(reviewer).get(url).content.decode()
    assert 'id="no-reference"' in html and 'id="no-runs"' in html
    assert 'data-empty="length"' in html  # the chart slot says "no data" instead of drawing an empty axis

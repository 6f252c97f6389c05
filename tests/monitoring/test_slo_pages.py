"""SLO settings (service, form, API: bad input is a 400 that changes nothing), the SLO and alert pages,
and the alert list API."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from monitoring.buckets import LATENCY_EDGES_MS
from monitoring.models import Alert, MinuteRollup, ServiceObjective
from monitoring.services.alerts import alert_fire
from monitoring.services.slo import slo_evaluate, slo_update
from webapp.errors import ValidationFailed

pytestmark = pytest.mark.django_db


def _minutes(project, *, minutes, errors=0, served=100, end=None):
    end = (end or timezone.now()).replace(second=0, microsecond=0)
    hist = [0] * (len(LATENCY_EDGES_MS) + 1)
    hist[2] = served
    MinuteRollup.objects.bulk_create(
        [
            MinuteRollup(
                project=project,
                bucket_start=end - timedelta(minutes=i),
                version_number=1,
                route="production",
                predictions=served,
                error_count=errors,
                errors={"overloaded": errors} if errors else {},
                latency_hist=hist,
            )
            for i in range(1, minutes + 1)
        ]
    )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"latency_threshold_ms": 301}, "latency_threshold_ms", "must be a histogram bucket edge"),
        ({"availability_target": 0.93}, "availability_target", "'page when burn > 14.4 over 1 h and 5 min'"),
        ({"availability_target": 1.2}, "availability_target", "between 0.5 and 0.99999"),
        ({"period_days": 0}, "period_days", "between 1 and 90"),
        ({"period_days": 7.5}, "period_days", "whole number"),
        ({"min_events": True}, "min_events", "whole number"),
        ({"quality_target": 0.6}, "quality_target", "'ticket when burn > 3 over 1 d and 2 h'"),
        ({"colour": "red"}, "colour", "Unknown SLO fields: colour"),
    ],
)
def test_bad_slo_changes_are_refused_whole(project, owner, changes, field, message):
    with pytest.raises(ValidationFailed, match=None) as caught:
        slo_update(project=project, user=owner, changes={"min_events": 10, **changes})
    assert message in caught.value.message
    assert field in caught.value.details
    assert not ServiceObjective.objects.exists()


def test_quality_objective_is_checked_against_the_scaled_ticket_policies(project, owner):
    # Over 90 days the 1 d ticket factor is 9: 9 x (1 - 0.85) = 1.35, it could never fire.
    with pytest.raises(ValidationFailed, match=r"quality \(90-day period\).*above 88\.8889%"):
        slo_update(project=project, user=owner, changes={"period_days": 90, "quality_target": 0.85})
    objective = slo_update(project=project, user=owner, changes={"period_days": 90, "quality_target": 0.95})
    assert (objective.period_days, objective.quality_target, objective.updated_by) == (90, 0.95, owner)


def test_slo_api_get_and_put(project, owner, reviewer, api_client_for):
    url = reverse("api-slo", kwargs={"slug": project.slug})
    body = api_client_for(reviewer).get(url).json()
    assert body["objectives"]["availability_target"] == 0.995 and body["objectives"]["latency_threshold_ms"] == 300
    assert [p["factor"] for p in body["policies"]] == [14.4, 6.0, 3.0, 1.0]
    assert [s["slo"] for s in body["slos"]] == ["availability", "latency"]
    assert body["slos"][0]["budget"]["remaining"] is None  # no traffic: no figure, not 100%

    owner_client = api_client_for(owner)
    bad = owner_client.put(url, {"latency_threshold_ms": 250, "min_events": 5}, format="json")
    assert bad.status_code == 400
    assert "bucket edge" in bad.json()["error"]["message"]
    assert not ServiceObjective.objects.exists()
    unknown = owner_client.put(url, {"availabilty_target": 0.99}, format="json")
    assert unknown.status_code == 400 and "availabilty_target" in unknown.json()["error"]["details"]

    good = owner_client.put(url, {"availability_target": 0.999, "period_days": 7}, format="json")
    assert good.status_code == 200, good.content
    assert good.json()["objectives"]["availability_target"] == 0.999
    assert [p["factor"] for p in good.json()["policies"]] == pytest.approx([3.36, 1.4, 1.0, 1.0])
    assert ServiceObjective.objects.get(project=project).updated_by == owner


def test_slo_page_shows_budget_burn_charts_and_policies(project, reviewer, client_for):
    _minutes(project, minutes=180, errors=1)  # 1 of 101 fails: 0.99% (budget 0.5%: overspent)
    response = client_for(reviewer).get(reverse("monitoring:slo", kwargs={"slug": project.slug}) + "?range=6h")
    assert response.status_code == 200
    page = response.content.decode()
    figures = json.loads(page.split('id="monitoring-figures" type="application/json">')[1].split("</script>")[0])
    availability = figures["burn_availability"]
    names = [t["name"] for t in availability["data"]]
    assert names == ["burn over 1 h", "burn over 6 h", "burn over 1 d", "burn over 3 d"]
    last_hour = [v for v in availability["data"][0]["y"] if v is not None][-1]
    assert last_hour == pytest.approx((1 / 101) / 0.005, rel=1e-3)
    thresholds = sorted(s["y0"] for s in availability["layout"]["shapes"])
    assert thresholds == [1.0, 3.0, 6.0, 14.4]
    assert 'data-figure="burn_latency"' in page
    assert "-98.0%" in page  # budget remaining: 1 - 180 / (0.005 * 18,180) = -0.98: overspent
    assert "SLO settings" not in page  # reviewers read only


def test_slo_page_says_no_data_honestly(project, owner, client_for):
    page = client_for(owner).get(reverse("monitoring:slo", kwargs={"slug": project.slug})).content.decode()
    assert 'data-empty="burn_availability"' in page and "No data in this time range" in page
    assert "no data" in page  # the budget
    assert "SLO settings" in page


def test_slo_settings_form_saves_percentages_and_refuses_bad_ones(project, owner, client_for):
    client = client_for(owner)
    url = reverse("monitoring:slo-settings", kwargs={"slug": project.slug})
    form = {
        "period_days": "30",
        "availability_target": "99.9",
        "latency_target": "99",
        "latency_threshold_ms": "500",
        "quality_target": "",
        "min_events": "200",
    }
    response = client.post(url, {**form, "availability_target": "92"})
    assert response.status_code == 400 and "could never fire" in response.content.decode()
    assert not ServiceObjective.objects.exists()
    response = client.post(url, form)
    assert response.status_code == 302
    objective = ServiceObjective.objects.get(project=project)
    assert objective.availability_target == pytest.approx(0.999)
    assert (objective.latency_threshold_ms, objective.min_events, objective.quality_target) == (500, 200, None)


def test_alert_list_page_and_api_filter_by_state_and_kind(project, reviewer, client_for, api_client_for):
    _minutes(project, minutes=60)
    _minutes(project, minutes=1, errors=100, served=0, end=timezone.now() + timedelta(minutes=1))
    ServiceObjective.objects.create(project=project, availability_target=0.999)
    slo_evaluate(project=project)
    drift = alert_fire(project=project, key="drift:v1", kind="drift", severity="ticket", title="Drift", evidence={})
    Alert.objects.filter(pk=drift.pk).update(state="resolved", resolved_at=timezone.now())

    client = client_for(reviewer)
    url = reverse("monitoring:alerts", kwargs={"slug": project.slug})
    page = client.get(url).content.decode()
    assert 'data-alert="burn:availability:page:v1" data-state="firing"' in page
    assert 'data-alert="drift:v1" data-state="resolved"' in page
    assert 'href="/projects/acme-sentiment/monitoring/slo/">SLO burn chart</a>' in page
    firing = client.get(url + "?state=firing").content.decode()
    assert "drift:v1" not in firing and "burn:availability:page:v1" in firing
    assert "No alerts match these filters" in client.get(url + "?kind=accuracy").content.decode()
    assert client.get(url + "?state=on-fire").status_code == 400

    api = api_client_for(reviewer)
    api_url = reverse("api-alerts", kwargs={"slug": project.slug})
    # One hour of history: the outage minute also trips the 3 d/6 h ticket (burn 16 over both).
    assert {a["key"] for a in api.get(api_url + "?kind=burn").json()} == {
        "burn:availability:page:v1",
        "burn:availability:ticket:v1",
    }
    assert [a["key"] for a in api.get(api_url + "?state=resolved").json()] == ["drift:v1"]
    assert api.get(api_url + "?version=1&severity=page").json()[0]["evidence"]["slo"] == "availability"
    bad = api.get(api_url + "?severity=urgent")
    assert bad.status_code == 400 and "urgent" in bad.json()["error"]["message"]

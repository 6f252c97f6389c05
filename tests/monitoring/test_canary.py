"""The canary/shadow agreement page and API over real prediction-log rows: pairing, agreement, transitions,
per-language rates, the window limit, the row cap, texts only where logged, and who may read it."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from modeling.models import PredictionLog
from monitoring.selectors import canary as selector
from monitoring.selectors.canary import canary_report, canary_time_range

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def log(project, route: str, body: str, label: str, at: datetime, *, version: int = 1, **extra) -> PredictionLog:
    row = {
        "id": uuid.uuid4(),
        "project": project,
        "version_number": version,
        "route": route,
        "caller": "svc",
        "created_at": at,
        "latency_ms": 12.0,
        "label": label,
        "confidence": extra.pop("confidence", 0.9),
        "probs": {label: 0.9},
        "input_chars": len(body),
        "language": extra.pop("language", "en"),
        "text_sha256": sha(body),
        **extra,
    }
    return PredictionLog.objects.create(**row)


def shadowed(project, body: str, production: str, shadow: str, at: datetime, **extra) -> None:
    """One production answer and its shadow copy, scored 40 ms later by version 2."""
    log(project, "production", body, production, at, **extra)
    log(project, "shadow", body, shadow, at + timedelta(milliseconds=40), version=2, **extra)


def window(hours: int = 1):
    return canary_time_range({"range": f"{hours}h"}, now=NOW)


def test_shadow_agreement_pairs_each_copy_with_its_production_twin(project):
    start = NOW - timedelta(minutes=50)
    for i in range(8):
        shadowed(project, f"text {i}", "positive", "positive", start + timedelta(minutes=i))
    shadowed(project, "text 8", "positive", "negative", start + timedelta(minutes=8))
    shadowed(project, "text 9", "neutral", "negative", start + timedelta(minutes=9), language="de")
    # The same text later again, now agreed on: it pairs with its own production twin, not the first one.
    shadowed(project, "text 9", "negative", "negative", start + timedelta(minutes=20), language="de")
    report = canary_report(project=project, time_range=window())
    shadow = report.shadow
    assert (shadow.rows, shadow.pairs, shadow.versions) == (11, 11, {2: 11})
    assert (shadow.agreement.successes, shadow.agreement.n) == (9, 11)
    assert shadow.agreement.interval.low < 9 / 11 < shadow.agreement.interval.high
    assert shadow.transitions.labels == ["negative", "neutral", "positive"]
    # production -> shadow: positive->negative once, neutral->negative once, 8 positive and 1 negative kept.
    assert shadow.transitions.counts == [[1, 0, 0], [1, 0, 0], [1, 0, 8]]
    by_language = {g.group: (g.agreement.successes, g.agreement.n) for g in shadow.by_language}
    assert by_language == {"en": (8, 9), "de": (1, 2)}
    assert sum(p.agreement.n for p in shadow.series) == 11
    assert [d.production_label for d in shadow.disagreements] == ["neutral", "positive"]  # newest first
    assert all(d.text is None for d in shadow.disagreements)  # texts were not logged
    assert report.canary.rows == 0 and report.canary.agreement.n == 0


def test_a_shadow_row_with_no_production_twin_in_time_stays_unpaired(project):
    log(project, "production", "alone", "positive", NOW - timedelta(minutes=30))
    log(project, "shadow", "alone", "negative", NOW - timedelta(minutes=20), version=2)  # 10 minutes later
    log(project, "shadow", "never served", "negative", NOW - timedelta(minutes=10), version=2)
    report = canary_report(project=project, time_range=window())
    assert (report.shadow.rows, report.shadow.pairs, report.shadow.agreement.value) == (2, 0, None)
    # The label mix still compares: all of production positive, all of the shadow negative.
    assert report.shadow.label_shift.total_variation == pytest.approx(1.0)


def test_the_canary_compares_label_mix_and_confidence_and_agrees_only_on_shared_texts(project):
    start = NOW - timedelta(hours=5)
    for i in range(30):
        log(
            project,
            "production",
            f"prod {i}",
            "positive" if i % 3 else "negative",
            start + timedelta(minutes=i),
            confidence=0.9,
        )
    for i in range(10):
        log(project, "canary", f"canary {i}", "negative", start + timedelta(minutes=i), version=3, confidence=0.7)
    log(project, "canary", "prod 4", "negative", start + timedelta(minutes=50), version=3)  # production said positive
    log(project, "canary", "prod 3", "negative", start + timedelta(minutes=51), version=3)  # production said negative
    report = canary_report(project=project, time_range=window(6))
    canary = report.canary
    assert (canary.rows, canary.pairs, canary.versions) == (12, 2, {3: 12})
    assert (canary.agreement.successes, canary.agreement.n) == (1, 2)
    shares = {s.label: (s.production.value, s.other.value) for s in canary.label_shift.shares}
    assert shares["negative"] == (pytest.approx(10 / 30), 1.0)
    assert canary.label_shift.p_value < 0.01
    assert canary.confidence_delta.value == pytest.approx((10 * 0.7 + 2 * 0.9) / 12 - 0.9)
    assert canary.confidence_delta.interval.high < 0
    # Outside the 1-hour window nothing is seen.
    assert canary_report(project=project, time_range=window(1)).canary.rows == 0


def test_disagreements_show_the_text_only_where_it_was_logged(project):
    at = NOW - timedelta(minutes=5)
    log(project, "production", "call me on 555", "positive", at, text="call me on [PHONE]")
    log(project, "shadow", "call me on 555", "negative", at + timedelta(milliseconds=40), version=2)
    shadowed(project, "secret", "positive", "negative", at + timedelta(seconds=1))
    texts = {d.text for d in canary_report(project=project, time_range=window()).shadow.disagreements}
    assert texts == {"call me on [PHONE]", None}


def test_when_a_route_reaches_the_row_cap_every_route_covers_the_same_newest_stretch(project, monkeypatch):
    monkeypatch.setattr(selector, "ROW_CAP", 5)
    for i in range(8):
        shadowed(project, f"t{i}", "positive", "positive", NOW - timedelta(minutes=40 - i))
    report = canary_report(project=project, time_range=window())
    assert report.truncated and report.production_capped
    # The oldest kept shadow copy (40 ms after its production twin) starts the analysed window; that
    # twin is not counted as production traffic, but still pairs with its copy.
    assert report.since == NOW - timedelta(minutes=40 - 3) + timedelta(milliseconds=40)
    assert (report.production_rows, report.shadow.rows, report.shadow.pairs) == (4, 5, 5)


def test_windows_longer_than_a_day_are_refused_with_a_message(project, owner, client, api_client_for):
    client.force_login(owner)
    page = client.get(reverse("monitoring:canary", args=[project.slug]), {"range": "7d"})
    assert page.status_code == 400 and "at most 24 hours" in page.content.decode()
    api = api_client_for(owner).get(f"/api/v1/projects/{project.slug}/monitoring/canary", {"range": "7d"})
    assert api.status_code == 400 and "at most 24 hours" in api.json()["error"]["message"]
    custom = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:01Z"}
    assert api_client_for(owner).get(f"/api/v1/projects/{project.slug}/monitoring/canary", custom).status_code == 400


def test_the_page_shows_agreement_charts_and_says_no_data_honestly(project, reviewer, client):
    client.force_login(reviewer)
    url = reverse("monitoring:canary", args=[project.slug])
    empty = client.get(url, {"range": "1h"}).content.decode()
    assert 'data-empty="agreement"' in empty and "No shadow predictions in this time range." in empty
    now = datetime.now(tz=UTC)
    shadowed(project, "one", "positive", "negative", now - timedelta(minutes=3), text="one")
    shadowed(project, "two", "positive", "positive", now - timedelta(minutes=2))
    html = client.get(url, {"range": "1h"}).content.decode()
    assert 'data-figure="agreement"' in html and 'data-figure="transitions_shadow"' in html
    assert "No canary predictions in this time range." in html
    assert '<strong class="agreement-rate">0.500</strong>' in html and "(1 of 2;" in html
    assert ">one</td>" in html and 'id="monitoring-figures"' in html


def test_the_api_returns_the_same_report_as_json(project, reviewer, api_client_for):
    now = datetime.now(tz=UTC)
    shadowed(project, "one", "positive", "negative", now - timedelta(minutes=3))
    body = api_client_for(reviewer).get(f"/api/v1/projects/{project.slug}/monitoring/canary?range=1h").json()
    assert body["time_range"]["key"] == "1h" and body["labels"] == ["negative", "neutral", "positive"]
    shadow = body["shadow"]
    assert shadow["agreement"] == {"successes": 0, "n": 1, "value": 0.0, "interval": shadow["agreement"]["interval"]}
    assert shadow["versions"] == {"2": 1} and shadow["transitions"]["counts"][2][0] == 1
    assert shadow["disagreements"][0]["production_label"] == "positive" and shadow["disagreements"][0]["text"] is None
    assert body["canary"]["rows"] == 0


def test_outsiders_get_404_and_no_data(project, outsider, api_client_for):
    shadowed(project, "one", "positive", "negative", datetime.now(tz=UTC))
    response = api_client_for(outsider).get(f"/api/v1/projects/{project.slug}/monitoring/canary")
    assert response.status_code == 404 and "shadow" not in response.json()

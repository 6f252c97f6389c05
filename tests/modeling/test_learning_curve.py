"""The learning-curve page and API (with and without data), and "Retrain now" on the models page and the API."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from django.urls import reverse

from labeling.models import Item, Label
from modeling import charts
from modeling.models import ModelVersion, Retraining
from modeling.services.stop_set import stop_set_ensure
from tests.modeling.test_pages import realistic_metrics

pytestmark = pytest.mark.django_db
SLUG = {"slug": "acme-sentiment"}
PAGE = reverse("modeling:learning-curve", kwargs=SLUG)
API = reverse("api-learning-curve", kwargs=SLUG)
RETRAIN_API = reverse("api-retrain", kwargs=SLUG)
RETRAIN_PAGE = reverse("modeling:retrain", kwargs=SLUG)
VERSIONS = reverse("modeling:version-list", kwargs=SLUG)


def _figures(html: str) -> dict:
    match = re.search(r'<script id="learning-curve-figures" type="application/json">(.*?)</script>', html, re.S)
    assert match is not None
    return json.loads(match.group(1))


@pytest.fixture
def history(project, reviewer):
    """Four versions: three evaluated (v2 automatic) and one failed; three scored the same 4-item stop set."""
    texts = [f"stop item {i}" for i in range(4)]
    Item.objects.bulk_create(
        [Item(project=project, text=t, content_hash=hashlib.sha256(t.encode()).hexdigest()) for t in texts]
    )
    ids = stop_set_ensure(project_id=project.pk)
    a, b = Label.objects.filter(project=project).values_list("id", flat=True)[:2]
    metrics = realistic_metrics()
    rows = [
        (1, "candidate", 100, [a, a, b, b]),
        (2, "production", 300, [a, b, b, b]),  # vs v1: observed 0.75, expected 0.5*0.25 + 0.5*0.75 = 0.5 -> 0.5
        (3, "failed", None, None),
        (4, "candidate", 500, [a, b, b, b]),  # vs v2: identical -> kappa 1
    ]
    versions = {}
    for number, status, train, stop in rows:
        versions[number] = ModelVersion.objects.create(
            project=project,
            number=number,
            status=status,
            base_checkpoint="roberta-base",
            metrics=metrics if train else {},
            data={"train": train, "eval": 120} if train else {},
            stop_predictions={str(i): label for i, label in zip(ids, stop, strict=True)} if stop else {},
        )
    Retraining.objects.create(project=project, trigger="auto", status="succeeded", version=versions[2])
    return versions, metrics


def test_without_data_the_api_and_page_say_so(client_for, api_client_for, reviewer, project):
    body = api_client_for(reviewer).get(API).json()
    assert body["points"] == [] and body["stopping"]["pairs"] == []
    stopping = body["stopping"]
    assert (stopping["stop"], stopping["mean_kappa"], stopping["threshold"], stopping["window"]) == (
        False,
        None,
        0.99,
        3,
    )
    assert stopping["stop_set_size"] == 0
    assert stopping["message"] == (
        "Keep labeling: the signal needs 3 comparisons of successive versions on the stop set; there are 0 so far."
    )
    html = client_for(reviewer).get(PAGE).content.decode()
    assert "No data yet: no model version has been trained and evaluated" in html
    assert "No data yet: kappa needs two versions that scored the pool" in html
    assert "data-figure=" not in html and _figures(html) == {}
    assert "Keep labeling" in html


def test_the_api_gives_each_evaluated_versions_score_interval_and_gold_labels(api_client_for, reviewer, history):
    _, metrics = history
    body = api_client_for(reviewer).get(API).json()
    ci = metrics["eval"]["macro_f1_ci"]
    assert [(p["version"], p["gold_labels"], p["automatic"], p["status"]) for p in body["points"]] == [
        (1, 100, False, "candidate"),
        (2, 300, True, "production"),
        (4, 500, False, "candidate"),
    ]
    point = body["points"][0]
    assert point["macro_f1"] == metrics["eval"]["macro_f1"] and point["eval_n"] == 120
    assert point["macro_f1_ci"] == {"low": ci["low"], "high": ci["high"]} and ci["low"] < point["macro_f1"] < ci["high"]
    stopping = body["stopping"]
    assert [(p["from_version"], p["to_version"], p["items"]) for p in stopping["pairs"]] == [(1, 2, 4), (2, 4, 4)]
    assert [p["kappa"] for p in stopping["pairs"]] == pytest.approx([0.5, 1.0])
    assert [p["observed_agreement"] for p in stopping["pairs"]] == pytest.approx([0.75, 1.0])
    assert stopping["stop"] is False and stopping["stop_set_size"] == 4
    assert "there are 2 so far" in stopping["message"]


def test_the_stop_statement_follows_the_threshold_setting(api_client_for, client_for, reviewer, history, settings):
    settings.MODELING_STOP_KAPPA, settings.MODELING_STOP_WINDOW = 0.7, 2
    body = api_client_for(reviewer).get(API).json()["stopping"]
    assert body["stop"] is True and body["mean_kappa"] == pytest.approx(0.75)
    assert body["message"].startswith("Stop: predictions have stabilised (the mean kappa over the last 2 pairs, 0.7500")
    html = client_for(reviewer).get(PAGE).content.decode()
    assert 'class="stop-verdict stop"' in html and "Stop: predictions have stabilised" in html


def test_the_page_draws_the_curve_with_intervals_and_kappa_against_the_threshold(client_for, reviewer, history):
    _, metrics = history
    response = client_for(reviewer).get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    figures = _figures(html)
    assert set(figures) == {"curve", "stability"}
    curve = figures["curve"]["data"][0]
    assert curve["x"] == [100, 300, 500] and curve["text"] == ["v1", "v2", "v4"]
    f1, ci = metrics["eval"]["macro_f1"], metrics["eval"]["macro_f1_ci"]
    assert curve["error_y"]["array"][0] == pytest.approx(ci["high"] - f1)
    assert curve["error_y"]["arrayminus"][0] == pytest.approx(f1 - ci["low"])
    assert curve["marker"]["symbol"] == ["circle", "circle-open", "circle"]  # v2 was automatic
    stability = figures["stability"]
    assert stability["data"][0]["x"] == ["v1→v2", "v2→v4"]
    assert [shape["y0"] for shape in stability["layout"]["shapes"]] == [0.99]
    assert 'data-figure="curve"' in html and 'data-figure="stability"' in html
    assert "plotly.min.js" in html and "learning_curve.js" in html
    assert 'class="stop-verdict keep"' in html and "Keep labeling" in html
    assert "automatic" in html and '<span class="ci">[' in html


def test_charts_draw_undefined_kappas_as_gaps_and_the_window_mean_once_it_exists():
    pairs = [
        {"from_version": 1, "to_version": 2, "kappa": 0.5, "items": 4},
        {"from_version": 2, "to_version": 3, "kappa": None, "items": 4},
        {"from_version": 3, "to_version": 4, "kappa": 1.0, "items": 4},
        {"from_version": 4, "to_version": 5, "kappa": 0.9, "items": 4},
    ]
    fig = charts.stability_curve(pairs, threshold=0.99, window=2)
    kappas, means = fig.data[0], fig.data[1]
    assert list(kappas.y) == [0.5, None, 1.0, 0.9]
    assert list(means.y) == [None, None, None, pytest.approx(0.95)]
    assert fig.layout.shapes[0].y0 == 0.99
    empty = charts.learning_curve([])
    assert list(empty.data[0].x) == []


def test_retrain_now_on_the_api_starts_then_coalesces(roberta_project, owner, admin_member, api_client_for):
    first = api_client_for(owner).post(RETRAIN_API)
    assert first.status_code == 202, first.content
    body = first.json()
    assert (body["action"], body["running"]) == ("started", None)
    run = body["retraining"]
    assert (run["trigger"], run["status"], run["version"], run["requested_by"], run["requests"]) == (
        "manual",
        "running",
        1,
        "owner",
        1,
    )
    second = api_client_for(admin_member).post(RETRAIN_API)
    assert second.status_code == 202
    body = second.json()
    assert body["action"] == "coalesced" and body["running"]["version"] == 1
    assert (body["retraining"]["status"], body["retraining"]["requested_by"]) == ("pending", "projadmin")
    assert "starts when v1 and its pool scoring finish" in body["message"]
    assert api_client_for(owner).post(RETRAIN_API).json()["retraining"]["requests"] == 2
    assert ModelVersion.objects.count() == 1


def test_retrain_now_without_data_answers_400_and_changes_nothing(project, owner, api_client_for, client_for):
    response = api_client_for(owner).post(RETRAIN_API)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_enough_data"
    page = client_for(owner).post(RETRAIN_PAGE, follow=True)
    assert "Not enough labelled data to train" in page.content.decode()
    assert not Retraining.objects.exists() and not ModelVersion.objects.exists()


def test_the_models_page_shows_retrain_now_and_the_retraining_state(
    roberta_project, owner, reviewer, client_for, api_client_for
):
    assert "Retrain now" not in client_for(reviewer).get(VERSIONS).content.decode()
    page = client_for(owner).post(RETRAIN_PAGE, follow=True)
    html = page.content.decode()
    assert "Retraining started: v1 is queued for training" in html
    assert 'class="retraining-running"' in html and "Retrain now" in html
    client_for(owner).post(RETRAIN_PAGE)
    html = client_for(reviewer).get(VERSIONS).content.decode()
    assert "follow-up queued" in html and "1 request coalesced" in html
    assert "Retrain now" not in html and "Learning curve" in html
    # An automatic version is marked as such, and its creator is the system.
    version = ModelVersion.objects.get(number=1)
    ModelVersion.objects.filter(pk=version.pk).update(created_by=None)
    Retraining.objects.filter(version=version).update(trigger="auto")
    html = client_for(reviewer).get(VERSIONS).content.decode()
    assert 'class="badge badge-auto"' in html and '<span class="muted">system</span>' in html
    detail = client_for(reviewer).get(reverse("modeling:version-detail", kwargs={**SLUG, "number": 1}))
    assert "automatic retraining" in detail.content.decode()


def test_a_failed_retraining_is_shown_with_its_reason(roberta_project, reviewer, client_for):
    Retraining.objects.create(
        project=roberta_project, trigger="auto", status="failed", error="Could not start: no eval data."
    )
    html = client_for(reviewer).get(VERSIONS).content.decode()
    assert "Could not start: no eval data." in html and "not retried automatically" in html


def test_the_versions_api_marks_automatic_versions(api_client_for, reviewer, history):
    response = api_client_for(reviewer).get(reverse("api-model-version-list", kwargs=SLUG))
    assert [(v["number"], v["automatic"], v["created_by"]) for v in response.json()] == [
        (4, False, None),
        (3, False, None),
        (2, True, None),
        (1, False, None),
    ]
    detail = api_client_for(reviewer).get(reverse("api-model-version-detail", kwargs={**SLUG, "number": 2}))
    assert detail.json()["automatic"] is True

"""The labeling page as the server renders it: the held item escaped, keys, suggestion, progress, no side effects."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Annotation, Item, Label, Lease, Project
from labeling.services.queue import annotation_submit, annotation_undo, queue_hold, queue_next
from labeling.views.label import label_hotkeys
from tests.factories import ProjectFactory
from tests.labeling.test_queue import make_queue

pytestmark = pytest.mark.django_db
URL = "/projects/acme-sentiment/label/"


def config_of(response) -> dict:
    match = re.search(rb'<script id="label-config" type="application/json">(.*?)</script>', response.content, re.S)
    assert match, "the page carries its configuration as a JSON script"
    return json.loads(match.group(1))


def item_text_div(html: str) -> str:
    match = re.search(r'<div class="item-text"[^>]*>.*?</div>', html, re.S)
    assert match
    return match.group(0)


def test_the_held_item_is_shown_escaped_with_dir_auto(project, reviewer, client_for):
    (item,) = make_queue(project, [0.5])
    hostile = '<script>alert("x")</script> مرحبا بالعالم <b>bold</b>'
    Item.objects.filter(pk=item.pk).update(text=hostile)
    queue_next(project=project, user=reviewer)
    response = client_for(reviewer).get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    div = item_text_div(html)
    assert 'dir="auto"' in div
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; مرحبا بالعالم &lt;b&gt;bold&lt;/b&gt;" in div
    assert '<script>alert("x")' not in html and "<b>bold</b>" not in html
    # The same text in the script's JSON is escaped for a <script> element too.
    assert config_of(response)["held"]["next"]["item"]["text"] == hostile
    assert "\\u003Cscript\\u003E" in html


def test_the_labels_are_listed_with_their_hotkeys(project, reviewer, client_for):
    response = client_for(reviewer).get(URL)
    html = response.content.decode()
    buttons = re.findall(r'<button type="button" class="label-button[^"]*" data-label-id="(\d+)" data-key="(.?)"', html)
    assert [key for _, key in buttons] == ["1", "2", "3"]
    for key, name in (("1", "negative"), ("2", "neutral"), ("3", "positive")):
        assert f'<kbd>{key}</kbd> <span dir="auto">{name}</span>' in html
        assert f'<tr><td><kbd>{key}</kbd></td><td>Label <span dir="auto">{name}</span> and submit</td></tr>' in html
    assert "<kbd>Enter</kbd></td><td>Accept the model" in html
    assert [label["key"] for label in config_of(response)["labels"]] == ["1", "2", "3"]


def test_hotkeys_use_the_labels_own_keys_else_digits_by_order_and_never_the_pages_keys():
    project = ProjectFactory(labels=["a", "b", "c", "d"])
    labels = list(project.labels.all())
    keys = ["", "x", "", "S"]  # "s" is the page's skip key: that label falls back to a digit
    for label, key in zip(labels, keys, strict=True):
        Label.objects.filter(pk=label.pk).update(hotkey=key)
    assert [key for _, key in label_hotkeys(project.labels.all())] == ["1", "x", "3", "4"]
    Label.objects.filter(pk=labels[0].pk).update(hotkey="3")
    # Label c's position (3) is taken by label a's own key: it gets the first free digit.
    assert [key for _, key in label_hotkeys(project.labels.all())] == ["3", "x", "1", "4"]


def test_labels_past_the_ninth_without_a_key_get_none():
    project = ProjectFactory(labels=[f"label{i}" for i in range(9)])
    for i in (9, 10):
        Label.objects.create(project=project, name=f"label{i}", order=i)
    Label.objects.filter(project=project).update(hotkey="")
    keys = [key for _, key in label_hotkeys(project.labels.all())]
    assert keys == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "", ""]


def test_the_suggestion_staleness_and_markers_are_shown(project, reviewer, client_for):
    (item,) = make_queue(project, [0.5])
    positive = project.labels.get(name="positive")
    Item.objects.filter(pk=item.pk).update(
        predicted_label=positive,
        predicted_confidence=0.834,
        predicted_by_version=7,
        ranked_by_version=7,
        is_random_pick=True,
        overlap_target=2,
    )
    Project.objects.filter(pk=project.pk).update(labels_since_training=140)
    queue_next(project=project, user=reviewer)
    html = client_for(reviewer).get(URL).content.decode()
    assert re.search(
        r'data-field="suggestion-label" dir="auto">positive</strong>\s*<span data-field="suggestion-confidence">83%',
        html,
    )
    assert "ranked by model v7 · 140 labels since" in html
    assert re.search(r'<span class="badge badge-audit" data-field="random"[^>]*>random audit', html)
    assert 'data-field="random" title="Drawn at random, not by the model: keeps accuracy estimates unbiased">' in html
    assert re.search(r'data-field="overlap" title="[^"]*">overlap', html)  # shown: no hidden attribute
    assert re.search(rf'class="label-button suggested" data-label-id="{positive.pk}"', html)


def test_without_a_held_item_the_page_leases_nothing_and_hides_the_markers(project, reviewer, client_for):
    make_queue(project, [0.5, 0.4])
    response = client_for(reviewer).get(URL)
    assert response.status_code == 200
    assert Lease.objects.count() == 0  # a GET is safe: the page's script asks the queue API
    html = response.content.decode()
    assert '<article id="label-item" class="card label-item" data-item-id="" hidden>' in html
    assert re.search(r'data-field="random" title="[^"]*" hidden>', html)
    config = config_of(response)
    assert config["held"] == {"next": None, "prefetched": None, "remaining": 2}
    assert config["prefetch"] is True
    assert config_of(client_for(reviewer).get(URL + "?prefetch=0"))["prefetch"] is False


def test_the_config_names_the_api_and_carries_both_held_items(project, reviewer, client_for):
    _first, _second = make_queue(project, [0.9, 0.8])
    held = queue_hold(project=project, user=reviewer, count=2)
    config = config_of(client_for(reviewer).get(URL))
    assert [config["held"]["next"]["lease"]["id"], config["held"]["prefetched"]["lease"]["id"]] == [
        str(lease.pk) for lease in held
    ]
    assert config["urls"]["next"] == "/api/v1/projects/acme-sentiment/queue/next"
    assert config["urls"]["undo"] == "/api/v1/projects/acme-sentiment/annotations/0/undo"
    assert config["heartbeat_seconds"] == 60  # the default 10-minute TTL, renewed every minute
    assert config["csrf"]


def test_labeled_today_counts_the_reviewers_unretracted_labels_since_midnight(project, reviewer, client_for):
    make_queue(project, [0.9, 0.8, 0.7])
    label = project.labels.first()
    made = []
    for _ in range(3):
        lease = queue_next(project=project, user=reviewer)
        item = Item.objects.get(pk=lease.item_id)
        made.append(annotation_submit(project=project, user=reviewer, item=item, label=label, lease_id=lease.pk))
    annotation_undo(project=project, user=reviewer, annotation=made[-1])
    Annotation.objects.filter(pk=made[0].pk).update(created_at=timezone.now() - timedelta(days=2))
    config = config_of(client_for(reviewer).get(URL))
    assert config["labeled_today"] == 1


def test_the_overview_links_to_the_labeling_page(project, reviewer, client_for):
    make_queue(project, [0.9, 0.8])
    html = client_for(reviewer).get("/projects/acme-sentiment/").content.decode()
    assert (
        '<a class="button primary start-labeling" href="/projects/acme-sentiment/label/">Start labeling (2 queued)</a>'
        in html
    )


def test_an_outsider_gets_404_and_an_anonymous_visitor_the_login_page(project, outsider, client_for):
    assert client_for(outsider).get(URL).status_code == 404
    response = client_for(None).get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")

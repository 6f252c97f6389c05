"""Review: adjudication through the gold rules, the review API's contract and the review page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import Annotation, Item, Label, Project
from labeling.services.queue import annotation_submit, annotation_undo, queue_next, queue_set_priorities
from labeling.services.review import label_reference, review_resolve
from labeling.views.review import label_keys
from tests.factories import ItemFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.labeling.test_queue import assert_counts_true
from webapp.errors import Conflict, NotFound, ValidationFailed

pytestmark = pytest.mark.django_db


# --- building annotations through the services ------------------------------------------------


def reviewer_called(project: Project, name: str):
    user = UserFactory(username=name)
    MembershipFactory(project=project, user=user)
    return user


def label_item(project: Project, votes, *, overlap: int | None = None, text: str | None = None) -> Item:
    """A new item, queued alone and labeled through the queue by each ``(user, label name[, unclear[, note]])``."""
    item = ItemFactory(project=project, **({"text": text} if text else {}))
    project.counts.add({"items": 1, "unlabeled": 1})
    queue_set_priorities(project=project, ranked=[(item.pk, 1.0, False)], version_number=1)
    Item.objects.filter(pk=item.pk).update(overlap_target=overlap or len(votes))
    for user, name, *extra in votes:
        lease = queue_next(project=project, user=user)
        assert lease is not None and lease.item_id == item.pk
        annotation_submit(
            project=project,
            user=user,
            item=item,
            label=project.labels.get(name=name),
            lease_id=lease.pk,
            unclear=bool(extra and extra[0]),
            note=extra[1] if len(extra) > 1 else "",
        )
    item.refresh_from_db()
    return item


def relabel(project: Project, user, item: Item, name: str) -> None:
    """Undo the reviewer's latest annotation (of ``item``) and label it again with ``name``."""
    latest = Annotation.objects.filter(user=user, kind=Annotation.Kind.LABEL).latest("id")
    assert latest.item_id == item.pk
    lease = annotation_undo(project=project, user=user, annotation=latest)
    annotation_submit(project=project, user=user, item=item, label=project.labels.get(name=name), lease_id=lease.pk)


@pytest.fixture
def team(project):
    return {name: reviewer_called(project, name) for name in ("alice", "bob", "carol")}


def label(project: Project, name: str) -> Label:
    return project.labels.get(name=name)


# --- the gold rules with adjudication -----------------------------------------------------------


def test_resolving_a_disagreement_makes_the_chosen_label_gold_by_adjudication(project, team, owner):
    item = label_item(project, [(team["alice"], "positive"), (team["bob"], "negative")])
    assert (item.status, item.gold_label_id) == (Item.Status.IN_REVIEW, None)
    resolution = review_resolve(project=project, user=owner, item_id=item.pk, label="neutral", note=" sarcasm ")
    item.refresh_from_db()
    assert (item.status, item.gold_label.name, item.gold_source) == (Item.Status.GOLD, "neutral", "adjudication")
    stored = Annotation.objects.get(kind=Annotation.Kind.RESOLVE)
    assert (stored.pk, stored.user, stored.item_id, stored.label.name, stored.note) == (
        resolution.pk,
        owner,
        item.pk,
        "neutral",
        "sarcasm",
    )
    assert Annotation.objects.filter(item=item, kind=Annotation.Kind.LABEL).count() == 2  # nothing overwritten
    assert Project.objects.get(pk=project.pk).labels_since_training == 1
    assert_counts_true(project)


def test_resolving_an_unclear_item_makes_it_gold(project, team, owner):
    item = label_item(project, [(team["alice"], "neutral", True, "irony?")])
    assert item.status == Item.Status.IN_REVIEW
    review_resolve(project=project, user=owner, item_id=item.pk, label="negative")
    item.refresh_from_db()
    assert (item.status, item.gold_label.name, item.gold_source) == (Item.Status.GOLD, "negative", "adjudication")
    assert_counts_true(project)


def test_an_adjudicated_item_can_be_resolved_again_and_the_latest_decides(project, team, owner, admin_member):
    item = label_item(project, [(team["alice"], "positive"), (team["bob"], "negative")])
    review_resolve(project=project, user=owner, item_id=item.pk, label="positive")
    review_resolve(project=project, user=admin_member, item_id=item.pk, label="negative")
    item.refresh_from_db()
    assert (item.gold_label.name, item.gold_source) == ("negative", "adjudication")
    assert Annotation.objects.filter(kind=Annotation.Kind.RESOLVE).count() == 2
    assert Project.objects.get(pk=project.pk).labels_since_training == 1  # one new gold item, not two
    assert_counts_true(project)


def test_a_relabel_after_undo_on_an_adjudicated_single_item_keeps_the_adjudication(project, team, owner):
    """The submit's shortcut (an overlap-1 item's new label decides) must not skip over an adjudication."""
    item = label_item(project, [(team["alice"], "positive", True)])  # unclear: sent to review
    review_resolve(project=project, user=owner, item_id=item.pk, label="negative")
    relabel(project, team["alice"], item, "neutral")
    item.refresh_from_db()
    assert (item.status, item.gold_label.name, item.gold_source) == ("gold", "negative", "adjudication")
    assert_counts_true(project)


@pytest.mark.parametrize("state", ["single gold", "agreement gold", "unlabeled", "half labeled"])
def test_resolving_an_item_not_in_review_is_a_conflict_and_writes_nothing(project, team, owner, state):
    if state == "single gold":
        item = label_item(project, [(team["alice"], "positive")])
    elif state == "agreement gold":
        item = label_item(project, [(team["alice"], "positive"), (team["bob"], "positive")])
    elif state == "unlabeled":
        item = ItemFactory(project=project)
    else:
        item = label_item(project, [(team["alice"], "positive")], overlap=2)
    before = (item.status, item.gold_label_id, item.gold_source)
    with pytest.raises(Conflict, match="not in review"):
        review_resolve(project=project, user=owner, item_id=item.pk, label="negative")
    item.refresh_from_db()
    assert (item.status, item.gold_label_id, item.gold_source) == before
    assert not Annotation.objects.filter(kind=Annotation.Kind.RESOLVE).exists()


def test_a_label_outside_the_project_is_refused_without_a_write(project, team, owner):
    item = label_item(project, [(team["alice"], "positive"), (team["bob"], "negative")])
    foreign = ProjectFactory(slug="elsewhere").labels.first()
    for bad in ("sarcastic", foreign.pk, foreign):
        with pytest.raises(ValidationFailed, match="use one of: negative, neutral, positive"):
            review_resolve(project=project, user=owner, item_id=item.pk, label=bad)
    item.refresh_from_db()
    assert item.status == Item.Status.IN_REVIEW
    assert not Annotation.objects.filter(kind=Annotation.Kind.RESOLVE).exists()


def test_an_item_of_another_project_is_not_found(project, other_project, owner):
    stranger = ItemFactory(project=other_project)
    with pytest.raises(NotFound):
        review_resolve(project=project, user=owner, item_id=stranger.pk, label="positive")


def test_labels_are_referenced_by_name_first_then_by_id():
    stars = ProjectFactory(slug="stars", labels=["1", "2", "3", "4", "5"])
    one, two = stars.labels.get(name="1"), stars.labels.get(name="2")
    assert label_reference(project=stars, value="2") == two.pk  # the name "2", whatever its id
    assert label_reference(project=stars, value=one.pk) == one.pk  # a JSON number is an id
    assert label_reference(project=stars, value=str(two.pk + 1000)) == two.pk + 1000  # digits: an id
    assert label_reference(project=stars, value="nope") == "nope"


def test_label_keys_follow_hotkeys_then_positions_and_never_take_navigation_keys():
    labels = [Label(name="a", hotkey="3"), Label(name="b", hotkey="j"), Label(name="c"), Label(name="d", hotkey="x")]
    keys = {choice["label"].name: choice["key"] for choice in label_keys(labels)}
    # "a" keeps its hotkey 3; "b"'s hotkey j navigates, so it gets its position 2; "c" would be 3, taken.
    assert keys == {"a": "3", "b": "2", "c": "", "d": "x"}


# --- the review API -------------------------------------------------------------------------------


def review_url(project) -> str:
    return reverse("api-review-list", kwargs={"slug": project.slug})


def resolve_url(project, item_id: int) -> str:
    return reverse("api-review-resolve", kwargs={"slug": project.slug, "item_id": item_id})


@pytest.fixture
def in_review(project, team):
    """A disagreement (with a suggestion and an undone label), an unclear flag, and a gold item."""
    disagreement = label_item(project, [(team["alice"], "positive"), (team["bob"], "positive", False, "meh")])
    relabel(project, team["bob"], disagreement, "negative")
    Item.objects.filter(pk=disagreement.pk).update(
        predicted_label=label(project, "neutral"), predicted_confidence=0.55, predicted_by_version=4
    )
    unclear = label_item(project, [(team["carol"], "neutral", True, "is this sarcasm?")])
    gold = label_item(project, [(team["alice"], "negative")])
    return {"disagreement": disagreement, "unclear": unclear, "gold": gold}


def test_the_review_list_shows_items_in_review_with_standing_annotations(project, in_review, owner, api_client_for):
    response = api_client_for(owner).get(review_url(project))
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    first, second = body["results"]
    assert [first["id"], second["id"]] == [in_review["disagreement"].pk, in_review["unclear"].pk]
    assert set(first) == {"id", "text", "language", "overlap_target", "reasons", "suggestion", "annotations"}
    assert first["reasons"] == ["disagreement"] and second["reasons"] == ["unclear"]
    # bob's undone "positive" is not shown: each reviewer's standing label only.
    assert [(a["reviewer"], a["label"], a["note"], a["unclear"]) for a in first["annotations"]] == [
        ("alice", "positive", "", False),
        ("bob", "negative", "", False),
    ]
    assert set(first["annotations"][0]) == {
        "id",
        "reviewer",
        "label",
        "label_id",
        "note",
        "unclear",
        "seconds_spent",
        "created_at",
    }
    assert first["suggestion"] == {
        "label": "neutral",
        "label_id": label(project, "neutral").pk,
        "confidence": 0.55,
        "version": 4,
    }
    assert second["suggestion"] is None
    assert [(a["reviewer"], a["note"], a["unclear"]) for a in second["annotations"]] == [
        ("carol", "is this sarcasm?", True)
    ]


def test_the_review_list_pages_by_keyset_with_constant_queries(project, team, owner, api_client_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ids = [label_item(project, [(team["carol"], "neutral", True)]).pk for _ in range(5)]
    client = api_client_for(owner)
    seen, url, params = [], review_url(project), {"page_size": 2}
    while url:
        with CaptureQueriesContext(connection) as queries:
            body = client.get(url, params).json()
        sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
        assert "OFFSET" not in sql and "COUNT(" not in sql
        # auth + membership + project, the page of items, their annotations (users and labels joined)
        assert len(queries.captured_queries) <= 6, [q["sql"] for q in queries.captured_queries]
        seen += [row["id"] for row in body["results"]]
        url, params = body["next"], None
    assert seen == ids


def test_a_resolution_through_the_api_is_201_and_decides_the_gold_label(project, in_review, owner, api_client_for):
    item = in_review["disagreement"]
    response = api_client_for(owner).post(
        resolve_url(project, item.pk), {"label": "negative", "note": "bob is right"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    stored = Annotation.objects.get(kind=Annotation.Kind.RESOLVE)
    assert body == {
        "id": stored.pk,
        "item": item.pk,
        "kind": "resolve",
        "reviewer": "owner",
        "label": "negative",
        "label_id": label(project, "negative").pk,
        "note": "bob is right",
        "created_at": body["created_at"],
    }
    item.refresh_from_db()
    assert (item.status, item.gold_label.name, item.gold_source) == ("gold", "negative", "adjudication")
    listed = api_client_for(owner).get(review_url(project)).json()["results"]
    assert [row["id"] for row in listed] == [in_review["unclear"].pk]


def test_a_label_id_as_a_json_number_resolves(project, in_review, admin_member, api_client_for):
    item = in_review["unclear"]
    neutral = label(project, "neutral")
    response = api_client_for(admin_member).post(resolve_url(project, item.pk), {"label": neutral.pk}, format="json")
    assert response.status_code == 201, response.content
    item.refresh_from_db()
    assert item.gold_label == neutral


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "label"),
        ({"label": ""}, "label"),
        ({"label": "positive", "colour": "red"}, "colour"),
        ({"label": "positive", "note": "x" * 5001}, "note"),
        ({"label": True}, "label"),
    ],
)
def test_a_malformed_body_is_a_400_naming_the_field(project, in_review, owner, api_client_for, payload, field):
    response = api_client_for(owner).post(resolve_url(project, in_review["disagreement"].pk), payload, format="json")
    assert field in error(response, 400, "validation_error")["details"]
    assert not Annotation.objects.filter(kind=Annotation.Kind.RESOLVE).exists()


def test_an_unknown_label_is_a_400_listing_the_labels(project, in_review, owner, api_client_for):
    response = api_client_for(owner).post(
        resolve_url(project, in_review["disagreement"].pk), {"label": "sarcastic"}, format="json"
    )
    assert "use one of: negative, neutral, positive" in error(response, 400, "validation_error")["message"]
    assert not Annotation.objects.filter(kind=Annotation.Kind.RESOLVE).exists()


def test_a_reviewer_may_neither_list_nor_resolve(project, in_review, team, api_client_for):
    client = api_client_for(team["alice"])
    error(client.get(review_url(project)), 403, "permission_denied")
    response = client.post(resolve_url(project, in_review["disagreement"].pk), {"label": "positive"}, format="json")
    error(response, 403, "permission_denied")
    assert not Annotation.objects.filter(kind=Annotation.Kind.RESOLVE).exists()


def test_an_outsider_gets_404_as_for_a_missing_project(project, in_review, outsider, api_client_for):
    client = api_client_for(outsider)
    error(client.get(review_url(project)), 404, "not_found")
    response = client.post(resolve_url(project, in_review["disagreement"].pk), {"label": "positive"}, format="json")
    error(response, 404, "not_found")
    assert not Annotation.objects.filter(kind=Annotation.Kind.RESOLVE).exists()


def test_an_unknown_item_or_one_of_another_project_is_a_404(project, other_project, owner, api_client_for):
    stranger = ItemFactory(project=other_project)
    client = api_client_for(owner)
    for item_id in (stranger.pk, stranger.pk + 10_000):
        response = client.post(resolve_url(project, item_id), {"label": "positive"}, format="json")
        assert f"Item {item_id} not found" in error(response, 404, "not_found")["message"]


def test_resolving_an_item_not_in_review_through_the_api_is_a_409(project, in_review, owner, api_client_for):
    response = api_client_for(owner).post(
        resolve_url(project, in_review["gold"].pk), {"label": "positive"}, format="json"
    )
    assert "not in review" in error(response, 409, "conflict")["message"]
    in_review["gold"].refresh_from_db()
    assert (in_review["gold"].gold_label.name, in_review["gold"].gold_source) == ("negative", "single")


def test_anonymous_callers_get_401(project, in_review, api_client_for):
    client = api_client_for(None)
    assert client.get(review_url(project)).status_code == 401
    assert client.post(resolve_url(project, in_review["gold"].pk), {"label": "x"}, format="json").status_code == 401


def test_the_endpoints_are_documented(client):
    schema = client.get(reverse("schema"), {"format": "json"}).json()
    paths = schema["paths"]
    assert set(paths["/api/v1/projects/{slug}/review"]) - {"parameters"} == {"get"}
    resolve = paths["/api/v1/projects/{slug}/review/{item_id}/resolve"]["post"]
    assert {"201", "400", "403", "404", "409"} <= set(resolve["responses"])
    assert resolve["summary"] and paths["/api/v1/projects/{slug}/agreement"]["get"]["summary"]


# --- the review page -----------------------------------------------------------------------------


def page_url(project) -> str:
    return reverse("labeling:review", kwargs={"slug": project.slug})


def test_the_review_page_shows_each_item_side_by_side(project, team, owner, client_for):
    item = label_item(
        project,
        [(team["alice"], "positive", False, "<b>loud</b>"), (team["bob"], "negative", True, "unsure")],
        text='<script>alert("x")</script> مرحبا',
    )
    Item.objects.filter(pk=item.pk).update(predicted_label=label(project, "neutral"), predicted_confidence=0.73)
    response = client_for(owner).get(page_url(project))
    assert response.status_code == 200
    page = response.content.decode()
    assert '<div class="review-text" dir="auto">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; مرحبا</div>' in page
    assert "<script>alert" not in page and "<b>loud</b>" not in page and "&lt;b&gt;loud&lt;/b&gt;" in page
    assert "disagreement</span>" in page and "flagged unclear</span>" in page
    assert ">alice<" in page and ">bob<" in page and "<strong>unclear</strong>" in page
    assert "Model suggestion:" in page and "0.73" in page
    for key, name in (("1", "negative"), ("2", "neutral"), ("3", "positive")):
        assert f'data-label-name="{name}"' in page and f'data-key="{key}"><kbd>{key}</kbd>' in page
    assert f'data-resolve-url="{resolve_url(project, item.pk)}"' in page


def test_the_review_page_says_when_nothing_is_in_review(project, owner, client_for):
    page = client_for(owner).get(page_url(project)).content.decode()
    assert "Nothing to review" in page and "No adjudications yet." in page


def test_a_reviewer_gets_403_on_the_review_page(project, reviewer, client_for):
    assert client_for(reviewer).get(page_url(project)).status_code == 403


def test_the_form_resolves_without_javascript_and_lists_the_resolution(project, team, owner, client_for):
    item = label_item(project, [(team["alice"], "positive"), (team["bob"], "negative")])
    client = client_for(owner)
    response = client.post(page_url(project), {"item": item.pk, "label": label(project, "positive").pk, "note": "ok"})
    assert response.status_code == 302 and response["Location"] == page_url(project)
    item.refresh_from_db()
    assert (item.gold_label.name, item.gold_source) == ("positive", "adjudication")
    page = client.get(page_url(project)).content.decode()
    assert f"Item {item.pk} resolved as positive." in page
    recent = page[page.index('id="resolved-rows"') :]
    assert "<td title=" in recent and ">positive<" in recent and "<td>owner</td>" in recent and ">ok<" in recent


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({}, 400, "Choose an item and a label"),
        ({"item": "abc", "label": "positive"}, 400, "item must be an item id"),
        ({"label": "positive", "item": "<gold>"}, 409, "not in review"),
        ({"label": "sarcastic", "item": "<gold>"}, 400, "use one of"),
        ({"label": "positive", "item": "999999"}, 404, "not found in this project"),
    ],
)
def test_a_bad_form_post_shows_the_error_with_its_status(project, team, owner, client_for, data, status, message):
    gold = label_item(project, [(team["alice"], "positive")])
    data = {key: str(gold.pk) if value == "<gold>" else value for key, value in data.items()}
    response = client_for(owner).post(page_url(project), data)
    assert response.status_code == status
    assert message in response.content.decode()
    assert not Annotation.objects.filter(kind=Annotation.Kind.RESOLVE).exists()


def test_the_review_page_walks_pages_by_keyset(project, team, owner, client_for, monkeypatch):
    monkeypatch.setattr("labeling.views.review.REVIEW_PAGE_SIZE", 2)
    ids = [label_item(project, [(team["carol"], "neutral", True)]).pk for _ in range(3)]
    client = client_for(owner)
    first = client.get(page_url(project)).content.decode()
    assert f'id="item-{ids[0]}"' in first and f'id="item-{ids[1]}"' in first and f'id="item-{ids[2]}"' not in first
    assert f'href="?after={ids[1]}"' in first
    second = client.get(page_url(project), {"after": ids[1]}).content.decode()
    assert f'id="item-{ids[2]}"' in second and f'id="item-{ids[0]}"' not in second
    assert f'name="after" value="{ids[1]}"' in second
    assert client.get(page_url(project), {"after": "x"}).status_code == 400

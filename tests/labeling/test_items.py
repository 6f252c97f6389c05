"""The item list: filters, keyset pages both ways, escaping, and the same through the API."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from labeling.item_queries import ItemFilters, items_filtered, keyset_page
from labeling.models import Item
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


def page_url(project, **params) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return reverse("labeling:item-list", kwargs={"slug": project.slug}) + (f"?{query}" if query else "")


def ids_on(page: str) -> list[int]:
    return [int(found) for found in re.findall(r"<tr>\s*<td>(\d+)</td>", page)]


@pytest.fixture
def mixed(project):
    negative, _neutral, positive = project.labels.all()
    return {
        "gold_en": ItemFactory(
            project=project, text="Great product", language="en", split="train", status="gold", gold_label=positive
        ),
        "gold_de": ItemFactory(
            project=project, text="Schlechtes Produkt", language="de", split="eval", status="gold", gold_label=negative
        ),
        "queued": ItemFactory(project=project, text="It arrived", language="en", status="queued"),
        "plain": ItemFactory(project=project, text="PRODUCT recall notice", language="fr"),
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["gold_en", "gold_de", "queued", "plain"]),
        ({"status": "gold"}, ["gold_en", "gold_de"]),
        ({"label": "positive"}, ["gold_en"]),
        ({"label": "none"}, ["queued", "plain"]),
        ({"language": "en"}, ["gold_en", "queued"]),
        ({"split": "eval"}, ["gold_de"]),
        ({"split": "pool"}, ["queued", "plain"]),
        ({"q": "product"}, ["gold_en", "plain"]),
        ({"q": "product", "language": "en"}, ["gold_en"]),
        ({"status": "gold", "split": "train", "label": "negative"}, []),
    ],
)
def test_filters_select_matching_items(project, mixed, reviewer, client_for, params, expected):
    response = client_for(reviewer).get(page_url(project, **params))
    assert response.status_code == 200
    assert ids_on(response.content.decode()) == [mixed[name].pk for name in expected]


def test_items_of_other_projects_never_show(project, other_project, reviewer, client_for):
    ItemFactory(project=other_project, text="secret elsewhere")
    mine = ItemFactory(project=project, text="mine")
    assert ids_on(client_for(reviewer).get(page_url(project)).content.decode()) == [mine.pk]


def test_keyset_pages_walk_forward_and_back(project, reviewer, client_for):
    items = ItemFactory.create_batch(120, project=project)
    ids = [item.pk for item in items]
    client = client_for(reviewer)

    first = client.get(page_url(project)).content.decode()
    assert ids_on(first) == ids[:50]
    assert f"after={ids[49]}" in first and "before=" not in first

    second = client.get(page_url(project, after=ids[49])).content.decode()
    assert ids_on(second) == ids[50:100]
    assert f"after={ids[99]}" in second and f"before={ids[50]}" in second

    third = client.get(page_url(project, after=ids[99])).content.decode()
    assert ids_on(third) == ids[100:]
    assert "after=" not in third and f"before={ids[100]}" in third

    back = client.get(page_url(project, before=ids[100])).content.decode()
    assert ids_on(back) == ids[50:100]
    back_again = client.get(page_url(project, before=ids[50])).content.decode()
    assert ids_on(back_again) == ids[:50]
    assert "before=" not in back_again


def test_pager_links_keep_the_filters(project, reviewer, client_for):
    ItemFactory.create_batch(60, project=project, language="en")
    page = client_for(reviewer).get(page_url(project, language="en")).content.decode()
    assert re.search(r'href="\?language=en&amp;after=\d+"', page)


def test_a_page_costs_no_count_and_no_offset(project, reviewer, client_for):
    ItemFactory.create_batch(60, project=project, status=Item.Status.UNLABELED)
    with CaptureQueriesContext(connection) as queries:
        response = client_for(reviewer).get(page_url(project, status="unlabeled", after=5, q="text"))
    assert response.status_code == 200
    item_queries = [q["sql"].upper() for q in queries.captured_queries if "LABELING_ITEM" in q["sql"].upper()]
    assert item_queries, "the page must read items"
    assert not [sql for sql in item_queries if "COUNT(" in sql or "OFFSET" in sql]
    assert len(item_queries) <= 2  # the page (+1 row) and one EXISTS probe for the previous link


def test_total_comes_from_the_counters(project, reviewer, client_for):
    project.counts.add({"items": 999_999, "unlabeled": 500_000})
    ItemFactory(project=project)
    page = client_for(reviewer).get(page_url(project)).content.decode()
    assert "999999 items" in page
    assert "500000 items match" in client_for(reviewer).get(page_url(project, status="unlabeled")).content.decode()


def test_text_is_escaped_and_direction_is_automatic(project, reviewer, client_for):
    ItemFactory(project=project, text='<script>alert("x")</script> مرحبا', external_id="<b>ext</b>")
    page = client_for(reviewer).get(page_url(project)).content.decode()
    assert "<script>alert" not in page and "<b>ext</b>" not in page
    assert '<td class="text-cell" dir="auto">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; مرحبا</td>' in page


def test_long_texts_are_truncated_in_the_list(project, reviewer, client_for):
    ItemFactory(project=project, text="word " * 2000)
    page = client_for(reviewer).get(page_url(project)).content.decode()
    assert "word " * 70 in page and "word " * 100 not in page


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "bogus"}, "Unknown status &#x27;bogus&#x27;"),
        ({"split": "holdout"}, "Unknown split"),
        ({"label": "nope"}, "This project has no label &#x27;nope&#x27;."),
        ({"after": "abc"}, "after must be an item id (a positive whole number)."),
        ({"before": "-3"}, "before must be an item id (a positive whole number)."),
        ({"q": "x" * 201}, "A search is at most 200 characters."),
    ],
)
def test_bad_filters_answer_400_with_a_message(project, reviewer, client_for, params, message):
    response = client_for(reviewer).get(page_url(project, **params))
    assert response.status_code == 400
    assert message in response.content.decode()


def test_keyset_page_before_the_start_falls_back_to_the_first_page(project):
    items = ItemFactory.create_batch(3, project=project)
    page = keyset_page(items_filtered(project=project, filters=ItemFilters()), before=items[0].pk, size=2)
    assert [item.pk for item in page.items] == [items[0].pk, items[1].pk]
    assert (page.has_previous, page.has_next) == (False, True)


def test_keyset_page_after_the_end_is_empty_but_can_go_back(project):
    items = ItemFactory.create_batch(3, project=project)
    page = keyset_page(items_filtered(project=project, filters=ItemFilters()), after=items[-1].pk, size=2)
    assert page.items == [] and page.has_previous and not page.has_next


# --- API -----------------------------------------------------------------------------------


def api_url(project) -> str:
    return reverse("api-item-list", kwargs={"slug": project.slug})


def test_api_returns_the_documented_fields(project, mixed, reviewer, api_client_for):
    body = api_client_for(reviewer).get(api_url(project), {"status": "gold"}).json()
    assert set(body) == {"next", "previous", "results"}
    first = body["results"][0]
    assert set(first) == {
        "id",
        "external_id",
        "text",
        "language",
        "split",
        "status",
        "gold_label",
        "predicted_label",
        "predicted_confidence",
        "predicted_by_version",
        "metadata",
        "created_at",
    }
    assert [(r["id"], r["gold_label"]) for r in body["results"]] == [
        (mixed["gold_en"].pk, "positive"),
        (mixed["gold_de"].pk, "negative"),
    ]
    plain = api_client_for(reviewer).get(api_url(project), {"label": "none", "q": "recall"}).json()["results"]
    assert [(r["id"], r["gold_label"]) for r in plain] == [(mixed["plain"].pk, None)]


def test_api_cursor_pages_cover_every_item_once_in_order(project, reviewer, api_client_for):
    ids = [item.pk for item in ItemFactory.create_batch(23, project=project)]
    client = api_client_for(reviewer)
    seen, url, params = [], api_url(project), {"page_size": 10}
    while url:
        body = client.get(url, params).json()
        seen += [row["id"] for row in body["results"]]
        url, params = body["next"], None
    assert seen == ids
    last = client.get(api_url(project), {"page_size": 10}).json()
    back = client.get(client.get(last["next"]).json()["previous"]).json()
    assert [row["id"] for row in back["results"]] == ids[:10]


def test_api_bad_filter_is_a_400_naming_the_parameter(project, reviewer, api_client_for):
    response = api_client_for(reviewer).get(api_url(project), {"status": "bogus", "split": "x"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert set(response.json()["error"]["details"]) == {"status", "split"}


# --- the suggestion's confidence ------------------------------------------------------------


@pytest.fixture
def scored(project):
    negative, neutral, positive = project.labels.all()
    return {
        "sure": ItemFactory(project=project, text="sure", predicted_label=positive, predicted_confidence=0.97),
        "edge": ItemFactory(project=project, text="edge", predicted_label=neutral, predicted_confidence=0.5),
        "unsure": ItemFactory(
            project=project, text="unsure", predicted_label=negative, predicted_confidence=0.34, predicted_by_version=7
        ),
        "unscored": ItemFactory(project=project, text="unscored"),
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"min_confidence": "0.5"}, ["sure", "edge"]),
        ({"max_confidence": "0.5"}, ["edge", "unsure"]),
        ({"min_confidence": "0.4", "max_confidence": "0.6"}, ["edge"]),
        ({"min_confidence": "0", "max_confidence": "1"}, ["sure", "edge", "unsure"]),
        ({"min_confidence": "0.5", "max_confidence": "0.5"}, ["edge"]),
        ({"min_confidence": "", "max_confidence": ""}, ["sure", "edge", "unsure", "unscored"]),
        ({"min_confidence": "0.3", "q": "sure"}, ["sure", "unsure"]),
    ],
)
def test_the_confidence_range_filters_on_the_suggestion(
    project, scored, reviewer, client_for, api_client_for, params, expected
):
    page = client_for(reviewer).get(page_url(project, **params))
    assert page.status_code == 200
    assert ids_on(page.content.decode()) == [scored[name].pk for name in expected]
    body = api_client_for(reviewer).get(api_url(project), params).json()
    assert [row["id"] for row in body["results"]] == [scored[name].pk for name in expected]


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"min_confidence": "high"}, {"min_confidence"}),
        ({"max_confidence": "1.5"}, {"max_confidence"}),
        ({"min_confidence": "-0.1"}, {"min_confidence"}),
        ({"min_confidence": "nan"}, {"min_confidence"}),
        ({"max_confidence": "inf"}, {"max_confidence"}),
        ({"min_confidence": "0.8", "max_confidence": "0.2"}, {"min_confidence"}),
        ({"min_confidence": "2", "max_confidence": "x"}, {"min_confidence", "max_confidence"}),
    ],
)
def test_a_bad_confidence_range_is_a_400_naming_it(
    project, scored, reviewer, client_for, api_client_for, params, fields
):
    response = api_client_for(reviewer).get(api_url(project), params)
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == fields
    page = client_for(reviewer).get(page_url(project, **params))
    assert page.status_code == 400
    for message in response.json()["error"]["details"].values():
        assert message.replace("'", "&#x27;") in page.content.decode()


def test_the_confidence_messages_say_what_to_do(project, reviewer, api_client_for):
    details = api_client_for(reviewer).get(api_url(project), {"min_confidence": "0.9", "max_confidence": "0.1"}).json()
    assert details["error"]["details"] == {
        "min_confidence": "min_confidence (0.9) must not exceed max_confidence (0.1)."
    }
    details = api_client_for(reviewer).get(api_url(project), {"max_confidence": "85%"}).json()
    assert details["error"]["details"] == {
        "max_confidence": "max_confidence must be a number between 0 and 1, like 0.8; got '85%'."
    }


def test_keyset_pages_keep_the_confidence_range(project, reviewer, client_for, api_client_for):
    positive = project.labels.get(name="positive")
    items = [
        ItemFactory(project=project, predicted_label=positive, predicted_confidence=0.9 if n % 2 else 0.1)
        for n in range(130)
    ]
    confident = [item.pk for item in items if item.predicted_confidence == 0.9]
    client = client_for(reviewer)
    first = client.get(page_url(project, min_confidence="0.8")).content.decode()
    assert ids_on(first) == confident[:50]
    assert f'href="?min_confidence=0.8&amp;after={confident[49]}"' in first
    second = client.get(page_url(project, min_confidence="0.8", after=confident[49])).content.decode()
    assert ids_on(second) == confident[50:]
    assert "after=" not in second.split('aria-label="Pages"')[1]
    seen, url, params = [], api_url(project), {"min_confidence": "0.8", "page_size": 20}
    while url:
        body = api_client_for(reviewer).get(url, params).json()
        seen += [row["id"] for row in body["results"]]
        url, params = body["next"], None
    assert seen == confident


def test_a_confidence_filtered_page_costs_no_count_and_no_offset(project, reviewer, client_for):
    ItemFactory.create_batch(60, project=project, predicted_confidence=0.7)
    with CaptureQueriesContext(connection) as queries:
        response = client_for(reviewer).get(page_url(project, min_confidence="0.6", max_confidence="0.8", after=5))
    assert response.status_code == 200
    item_queries = [q["sql"].upper() for q in queries.captured_queries if "LABELING_ITEM" in q["sql"].upper()]
    assert not [sql for sql in item_queries if "COUNT(" in sql or "OFFSET" in sql]
    assert len(item_queries) <= 2


def test_the_list_shows_the_suggestion_and_its_confidence(project, scored, reviewer, client_for, api_client_for):
    page = client_for(reviewer).get(page_url(project)).content.decode()
    assert ">Suggestion</th>" in page
    row = page[page.index(f"<td>{scored['unsure'].pk}</td>") :].split("</tr>")[0]
    assert '<td class="suggestion">' in row and ">negative</span>" in row
    assert '<span class="confidence">0.34</span>' in row and "v7" in row
    unscored = page[page.index(f"<td>{scored['unscored'].pk}</td>") :].split("</tr>")[0]
    assert '<td class="suggestion"><span class="muted">–</span></td>' in unscored
    results = api_client_for(reviewer).get(api_url(project), {"q": "unsure"}).json()["results"]
    assert [(r["predicted_label"], r["predicted_confidence"], r["predicted_by_version"]) for r in results] == [
        ("negative", 0.34, 7)
    ]


def test_the_confidence_filter_shows_no_total_from_the_counters(project, scored, reviewer, client_for):
    project.counts.add({"items": 4, "unlabeled": 4})
    page = client_for(reviewer).get(page_url(project, status="unlabeled", min_confidence="0.9")).content.decode()
    assert "4 items match" not in page and "Showing matching items in id order." in page

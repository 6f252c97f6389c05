"""Agreement figures are computed once per state of a project's annotations and labels, then cached.

The scenario is test_agreement_figures.py's (kappa 7/11 on four two-rater items, 13 effective annotations).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling.models import Annotation, Item
from labeling.services.agreement import agreement_cache_key, project_agreement, project_agreement_cached
from tests.labeling.test_agreement_figures import scenario  # noqa: F401  (the fixture)
from tests.labeling.test_review import label_item, relabel, reviewer_called

pytestmark = pytest.mark.django_db
API = "/api/v1/projects/acme-sentiment/agreement"
PAGE = "/projects/acme-sentiment/agreement/"


def reviewers(project) -> dict:
    return {name: reviewer_called(project, name) for name in ("dora", "emil")}


def test_a_repeat_answer_is_the_cached_one_and_costs_two_small_queries(scenario):  # noqa: F811
    first = project_agreement_cached(project=scenario)
    with CaptureQueriesContext(connection) as repeat:
        again = project_agreement_cached(project=scenario)
    assert again == first == project_agreement(project=scenario)
    assert len(repeat.captured_queries) == 2, [q["sql"] for q in repeat.captured_queries]  # the key's two reads


def test_a_new_annotation_changes_the_answer(scenario):  # noqa: F811
    before = project_agreement_cached(project=scenario)
    assert before.kappa.value == pytest.approx(7 / 11) and before.n_annotations == 13
    team = reviewers(scenario)
    label_item(scenario, [(team["dora"], "negative"), (team["emil"], "positive")])  # a fifth two-rater item
    after = project_agreement_cached(project=scenario)
    assert after == project_agreement(project=scenario)
    assert (after.n_annotations, after.kappa.n_items, after.n_overlap_items) == (15, 5, 6)
    assert after.kappa.value != pytest.approx(before.kappa.value)


def test_an_undo_and_an_adjudication_each_change_the_answer(scenario, owner):  # noqa: F811
    from labeling.services.review import review_resolve

    team = reviewers(scenario)
    item = label_item(scenario, [(team["dora"], "negative"), (team["emil"], "neutral")])
    agreed = project_agreement_cached(project=scenario)
    relabel(scenario, team["emil"], item, "negative")  # a retract row, then a new label: now they agree
    undone = project_agreement_cached(project=scenario)
    assert undone == project_agreement(project=scenario) and undone.kappa.value > agreed.kappa.value
    in_review = _an_item_in_review(scenario)
    unresolved = project_agreement_cached(project=scenario)
    review_resolve(project=scenario, user=owner, item_id=in_review.pk, label="negative")  # only a resolve row
    resolved = project_agreement_cached(project=scenario)
    assert resolved == project_agreement(project=scenario)
    by_name = {row.username: (row.n_gold, row.matches) for row in resolved.reviewers}
    assert by_name["fay"] == (1, 1) and by_name["gus"] == (1, 0)
    assert {row.username: row.n_gold for row in unresolved.reviewers}["fay"] == 0


def _an_item_in_review(project) -> Item:
    team = {name: reviewer_called(project, name) for name in ("fay", "gus")}
    return label_item(project, [(team["fay"], "negative"), (team["gus"], "positive")])


def test_a_renamed_label_or_a_removed_row_changes_the_key(scenario):  # noqa: F811
    key = agreement_cache_key(project=scenario)
    project_agreement_cached(project=scenario)
    scenario.labels.filter(name="neutral").update(name="mixed")
    renamed = project_agreement_cached(project=scenario)
    assert [row.name for row in renamed.per_label] == ["negative", "mixed", "positive"]
    renamed_key = agreement_cache_key(project=scenario)
    assert renamed_key != key
    # A row committed late (a lower id than the newest) or removed (a reviewer deleted) changes the count.
    Annotation.objects.filter(user__username="carol").delete()
    assert agreement_cache_key(project=scenario) != renamed_key
    assert project_agreement_cached(project=scenario) == project_agreement(project=scenario)


def test_the_api_and_the_page_answer_from_the_cache_and_move_on_with_new_annotations(
    scenario,  # noqa: F811
    owner,
    api_client_for,
    client_for,
):
    client = api_client_for(owner)
    first = client.get(API).json()
    with CaptureQueriesContext(connection) as repeat:
        again = client.get(API)
    assert again.json() == first
    computing = [q["sql"] for q in repeat.captured_queries if "labeling_annotation" in q["sql"]]
    assert len(computing) == 1  # the key's count; the figures' queries did not run
    team = reviewers(scenario)
    label_item(scenario, [(team["dora"], "positive"), (team["emil"], "positive")])
    moved = client.get(API).json()
    assert (moved["annotations"], moved["overlap_items"]) == (first["annotations"] + 2, first["overlap_items"] + 1)
    page = client_for(owner).get(PAGE)
    assert page.status_code == 200 and page.context["agreement"] == project_agreement(project=scenario)

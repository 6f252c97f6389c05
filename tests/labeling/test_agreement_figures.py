"""A project's agreement figures from annotations made through the services, against hand computation.

The scenario (labels n = negative, u = neutral, p = positive; "A vs B" in labeling order):

    item  overlap  ratings                          gold
    i1    2        alice p, bob p                   p (agreement)
    i2    2        alice n, bob n                   n (agreement)
    i3    2        alice p, bob n                   p (adjudicated)
    i4    2        alice u, bob p -> undo -> u      u (agreement; bob's p is retracted)
    i5    3        alice p, bob p, carol n          p (adjudicated)
    i6    1        alice p                          p (single: alice's own)
    i7    1        carol u                          u (single: carol's own)

Cohen's kappa on the four two-rater items (A = alice: p n p u; B = bob: p n n u): p_o = 3/4,
p_e = .5*.25 + .25*.5 + .25*.25 = .3125, kappa = .4375 / .6875 = 7/11.
Krippendorff's alpha on i1-i5 (11 values): o_cc sum = 2 + 2 + 0 + 2 + 1 = 7, D_o = 4/11;
n_p = 5, n_n = 4, n_u = 2, D_e = (121 - 45) / 110; alpha = 1 - (4/11) / (76/110) = 9/19.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from labeling.services.agreement import FEW_ITEMS, project_agreement
from labeling.services.review import review_resolve
from tests.labeling.test_review import label_item, relabel, reviewer_called

pytestmark = pytest.mark.django_db


@pytest.fixture
def scenario(project, owner):
    alice, bob, carol = (reviewer_called(project, name) for name in ("alice", "bob", "carol"))
    label_item(project, [(alice, "positive"), (bob, "positive")])
    label_item(project, [(alice, "negative"), (bob, "negative")])
    i3 = label_item(project, [(alice, "positive"), (bob, "negative")])
    i4 = label_item(project, [(alice, "neutral"), (bob, "positive")])
    relabel(project, bob, i4, "neutral")
    i5 = label_item(project, [(alice, "positive"), (bob, "positive"), (carol, "negative")])
    label_item(project, [(alice, "positive")])
    label_item(project, [(carol, "neutral")])
    review_resolve(project=project, user=owner, item_id=i3.pk, label="positive")
    review_resolve(project=project, user=owner, item_id=i5.pk, label="positive")
    return project


def test_project_kappa_and_alpha_match_hand_computation(scenario):
    agreement = project_agreement(project=scenario)
    assert agreement.kappa.value == pytest.approx(7 / 11)
    assert agreement.kappa.observed_agreement == pytest.approx(0.75)
    assert (agreement.kappa.n_items, agreement.kappa.n_annotations) == (4, 8)
    assert agreement.alpha.value == pytest.approx(9 / 19)
    assert agreement.alpha.observed_agreement == pytest.approx(7 / 11)
    assert (agreement.alpha.n_items, agreement.alpha.n_annotations) == (5, 11)
    assert (agreement.n_overlap_items, agreement.n_annotations) == (5, 13)
    assert agreement.kappa.few_items and FEW_ITEMS > 5


def test_per_label_figures_are_one_vs_rest(scenario):
    by_name = {row.name: row for row in project_agreement(project=scenario).per_label}
    assert list(by_name) == ["negative", "neutral", "positive"]  # the project's label order
    # positive: A = T F T F, B = T F F F -> p_o .75, p_e .5*.25 + .5*.75 = .5 -> .5
    assert by_name["positive"].kappa.value == pytest.approx(0.5)
    # neutral: both F F F T -> perfect; negative: A = F T F F, B = F T T F -> .5
    assert by_name["neutral"].kappa.value == pytest.approx(1.0)
    assert by_name["negative"].kappa.value == pytest.approx(0.5)
    # positive alpha: units TT, FF, TF, FF, TTF -> o_cc 7 of 11, n_T 5, n_F 6 -> 1 - (4/11)/(60/110) = 1/3
    assert by_name["positive"].alpha.value == pytest.approx(1 / 3)
    assert (by_name["positive"].alpha.n_items, by_name["positive"].alpha.n_annotations) == (5, 11)
    assert {name: row.n_ratings for name, row in by_name.items()} == {"negative": 4, "neutral": 2, "positive": 5}


def test_reviewers_are_compared_with_gold_leaving_out_their_own_single_labels(scenario):
    reviewers = {r.username: r for r in project_agreement(project=scenario).reviewers}
    assert list(reviewers) == ["alice", "bob", "carol"]
    # alice: i1-i5 all match (i6 is her own single gold); bob misses i3; carol misses i5 (i7 is her own).
    assert [(r.n_annotations, r.n_gold, r.matches) for r in reviewers.values()] == [(6, 5, 5), (5, 5, 4), (2, 1, 0)]
    assert [r.share for r in reviewers.values()] == [1.0, 0.8, 0.0]


def test_reviewer_pairs_use_their_shared_items(scenario):
    pairs = project_agreement(project=scenario).pairs
    assert [(p.reviewer_a, p.reviewer_b, p.kappa.n_items) for p in pairs] == [
        ("alice", "bob", 5),
        ("alice", "carol", 1),
        ("bob", "carol", 1),
    ]
    # alice p n p u p vs bob p n n u p: p_o 4/5, p_e 3/5*2/5 + 1/5*2/5 + 1/5*1/5 = 9/25 -> (0.8-0.36)/0.64
    assert pairs[0].kappa.value == pytest.approx(0.6875)
    assert pairs[0].kappa.observed_agreement == pytest.approx(0.8)
    assert pairs[1].kappa.observed_agreement == 0.0


def test_a_project_without_overlap_has_no_figures_but_says_why(project, client_for, reviewer, api_client_for):
    alice = reviewer_called(project, "alice")
    label_item(project, [(alice, "positive")])
    agreement = project_agreement(project=project)
    assert (agreement.kappa.value, agreement.kappa.n_items, agreement.kappa.observed_agreement) == (None, 0, None)
    assert (agreement.alpha.value, agreement.alpha.n_items) == (None, 0)
    assert [(r.username, r.n_annotations, r.n_gold, r.share) for r in agreement.reviewers] == [("alice", 1, 0, None)]
    page = client_for(reviewer).get(reverse("labeling:agreement", kwargs={"slug": project.slug}))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Not enough overlap yet" in text and "not enough gold yet" in text
    body = api_client_for(reviewer).get(reverse("api-agreement", kwargs={"slug": project.slug})).json()
    assert body["kappa"] == {
        "value": None,
        "observed_agreement": None,
        "n_items": 0,
        "n_annotations": 0,
        "few_items": True,
    }
    assert body["overlap_items"] == 0 and body["pairs"] == []


def test_unanimous_ratings_leave_the_coefficients_undefined(project):
    alice, bob = reviewer_called(project, "alice"), reviewer_called(project, "bob")
    for _ in range(2):
        label_item(project, [(alice, "positive"), (bob, "positive")])
    agreement = project_agreement(project=project)
    assert (agreement.kappa.value, agreement.kappa.observed_agreement, agreement.kappa.n_items) == (None, 1.0, 2)
    assert agreement.alpha.value is None and agreement.alpha.observed_agreement == 1.0


def test_the_figures_cost_a_fixed_number_of_queries(scenario, owner):
    alice, bob = (scenario.memberships.get(user__username=name).user for name in ("alice", "bob"))
    with CaptureQueriesContext(connection) as before:
        project_agreement(project=scenario)
    for _ in range(4):
        label_item(scenario, [(alice, "negative"), (bob, "neutral")])
    with CaptureQueriesContext(connection) as after:
        grown = project_agreement(project=scenario)
    assert grown.kappa.n_items == 8
    assert len(before.captured_queries) == len(after.captured_queries) <= 4


def test_the_api_returns_the_figures_to_any_member(scenario, reviewer, api_client_for):
    response = api_client_for(reviewer).get(reverse("api-agreement", kwargs={"slug": scenario.slug}))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"annotations", "overlap_items", "kappa", "alpha", "per_label", "reviewers", "pairs"}
    assert body["kappa"]["value"] == pytest.approx(7 / 11) and body["kappa"]["n_items"] == 4
    assert body["alpha"]["value"] == pytest.approx(9 / 19) and body["alpha"]["n_annotations"] == 11
    assert body["per_label"][2]["label"] == "positive" and body["per_label"][2]["kappa"]["value"] == pytest.approx(0.5)
    assert body["reviewers"][1] == {
        "reviewer": "bob",
        "annotations": 5,
        "gold_items": 5,
        "matches": 4,
        "agreement": 0.8,
    }
    assert body["pairs"][0]["reviewers"] == ["alice", "bob"] and body["pairs"][0]["kappa"]["n_items"] == 5


def test_outsiders_get_404_and_anonymous_401(scenario, outsider, api_client_for, client_for):
    url = reverse("api-agreement", kwargs={"slug": scenario.slug})
    assert api_client_for(outsider).get(url).json()["error"]["code"] == "not_found"
    assert api_client_for(None).get(url).status_code == 401
    assert client_for(outsider).get(reverse("labeling:agreement", kwargs={"slug": scenario.slug})).status_code == 404


def test_the_page_shows_the_figures_with_their_item_counts(scenario, reviewer, client_for):
    page = client_for(reviewer).get(reverse("labeling:agreement", kwargs={"slug": scenario.slug})).content.decode()
    kappa = page[page.index('id="stat-kappa"') : page.index('id="stat-alpha"')]
    assert '<div class="value">0.636</div>' in kappa and "4 items with two reviewers" in kappa
    alpha = page[page.index('id="stat-alpha"') :]
    assert '<div class="value">0.474</div>' in alpha and "5 items, 11 annotations" in alpha
    assert 'id="few-items"' in page  # 4 and 5 items are few
    reviewers = page[page.index('id="reviewers"') :]
    assert "<td>bob</td>" in reviewers and "80%" in reviewers
    assert "alice · bob" in page and "0.688" in page

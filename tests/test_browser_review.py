"""The review page in a real headless Chromium: an owner adjudicates with the keyboard and the mouse.

Two overlap reviewers disagree on two items (made through the queue services). The owner opens the
review page, moves between the items with j/k, writes a note (digits typed there must not resolve
anything), resolves the first item with one key press and the second with a click; the stored
resolve rows and the items' gold labels are checked in the database.
"""

from __future__ import annotations

import pytest

from labeling.models import Annotation, Item, Role
from tests.browser import LIVE_MARKS, login
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.labeling.test_review import label_item

pytestmark = LIVE_MARKS


@pytest.fixture
def disagreements():
    project = ProjectFactory(slug="review-live", name="Review live")
    owner = UserFactory(username="adjudicator")
    MembershipFactory(project=project, user=owner, role=Role.OWNER)
    ana, ben = UserFactory(username="ana"), UserFactory(username="ben")
    for user in (ana, ben):
        MembershipFactory(project=project, user=user, role=Role.REVIEWER)
    first = label_item(project, [(ana, "positive", False, "loves it"), (ben, "negative")], text="Great, just great.")
    second = label_item(project, [(ana, "neutral"), (ben, "negative", True, "sarcasm?")], text="مرحبا بكم")
    return project, owner, first, second


def _current(tab) -> str:
    return tab.eval_on_selector(".review-card.current", "el => el.dataset.item")


def test_an_owner_resolves_a_disagreement_with_one_key_press(chromium_page, disagreements):
    tab, base_url = chromium_page
    project, owner, first, second = disagreements
    login(tab, base_url, owner.username)
    tab.goto(f"{base_url}/projects/{project.slug}/review/")
    tab.wait_for_selector("#review-page[data-ready='1']")
    assert tab.locator(f"#item-{second.pk} .review-text").get_attribute("dir") == "auto"
    assert _current(tab) == str(first.pk)
    tab.keyboard.press("j")
    assert _current(tab) == str(second.pk)
    tab.keyboard.press("k")
    assert _current(tab) == str(first.pk)

    # A note: "n" focuses it; the digits typed there resolve nothing; Escape gives the keys back.
    tab.keyboard.press("n")
    tab.keyboard.type("2 reviewers split; 1 is right")
    tab.keyboard.press("Escape")
    assert not Annotation.objects.filter(kind=Annotation.Kind.RESOLVE).exists()
    assert tab.locator(f"#note-{first.pk}").input_value() == "2 reviewers split; 1 is right"

    tab.keyboard.press("3")  # positive: the third label, hotkey 3
    status = tab.locator(f"#item-{first.pk} .resolve-status")
    status.filter(has_text="Resolved as positive by adjudicator.").wait_for()
    assert _current(tab) == str(second.pk)  # the next unresolved item is current
    tab.locator("#resolved-rows tr", has_text="positive").first.wait_for()

    resolution = Annotation.objects.get(kind=Annotation.Kind.RESOLVE, item=first)
    assert (resolution.user, resolution.label.name, resolution.note) == (
        owner,
        "positive",
        "2 reviewers split; 1 is right",
    )
    first.refresh_from_db()
    assert (first.status, first.gold_label.name, first.gold_source) == (Item.Status.GOLD, "positive", "adjudication")

    # The mouse works too.
    tab.locator(f"#item-{second.pk} button.resolve-button", has_text="negative").click()
    tab.locator(f"#item-{second.pk} .resolve-status").filter(has_text="Resolved as negative").wait_for()
    assert not tab.locator("#review-done").is_hidden()
    second.refresh_from_db()
    assert (second.status, second.gold_label.name, second.gold_source) == (Item.Status.GOLD, "negative", "adjudication")
    assert list(
        Annotation.objects.filter(kind=Annotation.Kind.RESOLVE).order_by("id").values_list("item_id", "label__name")
    ) == [(first.pk, "positive"), (second.pk, "negative")]

    # Reloaded, the page lists both resolutions with who made them, and nothing is left in review.
    tab.reload()
    tab.get_by_role("heading", name="Nothing to review").wait_for()
    assert tab.locator("#resolved-rows tr", has_text="adjudicator").count() == 2

"""The labeling page in a real headless Chromium, driven by the keyboard alone.

A reviewer labels ten items with number keys and Enter (accepting the model's suggestion), undoes one
submission and labels that item again, skips one with a typed reason, types a note whose characters
must not act as keys, and the test then checks exactly what the database holds: every annotation in
order (the retract row included), the skip and its reason, each item's status and gold label, and the
two leases the page still holds (the item on screen and the one prefetched behind it).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Annotation, Item, Lease, Project, ProjectCounts, Skip
from labeling.services.queue import queue_set_priorities
from tests.browser import LIVE_MARKS, PASSWORD, live_tab
from tests.factories import ItemFactory, MembershipFactory, ProjectFactory, UserFactory

pytestmark = LIVE_MARKS

TEXTS = [
    "Flight delayed again, thanks for nothing",
    "Driverless cars go on sale in 2020",
    "Can't wait to ride in one of these!",
    "The keynote starts at 9am in hall B",
    "Ce tweet n'est pas en anglais",
    "Worst customer service I have ever had",
    "Loved the new lounge, great coffee",
    "Is the app down for anyone else?",
    "Oh great, another software update that breaks everything",
    "Thank you for the upgrade, what a surprise",
    "Traffic report: the bridge is closed until noon",
    "So proud of the team tonight",
    "Another rainy Monday",
]
# Item index -> the suggested label's name (the model's guess shown on the page).
SUGGESTED = {2: "positive", 8: "negative", 11: "positive"}


@pytest.fixture
def chromium_page(live_server, monkeypatch):
    """The shared tab (tests/browser.py) at 1280 x 900, the window this test was written against."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with live_tab(live_server.url, height=900) as page:
        yield page


@pytest.fixture
def queue():
    """The project, its reviewer, and thirteen queued items (highest priority first), some with suggestions."""
    project = ProjectFactory(slug="tweets", name="Tweets", guidelines="Label the **sentiment**.")
    reviewer = UserFactory(username="labeler")
    MembershipFactory(project=project, user=reviewer)
    items = [ItemFactory(project=project, text=text, language="en") for text in TEXTS]
    ProjectCounts.objects.filter(project=project).update(items=len(items), unlabeled=len(items))
    Project.objects.filter(pk=project.pk).update(overlap_fraction=0.0, labels_since_training=12)
    project.refresh_from_db()
    ranked = [(item.pk, float(len(items) - i), False) for i, item in enumerate(items)]
    queue_set_priorities(project=project, ranked=ranked, version_number=3)
    for index, name in SUGGESTED.items():
        Item.objects.filter(pk=items[index].pk).update(
            predicted_label=project.labels.get(name=name), predicted_confidence=0.91, predicted_by_version=3
        )
    return project, reviewer, items


def _login_by_keyboard(tab, base_url: str, username: str) -> None:
    """Sign in with the keys alone: type into the form and press Enter."""
    tab.goto(f"{base_url}/accounts/login/")
    tab.fill("#id_username", username)
    tab.fill("#id_password", PASSWORD)
    tab.keyboard.press("Enter")
    tab.wait_for_url(f"{base_url}/projects/")


def _on_screen(tab, item) -> None:
    """Wait until the page shows ``item`` (its id on the card and its text)."""
    tab.wait_for_selector(f'#label-item:not([hidden])[data-item-id="{item.pk}"]')
    assert tab.inner_text("#label-item [data-field=text]") == item.text


def _press(tab, key: str, then) -> None:
    tab.keyboard.press(key)
    _on_screen(tab, then)


def test_ten_items_labeled_by_keyboard_with_an_undo_a_skip_and_a_note(chromium_page, queue):
    tab, base_url = chromium_page
    project, reviewer, items = queue
    labels = {label.name: label for label in project.labels.all()}
    _login_by_keyboard(tab, base_url, "labeler")
    tab.goto(f"{base_url}/projects/tweets/label/")
    _on_screen(tab, items[0])
    assert tab.inner_text("[data-field=staleness]") == "ranked by model v3 · 12 labels since"

    tab.keyboard.press("?")
    tab.wait_for_selector("#keys-overlay:not([hidden])")
    tab.keyboard.press("1")  # ignored while the keys overlay is open
    tab.keyboard.press("?")
    tab.wait_for_selector("#keys-overlay", state="hidden")
    assert tab.get_attribute("#label-item", "data-item-id") == str(items[0].pk)

    _press(tab, "1", items[1])  # negative
    _press(tab, "2", items[2])  # neutral
    assert tab.inner_text("[data-field=suggestion-label]") == "positive"
    _press(tab, "Enter", items[3])  # accepts the suggestion: positive
    _press(tab, "3", items[4])  # positive ...
    _press(tab, "u", items[3])  # ... undone: item 3 is back on screen
    _press(tab, "1", items[4])  # and labeled negative instead
    tab.keyboard.press("s")
    tab.wait_for_selector("#skip-form:not([hidden])")
    tab.keyboard.type("not English")  # typed into the focused reason field: "s" and "n" are not keys here
    _press(tab, "Enter", items[5])  # confirms the skip
    _press(tab, "2", items[6])  # neutral
    # Tab to the note field (keyboard only) and type characters that are keys elsewhere on the page.
    for _ in range(60):
        if tab.evaluate("document.activeElement && document.activeElement.id") == "label-note":
            break
        tab.keyboard.press("Tab")
    tab.keyboard.type("sarcasm? 1 2 u s")
    assert tab.get_attribute("#label-item", "data-item-id") == str(items[6].pk)
    tab.keyboard.press("Escape")  # leaves the field; keys act again
    _press(tab, "3", items[7])  # positive, with the note
    _press(tab, "1", items[8])  # negative
    _press(tab, "Enter", items[9])  # accepts the suggestion: negative
    _press(tab, "3", items[10])  # positive
    _press(tab, "2", items[11])  # neutral: the tenth item labeled
    tab.wait_for_selector('#label-sync[data-pending="0"]')
    tab.wait_for_function(
        "document.querySelector('[data-field=remaining]').textContent === '1'"
    )  # the skipped item, for others
    assert tab.inner_text(".label-stats [data-field=today]") == "10"
    assert tab.inner_text(".label-stats [data-field=session]") == "10"
    assert tab.evaluate("window.looplineTimings.length") >= 12  # every press that moved on was timed

    name = {label.pk: label.name for label in labels.values()}
    log = [
        (row.kind, row.item_id, name[row.label_id], row.retracts_id is not None)
        for row in Annotation.objects.filter(project=project).order_by("id")
    ]
    expected_labels = [
        (0, "negative"),
        (1, "neutral"),
        (2, "positive"),
        (3, "positive"),
        ("retract", 3, "positive"),
        (3, "negative"),
        (5, "neutral"),
        (6, "positive"),
        (7, "negative"),
        (8, "negative"),
        (9, "positive"),
        (10, "neutral"),
    ]
    assert log == [
        ("retract", items[row[1]].pk, row[2], True)
        if row[0] == "retract"
        else ("label", items[row[0]].pk, row[1], False)
        for row in expected_labels
    ]
    rows = list(Annotation.objects.filter(project=project, kind=Annotation.Kind.LABEL).order_by("id"))
    assert all(row.user_id == reviewer.pk and row.lease_id is not None for row in rows)
    assert all(row.seconds_spent is not None and 0 < row.seconds_spent < 600 for row in rows)
    accepted = [row for row in rows if row.suggested_label_id is not None]
    assert [
        (row.item_id, name[row.label_id], row.suggested_confidence, row.suggested_by_version) for row in accepted
    ] == [
        (items[2].pk, "positive", 0.91, 3),
        (items[8].pk, "negative", 0.91, 3),
    ]
    assert [row.note for row in rows if row.note] == ["sarcasm? 1 2 u s"]
    assert rows[6].item_id == items[6].pk and rows[6].note == "sarcasm? 1 2 u s"
    retract = Annotation.objects.get(kind=Annotation.Kind.RETRACT)
    assert retract.retracts_id == rows[3].pk and rows[3].item_id == items[3].pk

    skip = Skip.objects.get()
    assert (skip.item_id, skip.user_id, skip.reason) == (items[4].pk, reviewer.pk, "not English")

    by_id = {item.pk: item for item in Item.objects.filter(project=project)}
    gold = {row[0]: row[1] for row in expected_labels if row[0] != "retract"}  # the later label of item 3 wins
    for index, label_name in gold.items():
        item = by_id[items[index].pk]
        assert (item.status, item.gold_label_id, item.gold_source) == ("gold", labels[label_name].pk, "single"), index
    assert by_id[items[4].pk].status == Item.Status.QUEUED  # skipped: back in the queue for others
    held = Lease.objects.filter(user=reviewer, released_at__isnull=True).order_by("created_at")
    assert [lease.item_id for lease in held] == [items[11].pk, items[12].pk]  # on screen + prefetched
    assert by_id[items[11].pk].status == by_id[items[12].pk].status == Item.Status.LEASED
    assert Project.objects.get(pk=project.pk).labels_since_training == 12 + 10


def test_an_empty_queue_a_failed_submit_and_a_lost_lease_are_shown_and_nothing_is_lost(chromium_page):
    from labeling.services.queue import queue_next

    tab, base_url = chromium_page
    project = ProjectFactory(slug="quiet", name="Quiet")
    reviewer = UserFactory(username="labeler")
    MembershipFactory(project=project, user=reviewer)
    other = UserFactory(username="colleague")
    MembershipFactory(project=project, user=other)
    _login_by_keyboard(tab, base_url, "labeler")
    tab.goto(f"{base_url}/projects/quiet/label/")
    tab.get_by_role("heading", name="Nothing left for you to label").wait_for()

    # Items arrive; "Check now" fetches them without a reload.
    items = [ItemFactory(project=project, text=f"queued text {i}") for i in range(3)]
    ProjectCounts.objects.filter(project=project).update(items=3, unlabeled=3)
    Project.objects.filter(pk=project.pk).update(overlap_fraction=0.0)
    project.refresh_from_db()
    queue_set_priorities(
        project=project, ranked=[(it.pk, 3.0 - i, False) for i, it in enumerate(items)], version_number=1
    )
    tab.get_by_role("button", name="Check now").click()
    _on_screen(tab, items[0])

    # The network drops the submit: the page moves on, says the label is not saved, and keeps it for Retry.
    tab.route("**/annotations", lambda route: route.abort())
    _press(tab, "1", items[1])
    notice = tab.locator("#label-notices li.error", has_text="Not saved yet")
    notice.wait_for()
    assert f"“negative” for item #{items[0].pk}" in notice.inner_text()
    assert tab.inner_text("#label-sync") == "Not saved yet: see the message above"
    assert Annotation.objects.count() == 0
    tab.unroute("**/annotations")
    notice.get_by_role("button", name="Retry").click()
    tab.wait_for_selector('#label-sync[data-pending="0"]:not(.failed)')
    stored = Annotation.objects.get()
    assert (stored.item_id, stored.label.name, stored.user_id) == (items[0].pk, "negative", reviewer.pk)

    # The lease on the item on screen lapses and a colleague takes the item: the submit is refused (409), said so.
    Lease.objects.filter(item=items[1], user=reviewer).update(expires_at=timezone.now() - timedelta(seconds=1))
    taken = queue_next(project=project, user=other)
    assert taken is not None and taken.item_id == items[1].pk
    _press(tab, "2", items[2])
    refused = tab.locator("#label-notices li.error", has_text="went to another reviewer")
    refused.wait_for()
    assert f"“neutral” for item #{items[1].pk}" in refused.inner_text()
    tab.wait_for_selector('#label-sync[data-pending="0"]')
    assert list(Annotation.objects.values_list("item_id", flat=True)) == [items[0].pk]
    assert tab.get_attribute("#label-item", "data-item-id") == str(items[2].pk)


def test_an_undo_answered_late_never_takes_the_item_on_screen_away(chromium_page, queue):
    """The server's undo gives back the items held behind the undone one and leases them anew; the page,
    which moved on to them before that answer came, keeps showing its item and labels it with the new lease.

    The undo request is held in the network until the reviewer has labeled the undone item again and
    skipped the next one: its answer then lists neither the item on screen nor its old lease.
    """
    tab, base_url = chromium_page
    project, reviewer, items = queue
    _login_by_keyboard(tab, base_url, "labeler")
    tab.goto(f"{base_url}/projects/tweets/label/")
    _on_screen(tab, items[0])
    _press(tab, "1", items[1])
    tab.wait_for_selector('#label-sync[data-pending="0"]')
    tab.wait_for_function("window.looplineState.ahead.length === 1")  # items[2] prefetched behind items[1]
    held_undos = []
    tab.route("**/undo", lambda route: held_undos.append(route))
    tab.keyboard.press("u")
    _on_screen(tab, items[0])
    tab.wait_for_function("document.getElementById('label-sync').dataset.pending === '1'")
    assert len(held_undos) == 1
    _press(tab, "2", items[1])  # items[0] labeled again, while the undo is still unanswered
    tab.keyboard.press("s")
    tab.wait_for_selector("#skip-form:not([hidden])")
    _press(tab, "Enter", items[2])  # items[1] skipped: items[2], prefetched before the undo, is on screen
    # From here on the card must stay up: count every time the page hides it.
    tab.evaluate(
        """() => {
          window.hiddenCount = 0;
          const card = document.getElementById('label-item');
          new MutationObserver(() => { if (card.hidden) window.hiddenCount += 1; })
            .observe(card, { attributes: true, attributeFilter: ['hidden'] });
        }"""
    )
    held_undos[0].continue_()
    tab.wait_for_selector('#label-sync[data-pending="0"]')
    assert tab.evaluate("window.hiddenCount") == 0
    assert tab.get_attribute("#label-item", "data-item-id") == str(items[2].pk)
    assert tab.locator("#label-notices li").count() == 0, tab.inner_text("#label-notices")
    _press(tab, "3", items[3])
    tab.wait_for_selector('#label-sync[data-pending="0"]')
    assert tab.locator("#label-notices li.error").count() == 0, tab.inner_text("#label-notices")

    labels = [
        (row.kind, row.item_id, row.label.name)
        for row in Annotation.objects.filter(project=project).select_related("label").order_by("id")
    ]
    assert labels == [
        ("label", items[0].pk, "negative"),
        ("retract", items[0].pk, "negative"),
        ("label", items[0].pk, "neutral"),
        ("label", items[2].pk, "positive"),
    ]
    assert Skip.objects.get().item_id == items[1].pk
    held = Lease.objects.filter(user=reviewer, released_at__isnull=True).order_by("created_at")
    assert [lease.item_id for lease in held] == [items[3].pk, items[4].pk]

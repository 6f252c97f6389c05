"""Projects: creation and editing through the services, the pages and the API; the overview."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from labeling.models import Item, Label, Membership, Project, ProjectCounts, Role
from labeling.services.projects import LabelSpec, ProjectSpec, project_create, project_update
from tests.factories import DatasetFactory, ItemFactory, JobFactory
from webapp.errors import Conflict, ValidationFailed

pytestmark = pytest.mark.django_db


def spec(**overrides) -> ProjectSpec:
    values = {
        "name": "Tickets",
        "slug": "tickets",
        "base_checkpoint": "xlm-roberta-base",
        "labels": [LabelSpec("bug"), LabelSpec("feature"), LabelSpec("question")],
    }
    return ProjectSpec(**{**values, **overrides})


def form_data(labels: list[dict], **overrides) -> dict[str, str]:
    data = {
        "name": "Tickets",
        "slug": "tickets",
        "task_type": "single_label",
        "description": "Support tickets",
        "guidelines": "Pick **one**.",
        "languages": "en, de",
        "base_checkpoint": "xlm-roberta-base",
        "max_text_chars": "20000",
        "al_strategy": "margin_diversity",
        "al_batch_size": "50",
        "retrain_after_labels": "200",
        "labels-TOTAL_FORMS": str(len(labels)),
        "labels-INITIAL_FORMS": "0",
    }
    for index, label in enumerate(labels):
        for key, value in label.items():
            data[f"labels-{index}-{key}"] = str(value)
    data.update(overrides)
    return data


# --- services ------------------------------------------------------------------------------


def test_create_fills_hotkeys_and_colours_and_makes_the_creator_admin(project_creator):
    project = project_create(spec=spec(languages=["en", "pt-BR"]), user=project_creator)
    labels = list(project.labels.values_list("name", "hotkey", "color", "order"))
    assert labels == [("bug", "1", "#4c78a8", 0), ("feature", "2", "#f58518", 1), ("question", "3", "#54a24b", 2)]
    assert Membership.objects.get(project=project).role == Role.ADMIN
    assert ProjectCounts.objects.get(project=project).items == 0
    assert project.languages == ["en", "pt-BR"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"labels": [LabelSpec("only")]}, "labels"),
        ({"labels": [LabelSpec("Spam"), LabelSpec("spam ")]}, "labels.duplicates"),
        ({"labels": [LabelSpec("a", hotkey="s"), LabelSpec("b")]}, "labels.hotkey"),
        ({"labels": [LabelSpec("a", hotkey="1"), LabelSpec("b", hotkey="1")]}, "labels.hotkey"),
        ({"labels": [LabelSpec("a", color="red"), LabelSpec("b")]}, "labels.color"),
        ({"labels": [LabelSpec("x" * 101), LabelSpec("b")]}, "labels.name"),
        ({"labels": [LabelSpec(f"l{i}") for i in range(51)]}, "labels"),
        ({"slug": "Bad Slug"}, "slug"),
        ({"slug": "new"}, "slug"),
        ({"slug": "a" * 61}, "slug"),
        ({"name": "  "}, "name"),
        ({"name": "n" * 121}, "name"),
        ({"base_checkpoint": ""}, "base_checkpoint"),
        ({"task_type": "multi_label"}, "task_type"),
        ({"al_strategy": "psychic"}, "al_strategy"),
        ({"al_batch_size": 0}, "al_batch_size"),
        ({"retrain_after_labels": -5}, "retrain_after_labels"),
        ({"max_text_chars": 0}, "max_text_chars"),
        ({"languages": ["english"]}, "languages"),
        ({"languages": ["en", "en"]}, "languages"),
    ],
)
def test_invalid_projects_are_refused_with_the_field_named_and_nothing_written(project_creator, overrides, field):
    with pytest.raises(ValidationFailed) as caught:
        project_create(spec=spec(**overrides), user=project_creator)
    assert field in caught.value.details
    assert not Project.objects.filter(slug=spec(**overrides).slug).exists()
    assert not Label.objects.filter(project__slug="tickets").exists()


def test_every_problem_is_reported_at_once(project_creator):
    with pytest.raises(ValidationFailed) as caught:
        project_create(spec=spec(name="", slug="BAD", labels=[LabelSpec("one")]), user=project_creator)
    assert {"name", "slug", "labels"} <= set(caught.value.details)


def test_duplicate_slug_is_a_conflict(project, project_creator):
    with pytest.raises(Conflict) as caught:
        project_create(spec=spec(slug=project.slug), user=project_creator)
    assert caught.value.details == {"slug": "taken"}
    assert Project.objects.filter(slug=project.slug).count() == 1


def test_renaming_a_label_by_id_keeps_its_gold_labels(project):
    negative, neutral, positive = project.labels.all()
    item = ItemFactory(project=project, gold_label=negative, status=Item.Status.GOLD)
    new_set = [
        LabelSpec("bad", id=negative.pk),
        LabelSpec("neutral", id=neutral.pk),
        LabelSpec("good", id=positive.pk),
    ]
    project_update(project=project, changes={}, labels=new_set)
    item.refresh_from_db()
    assert item.gold_label.name == "bad"
    assert list(project.labels.values_list("name", flat=True)) == ["bad", "neutral", "good"]


def test_swapping_hotkeys_and_names_between_labels_works(project):
    negative, neutral, positive = project.labels.all()
    project_update(
        project=project,
        changes={},
        labels=[
            LabelSpec("positive", hotkey="3", id=negative.pk),
            LabelSpec("neutral", hotkey="2", id=neutral.pk),
            LabelSpec("negative", hotkey="1", id=positive.pk),
        ],
    )
    renamed = dict(project.labels.values_list("pk", "name"))
    assert renamed == {negative.pk: "positive", neutral.pk: "neutral", positive.pk: "negative"}
    assert Label.objects.get(pk=negative.pk).hotkey == "3"


def test_removing_a_label_in_use_is_refused_and_changes_nothing(project):
    negative, neutral, positive = project.labels.all()
    ItemFactory(project=project, gold_label=neutral, status=Item.Status.GOLD)
    with pytest.raises(Conflict) as caught:
        project_update(
            project=project,
            changes={"name": "Renamed"},
            labels=[LabelSpec("negative", id=negative.pk), LabelSpec("positive", id=positive.pk)],
        )
    assert caught.value.details == {"in_use": ["neutral"]}
    project.refresh_from_db()
    assert project.name == "Acme sentiment"
    assert project.labels.count() == 3


def test_unused_labels_can_be_removed_and_new_ones_added(project):
    negative, neutral, positive = project.labels.all()
    project_update(
        project=project,
        changes={},
        labels=[LabelSpec("negative", id=negative.pk), LabelSpec("positive"), LabelSpec("mixed")],
    )
    assert list(project.labels.values_list("name", flat=True)) == ["negative", "positive", "mixed"]
    assert project.labels.get(name="positive").pk == positive.pk  # matched by name
    assert not Label.objects.filter(pk=neutral.pk).exists()


def test_a_label_id_of_another_project_is_refused(project, other_project):
    foreign = other_project.labels.first()
    with pytest.raises(ValidationFailed):
        project_update(project=project, changes={}, labels=[LabelSpec("a", id=foreign.pk), LabelSpec("b")])
    assert Label.objects.get(pk=foreign.pk).name == foreign.name


def test_update_refuses_fixed_fields_and_leaves_the_object_untouched(project):
    with pytest.raises(ValidationFailed) as caught:
        project_update(project=project, changes={"slug": "moved"})
    assert caught.value.details == {"slug": "not editable"}
    with pytest.raises(ValidationFailed):
        project_update(project=project, changes={"name": "ok", "al_batch_size": 0})
    assert project.name == "Acme sentiment"


# --- pages ---------------------------------------------------------------------------------


def test_create_page_creates_the_project_and_redirects_to_it(project_creator, client_for):
    labels = [{"name": "bug", "hotkey": "b", "color": "#112233"}, {"name": "feature"}, {"name": ""}]
    response = client_for(project_creator).post(reverse("labeling:project-create"), form_data(labels))
    assert response.status_code == 302
    assert response["Location"] == reverse("labeling:project-detail", kwargs={"slug": "tickets"})
    project = Project.objects.get(slug="tickets")
    assert list(project.labels.values_list("name", "hotkey", "color")) == [
        ("bug", "b", "#112233"),
        ("feature", "1", "#f58518"),
    ]
    assert project.languages == ["en", "de"]
    assert Membership.objects.get(project=project, user=project_creator).role == Role.ADMIN


@pytest.mark.parametrize(
    ("labels", "overrides", "message"),
    [
        ([{"name": "only"}], {}, "A project needs 2 to 50 labels; got 1."),
        ([{"name": "a", "hotkey": "?"}, {"name": "b"}], {}, "s, u and ? are reserved"),
        ([{"name": "a"}, {"name": "A"}], {}, "Label names must be unique"),
        ([{"name": "a"}, {"name": "b"}], {"slug": "new"}, "The slug &#x27;new&#x27; is reserved"),
        ([{"name": "a"}, {"name": "b"}], {"languages": "english"}, "Not a language code"),
        ([{"name": "a"}, {"name": "b"}], {"al_batch_size": "lots"}, "Enter a whole number."),
        ([{"name": "a"}, {"name": "b"}], {"labels-TOTAL_FORMS": "oops"}, "ManagementForm data is missing"),
        ([{"name": "a"}, {"name": "b"}], {"labels-TOTAL_FORMS": "5000"}, "Please submit at most 50 forms."),
    ],
)
def test_bad_create_input_re_renders_the_form_with_a_message(project_creator, client_for, labels, overrides, message):
    response = client_for(project_creator).post(reverse("labeling:project-create"), form_data(labels, **overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Project.objects.filter(slug__in=["tickets", "new"]).exists()


def test_a_taken_slug_is_shown_on_the_slug_field(project, project_creator, client_for):
    data = form_data([{"name": "a"}, {"name": "b"}], slug=project.slug)
    response = client_for(project_creator).post(reverse("labeling:project-create"), data)
    assert response.status_code == 400
    assert "The slug &#x27;acme-sentiment&#x27; is taken; choose another." in response.content.decode()


def test_edit_page_shows_the_label_set_and_renames_by_row(project, owner, client_for):
    client = client_for(owner)
    url = reverse("labeling:project-edit", kwargs={"slug": project.slug})
    page = client.get(url).content.decode()
    assert 'value="negative"' in page and 'value="positive"' in page
    negative, neutral, positive = project.labels.all()
    item = ItemFactory(project=project, gold_label=positive, status=Item.Status.GOLD)
    rows = [
        {"id": negative.pk, "name": "negative", "hotkey": "1", "color": "#000000"},
        {"id": neutral.pk, "name": "neutral", "hotkey": "2", "color": "#000000", "DELETE": "on"},
        {"id": positive.pk, "name": "good", "hotkey": "3", "color": "#00ff00"},
    ]
    data = form_data(rows, name="Acme v2")
    del data["slug"], data["task_type"]
    response = client.post(url, data)
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.gold_label.name == "good"
    project.refresh_from_db()
    assert project.name == "Acme v2"
    assert list(project.labels.values_list("name", flat=True)) == ["negative", "good"]


def test_edit_page_refuses_removing_a_label_in_use(project, admin_member, client_for):
    negative, neutral, positive = project.labels.all()
    ItemFactory(project=project, gold_label=negative, status=Item.Status.GOLD)
    rows = [
        {"id": negative.pk, "name": "negative", "DELETE": "on"},
        {"id": neutral.pk, "name": "neutral"},
        {"id": positive.pk, "name": "positive"},
    ]
    data = form_data(rows)
    del data["slug"], data["task_type"]
    response = client_for(admin_member).post(reverse("labeling:project-edit", kwargs={"slug": project.slug}), data)
    assert response.status_code == 400
    assert "Labels in use cannot be removed; rename them instead. (negative)" in response.content.decode()
    assert project.labels.count() == 3


def test_a_row_cleared_without_remove_asks_for_a_name(project, owner, client_for):
    negative, neutral, positive = project.labels.all()
    rows = [{"id": negative.pk, "name": ""}, {"id": neutral.pk, "name": "neutral"}, {"id": positive.pk, "name": "p"}]
    data = form_data(rows)
    del data["slug"], data["task_type"]
    response = client_for(owner).post(reverse("labeling:project-edit", kwargs={"slug": project.slug}), data)
    assert response.status_code == 400
    assert "Give this label a name, or tick “remove”." in response.content.decode()
    assert project.labels.filter(name="negative").exists()


def test_overview_shows_counts_labels_guidelines_datasets_and_jobs(project, reviewer, client_for):
    # The counters are trusted as stored: the page must not count items itself.
    ProjectCounts.objects.filter(project=project).update(items=1234567, gold=7654, unlabeled=4321)
    DatasetFactory(project=project, name="tickets-2024.csv", rows_total=10, items_created=9)
    job = JobFactory(project=project, kind="train", status="running", progress=0.4)
    with CaptureQueriesContext(connection) as queries:
        response = client_for(reviewer).get(reverse("labeling:project-detail", kwargs={"slug": project.slug}))
    page = response.content.decode()
    assert response.status_code == 200
    assert "1234567" in page and "7654" in page and "4321" in page
    assert "<kbd>1</kbd>" in page and "background: #4c78a8" in page
    assert "<strong>sentiment</strong>" in page
    assert "tickets-2024.csv" in page
    assert reverse("job-detail", kwargs={"job_id": job.pk}) in page and "Running" in page
    assert "Model versions" in page  # a panel registered by the modeling app
    assert reverse("labeling:item-list", kwargs={"slug": project.slug}) in page
    assert reverse("labeling:import", kwargs={"slug": project.slug}) not in page  # reviewers cannot import
    assert not [q for q in queries.captured_queries if "labeling_item" in q["sql"]]


def test_overview_links_owners_to_import_and_export(project, owner, client_for):
    page = client_for(owner).get(reverse("labeling:project-detail", kwargs={"slug": project.slug})).content.decode()
    assert reverse("labeling:import", kwargs={"slug": project.slug}) in page
    assert reverse("labeling:export", kwargs={"slug": project.slug, "fmt": "csv"}) in page
    assert reverse("labeling:project-members", kwargs={"slug": project.slug}) not in page  # admins only


def test_project_list_shows_only_the_users_projects(project, other_project, reviewer, superuser, client_for):
    page = client_for(reviewer).get(reverse("labeling:project-list")).content.decode()
    assert "Acme sentiment" in page and "Other project" not in page
    assert "New project" not in page
    page = client_for(superuser).get(reverse("labeling:project-list")).content.decode()
    assert "Acme sentiment" in page and "Other project" in page and "New project" in page


def test_jobs_page_lists_the_projects_jobs_newest_first(project, other_project, reviewer, client_for):
    old = JobFactory(project=project, kind="import", status="succeeded", progress=1.0)
    new = JobFactory(project=project, kind="train", status="failed", message="Out of memory")
    foreign = JobFactory(project=other_project)
    page = client_for(reviewer).get(reverse("labeling:project-jobs", kwargs={"slug": project.slug})).content.decode()
    assert page.index(str(new.pk)) < page.index(str(old.pk))
    assert "Out of memory" in page and "status-failed" in page
    assert str(foreign.pk) not in page


# --- API -----------------------------------------------------------------------------------


NEW_PROJECT = {
    "name": "Tickets",
    "slug": "tickets",
    "base_checkpoint": "xlm-roberta-base",
    "languages": ["en"],
    "labels": [{"name": "bug", "color": "#123456"}, {"name": "feature", "hotkey": "f"}],
}


def test_api_creates_a_project(project_creator, api_client_for):
    response = api_client_for(project_creator).post(reverse("api-project-list"), NEW_PROJECT, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["slug"] == "tickets" and body["role"] == "admin"
    assert [(lab["name"], lab["hotkey"], lab["color"]) for lab in body["labels"]] == [
        ("bug", "1", "#123456"),
        ("feature", "f", "#f58518"),
    ]
    assert body["counts"]["items"] == 0


def test_api_lists_the_users_projects_with_their_role(project, other_project, owner, api_client_for):
    body = api_client_for(owner).get(reverse("api-project-list")).json()
    assert [(p["slug"], p["role"]) for p in body] == [("acme-sentiment", "owner")]


def test_api_patch_renames_labels_by_id_and_changes_settings(project, owner, api_client_for):
    labels = list(project.labels.all())
    payload = {
        "al_batch_size": 25,
        "labels": [{"id": label.pk, "name": label.name.upper(), "hotkey": label.hotkey} for label in labels],
    }
    url = reverse("api-project-detail", kwargs={"slug": project.slug})
    response = api_client_for(owner).patch(url, payload, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["al_batch_size"] == 25
    assert [lab["name"] for lab in response.json()["labels"]] == ["NEGATIVE", "NEUTRAL", "POSITIVE"]
    assert set(project.labels.values_list("pk", flat=True)) == {label.pk for label in labels}


def test_api_patch_rejects_unknown_and_fixed_fields(project, owner, api_client_for):
    url = reverse("api-project-detail", kwargs={"slug": project.slug})
    response = api_client_for(owner).patch(url, {"slug": "moved", "labls": []}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"slug", "labls"}
    assert Project.objects.filter(slug=project.slug).exists()


def test_superuser_sees_every_project_as_admin(project, superuser, api_client_for):
    body = api_client_for(superuser).get(reverse("api-project-detail", kwargs={"slug": project.slug})).json()
    assert body["role"] == "admin"
    assert not Membership.objects.filter(user=superuser).exists()


def _browser_post_data(page: str) -> dict[str, str]:
    """What a browser submits for the rendered form: every input's value (a colour input always has one)."""
    data = {}
    for tag in re.findall(r"<input [^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or 'type="checkbox"' in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        data[name.group(1)] = value.group(1) if value else ("#000000" if 'type="color"' in tag else "")
    for name, value in re.findall(r'<textarea name="([^"]+)"[^>]*>\n?([^<]*)</textarea>', page):
        data[name] = value
    for name, value in re.findall(r'<select name="([^"]+)"[^>]*>.*?<option value="([^"]*)" selected', page, re.S):
        data[name] = value
    return data


def test_new_labels_from_blank_rows_get_palette_colours_not_black(project_creator, client_for):
    client = client_for(project_creator)
    data = _browser_post_data(client.get(reverse("labeling:project-create")).content.decode())
    data.update({"name": "T", "slug": "t", "base_checkpoint": "x", "labels-0-name": "a", "labels-1-name": "b"})
    response = client.post(reverse("labeling:project-create"), data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert list(Project.objects.get(slug="t").labels.values_list("name", "color")) == [
        ("a", "#4c78a8"),
        ("b", "#f58518"),
    ]


def test_a_full_label_set_can_still_be_edited(owner, client_for, project):
    project_update(project=project, changes={}, labels=[LabelSpec(f"label {i}") for i in range(50)])
    client = client_for(owner)
    url = reverse("labeling:project-edit", kwargs={"slug": project.slug})
    data = _browser_post_data(client.get(url).content.decode())
    assert data["labels-TOTAL_FORMS"] == "50"
    data["labels-7-name"] = "renamed"
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert project.labels.filter(name="renamed", order=7).exists()


# --- language quotas -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quotas", "message"),
    [
        ({"fr": 0.2}, "does not list: 'fr'"),
        ({"sw": 1.5}, "share between 0 and 1"),
        ({"sw": -0.1}, "share between 0 and 1"),
        ({"sw": float("nan")}, "share between 0 and 1"),
        ({"sw": "0.2"}, "share between 0 and 1"),
        ({"sw": True}, "share between 0 and 1"),
        ({"sw": -3}, "between 0 and 10,000 items"),
        ({"sw": 10_001}, "between 0 and 10,000 items"),
        ({"sw": 0.6, "en": 0.5}, "add up to 1.1"),
        ([["sw", 0.2]], "an object of language code"),
    ],
)
def test_invalid_language_quotas_are_refused_and_nothing_is_written(project_creator, quotas, message):
    with pytest.raises(ValidationFailed) as caught:
        project_create(spec=spec(languages=["en", "sw"], language_quotas=quotas), user=project_creator)
    assert message in caught.value.details["language_quotas"]
    assert not Project.objects.filter(slug="tickets").exists()


def test_language_quotas_keep_shares_and_counts_apart(project_creator):
    quotas = {"sw": 0.0, "en": 5, "de": 1.0, "fr": 0}
    project = project_create(
        spec=spec(languages=["en", "sw", "de", "fr"], language_quotas=quotas), user=project_creator
    )
    project.refresh_from_db()
    assert project.language_quotas == quotas
    assert [type(project.language_quotas[code]) for code in ("sw", "en", "de", "fr")] == [float, int, float, int]


def test_dropping_a_language_that_has_a_quota_is_refused(project):
    project_update(project=project, changes={"languages": ["en", "sw"], "language_quotas": {"sw": 0.25}})
    with pytest.raises(ValidationFailed) as caught:
        project_update(project=project, changes={"languages": ["en"]})
    assert "does not list: 'sw'" in caught.value.details["language_quotas"]
    project.refresh_from_db()
    assert project.languages == ["en", "sw"] and project.language_quotas == {"sw": 0.25}
    project_update(
        project=project, changes={"language_quotas": {"en": 0.5, "sw": 0.5}}
    )  # checked against the kept languages
    assert Project.objects.get(pk=project.pk).language_quotas == {"en": 0.5, "sw": 0.5}


def test_api_patch_sets_language_quotas(project, owner, api_client_for):
    url = reverse("api-project-detail", kwargs={"slug": project.slug})
    payload = {"languages": ["en", "sw"], "language_quotas": {"sw": 0.3, "en": 4}}
    response = api_client_for(owner).patch(url, payload, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["language_quotas"] == {"sw": 0.3, "en": 4}
    assert Project.objects.get(pk=project.pk).language_quotas == {"sw": 0.3, "en": 4}


@pytest.mark.parametrize(
    "quotas",
    [{"fr": 0.1}, {"sw": 2.5}, {"sw": -1}, {"sw": 0.7, "en": 0.7}, "sw: 0.2", [0.2], {"sw": None}],
)
def test_api_patch_refuses_bad_language_quotas_with_a_400_and_changes_nothing(project, owner, api_client_for, quotas):
    project_update(project=project, changes={"languages": ["en", "sw"], "language_quotas": {"sw": 0.1}})
    url = reverse("api-project-detail", kwargs={"slug": project.slug})
    response = api_client_for(owner).patch(url, {"name": "Renamed", "language_quotas": quotas}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] and set(error["details"]) == {"language_quotas"}
    project.refresh_from_db()
    assert project.name == "Acme sentiment" and project.language_quotas == {"sw": 0.1}


def test_api_creates_a_project_with_language_quotas(project_creator, api_client_for):
    payload = {**NEW_PROJECT, "languages": ["en", "sw"], "language_quotas": {"sw": 0.2}}
    response = api_client_for(project_creator).post(reverse("api-project-list"), payload, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["language_quotas"] == {"sw": 0.2}


def edit_data(project, **overrides) -> dict[str, str]:
    rows = [{"id": label.pk, "name": label.name, "hotkey": label.hotkey} for label in project.labels.all()]
    data = form_data(rows, languages="en, sw", **overrides)
    del data["slug"], data["task_type"]
    return data


def test_edit_page_shows_and_saves_language_quotas(project, owner, client_for):
    project_update(project=project, changes={"languages": ["en", "sw"], "language_quotas": {"sw": 0.2, "en": 5}})
    client = client_for(owner)
    url = reverse("labeling:project-edit", kwargs={"slug": project.slug})
    page = client.get(url).content.decode()
    assert 'name="language_quotas" value="en: 5, sw: 0.2"' in page
    response = client.post(url, edit_data(project, language_quotas="sw: 25%; en=3, "))
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert Project.objects.get(pk=project.pk).language_quotas == {"sw": 0.25, "en": 3}
    response = client.post(url, edit_data(project, language_quotas=""))
    assert response.status_code == 302
    assert Project.objects.get(pk=project.pk).language_quotas == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sw 0.2", "Could not read &#x27;sw 0.2&#x27;"),
        ("sw: lots", "Could not read &#x27;sw: lots&#x27;"),
        ("sw: 0.1, sw: 0.2", "&#x27;sw&#x27; has two quotas"),
        ("fr: 0.1", "does not list: &#x27;fr&#x27;"),
        ("sw: 150%", "share between 0 and 1"),
        ("sw: 0.6, en: 0.6", "add up to 1.2"),
    ],
)
def test_edit_page_shows_language_quota_errors_on_the_field(project, owner, client_for, text, message):
    project_update(project=project, changes={"languages": ["en", "sw"], "language_quotas": {"sw": 0.1}})
    url = reverse("labeling:project-edit", kwargs={"slug": project.slug})
    response = client_for(owner).post(url, edit_data(project, name="Renamed", language_quotas=text))
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    field = page[page.index('name="language_quotas"') :]
    assert field.index(message) < field.index("</div>")  # under the quota field, not only as a banner
    project.refresh_from_db()
    assert project.name == "Acme sentiment" and project.language_quotas == {"sw": 0.1}

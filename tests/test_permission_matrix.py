"""Every page and API endpoint by every role, with the exact status each must answer.

Roles: ``anonymous``, ``outsider`` (a member of another project only), ``reviewer``, ``owner``,
``admin`` (of the project under test) and ``superuser``. Pages send anonymous users to the login
page; the API answers them 401 ``not_authenticated`` with a ``WWW-Authenticate: Token`` challenge
(token authentication is the first authentication class, so DRF takes the challenge from it).
An outsider gets a 404 byte-identical to the one for a project or job that does not exist.

``test_every_url_is_in_the_matrix`` fails when a URL is added without a row here.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from labeling.models import Annotation, Item, Lease, Membership, Role
from modeling.models import ModelVersion
from tests.factories import ItemFactory, JobFactory, MembershipFactory, UserFactory
from tests.permission_rows import (
    labeling_page,
    monitoring_drift,
    monitoring_overview,
    monitoring_slo,
    monitoring_traffic,
    releases,
    retraining,
    review,
    serving,
)
from tests.permissions import (
    ALLOWED,
    ANON_API_STATUS,
    GHOST_SLUG,
    JOB,
    LOGIN,
    ROLES,
    SLUG,
    VERSION,
    Row,
    admin_up,
    api,
    member,
    owner_up,
)

pytestmark = pytest.mark.django_db

VALID_PROJECT_FORM = {
    "name": "Edited",
    "description": "",
    "guidelines": "",
    "languages": "en",
    "base_checkpoint": "roberta-base",
    "max_text_chars": "20000",
    "al_strategy": "margin",
    "al_batch_size": "50",
    "retrain_after_labels": "200",
    "labels-TOTAL_FORMS": "2",
    "labels-INITIAL_FORMS": "0",
    "labels-0-name": "negative",
    "labels-1-name": "positive",
}
NEW_PROJECT_FORM = {**VALID_PROJECT_FORM, "slug": "brand-new", "task_type": "single_label"}
NEW_PROJECT_API = {"name": "New", "slug": "brand-new", "base_checkpoint": "x", "labels": [{"name": "a"}, {"name": "b"}]}
EVERYONE_LOGGED_IN = {"outsider": 200, "reviewer": 200, "owner": 200, "admin": 200, "superuser": 200}

ROWS = [
    # --- site pages ---------------------------------------------------------------------
    Row("home", {role: 302 for role in ROLES}),
    Row("login", {role: 200 for role in ROLES}),
    Row("password_change", {"anonymous": LOGIN, **EVERYONE_LOGGED_IN}),
    Row("account-settings", {"anonymous": LOGIN, **EVERYONE_LOGGED_IN}),
    Row("account-settings", {"anonymous": LOGIN, **EVERYONE_LOGGED_IN}, "post", data={"action": "create"}),
    Row("admin:index", {**{role: 302 for role in ROLES}, "superuser": 200}),
    Row("schema", {role: 200 for role in ROLES}),
    Row("api-docs", {role: 200 for role in ROLES}),
    Row("healthz", {role: 200 for role in ROLES}),
    Row("readyz", {role: 200 for role in ROLES}),
    Row("metrics", {role: 200 for role in ROLES}),
    # --- project pages ------------------------------------------------------------------
    Row("labeling:project-list", {"anonymous": LOGIN, **EVERYONE_LOGGED_IN}),
    Row("labeling:project-create", {**admin_up(403), "outsider": 403, "superuser": 200}),
    Row("labeling:project-create", {**admin_up(403), "outsider": 403, "superuser": 302}, "post", data=NEW_PROJECT_FORM),
    Row("labeling:project-detail", member(200), kwargs=SLUG),
    Row("labeling:project-edit", owner_up(200), kwargs=SLUG),
    Row("labeling:project-edit", owner_up(302), "post", SLUG, VALID_PROJECT_FORM),
    Row("labeling:project-members", admin_up(200), kwargs=SLUG),
    Row(
        "labeling:project-members",
        admin_up(302),
        "post",
        SLUG,
        {"action": "add", "username": "newbie", "role": "reviewer"},
    ),
    Row("labeling:project-jobs", member(200), kwargs=SLUG),
    Row("labeling:item-list", member(200), kwargs=SLUG),
    Row("labeling:import", owner_up(ALLOWED), kwargs=SLUG),
    Row("labeling:export", owner_up(200), kwargs={**SLUG, "fmt": "csv"}, id="GET labeling:export csv"),
    Row("labeling:export", owner_up(200), kwargs={**SLUG, "fmt": "jsonl"}, id="GET labeling:export jsonl"),
    # --- model version pages (version 1 exists; the train POST is invalid, so nothing is queued) ---
    Row("modeling:version-list", member(200), kwargs=SLUG),
    Row("modeling:version-detail", member(200), kwargs=VERSION),
    Row("modeling:version-progress", member(200), kwargs=VERSION),
    Row("modeling:train", owner_up(200), kwargs=SLUG),
    Row("modeling:train", owner_up(400), "post", SLUG, {"epochs": "0"}),
    # --- job pages (the job belongs to the project and was started by the system) -------
    Row("job-detail", member(200), kwargs=JOB),
    Row("job-progress", member(200), kwargs=JOB),
    Row("job-cancel", owner_up(302), "post", JOB),
    # --- API ------------------------------------------------------------------------------
    Row("api-project-list", api(EVERYONE_LOGGED_IN), is_api=True),
    Row(
        "api-project-list",
        api({**admin_up(403), "outsider": 403, "superuser": 201}),
        "post",
        data=NEW_PROJECT_API,
        is_api=True,
    ),
    Row("api-project-detail", api(member(200)), kwargs=SLUG, is_api=True),
    Row("api-project-detail", api(owner_up(200)), "patch", SLUG, {"name": "Renamed"}, is_api=True),
    Row("api-member-list", api(admin_up(200)), kwargs=SLUG, is_api=True),
    Row("api-member-list", api(admin_up(201)), "post", SLUG, {"username": "newbie"}, is_api=True),
    Row(
        "api-member-detail",
        api(admin_up(200)),
        "patch",
        {**SLUG, "username": "target"},
        {"role": "owner"},
        is_api=True,
    ),
    Row("api-member-detail", api(admin_up(204)), "delete", {**SLUG, "username": "target"}, is_api=True),
    Row("api-item-list", api(member(200)), kwargs=SLUG, is_api=True),
    Row("api-import", api(owner_up(ALLOWED)), "post", SLUG, {}, is_api=True),
    # Reading the import history is open to every member (the overview page shows it too).
    Row("api-dataset-list", api(member(ALLOWED)), kwargs=SLUG, is_api=True),
    Row("api-export", api(owner_up(200)), kwargs=SLUG, is_api=True),
    Row("api-job-detail", api(member(200)), kwargs=JOB, is_api=True),
    Row("api-model-version-list", api(member(200)), kwargs=SLUG, is_api=True),
    # No gold data in this world: owners are let through and refused for the missing data (400).
    Row("api-model-version-list", api(owner_up(400)), "post", SLUG, {}, is_api=True),
    Row("api-model-version-detail", api(member(200)), kwargs=VERSION, is_api=True),
    Row("api-job-cancel", api(owner_up(202)), "post", JOB, is_api=True),
    # The queue: every member labels. The world's one item is unlabeled, so the queue is empty (204).
    Row("api-queue-next", api(member(204)), "post", SLUG, is_api=True),
    Row("api-annotation-create", api(member(400)), "post", SLUG, {}, is_api=True),
    Row("api-queue-skip", api(member(400)), "post", SLUG, {}, is_api=True),
    # "<lease>" is a lease of the requesting user on the world's item (see _lease_for).
    Row("api-lease-heartbeat", api(member(200)), "post", {**SLUG, "lease_id": "<lease>"}, is_api=True),
    *labeling_page.ROWS,
    *review.ROWS,
    *retraining.ROWS,
    *releases.ROWS,
    *serving.ROWS,
    *monitoring_overview.ROWS,
    *monitoring_traffic.ROWS,
    *monitoring_slo.ROWS,
    *monitoring_drift.ROWS,
]

# Django's own account pages beyond login/password change, and the admin's many URLs (its
# index is in the matrix; Django tests the rest): none of them touch Loopline's data.
NOT_IN_MATRIX = {
    "logout",
    "password_change_done",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
}


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(users, superuser, project):
    """The project with an item, a queued system job, and a member the member rows act on."""
    target = UserFactory(username="target")
    MembershipFactory(project=project, user=target, role=Role.REVIEWER)
    UserFactory(username="newbie")
    ItemFactory(project=project, text="hello world", status=Item.Status.UNLABELED)
    job = JobFactory(project=project, created_by=None)
    ModelVersion.objects.get_or_create(project=project, number=1, defaults={"base_checkpoint": "roberta-base"})
    return {**users, "superuser": superuser}, job


def _lease_for(user) -> str:
    """A fresh lease of ``user`` on the world's item (a random id for anonymous users)."""
    if user is None:
        return str(uuid.uuid4())
    item = Item.objects.get(text="hello world")
    lease = Lease.objects.create(
        project_id=item.project_id, item=item, user=user, expires_at=timezone.now() + timedelta(minutes=10)
    )
    return str(lease.pk)


def _annotation_for(user) -> str:
    """A label annotation of ``user`` on the world's item, their latest (an unknown id for anonymous users)."""
    if user is None:
        return "999999"
    item = Item.objects.get(text="hello world")
    label = item.project.labels.first()
    return str(Annotation.objects.create(project_id=item.project_id, item=item, user=user, label=label).pk)


def _url(row: Row, job_id: str, slug: str | None = None, lease_id: str = "", annotation_id: str = "999999") -> str:
    placeholders = {"<job>": job_id, "<lease>": lease_id, "<annotation>": annotation_id}
    kwargs = {key: placeholders.get(value, value) for key, value in row.kwargs.items()}
    if slug is not None and "slug" in kwargs:
        kwargs["slug"] = slug
    return reverse(row.name, kwargs=kwargs)


def _request(row: Row, user, url: str, client_for, api_client_for):
    if row.is_api:
        client = api_client_for(user)
        return (
            getattr(client, row.method)(url, row.data, format="json")
            if row.data is not None
            else (getattr(client, row.method)(url))
        )
    client = client_for(user)
    return getattr(client, row.method)(url, row.data or {}) if row.method == "post" else client.get(url)


def _check(expected: Any, response, url: str) -> None:
    if expected == LOGIN:
        assert response.status_code == 302, response.status_code
        assert response["Location"].startswith(reverse("login") + "?next="), response["Location"]
    elif expected == ALLOWED:
        assert response.status_code not in (401, 403, 404), response.status_code
        assert response.status_code < 500, response.status_code
    else:
        assert response.status_code == expected, (response.status_code, getattr(response, "content", b"")[:300])


def _comparable(response) -> bytes:
    """The body with the per-request CSRF tokens masked out."""
    body = response.content
    body = re.sub(rb'"X-CSRFToken": "[^"]*"', b"", body)
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]*"', b"", body)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", ROWS, ids=[row.test_id for row in ROWS])
def test_permission_matrix(row, role, world, client_for, api_client_for):
    users, job = world
    lease_id = _lease_for(users[role]) if "<lease>" in row.kwargs.values() else ""
    annotation_id = _annotation_for(users[role]) if "<annotation>" in row.kwargs.values() else "999999"
    url = _url(row, str(job.pk), lease_id=lease_id, annotation_id=annotation_id)
    response = _request(row, users[role], url, client_for, api_client_for)
    _check(row.expected[role], response, url)
    if row.expected[role] == 404 and row.kwargs:
        ghost = _url(row, str(uuid.uuid4()), slug=GHOST_SLUG, lease_id=str(uuid.uuid4()))
        ghost_response = _request(row, users[role], ghost, client_for, api_client_for)
        assert ghost_response.status_code == 404
        assert _comparable(ghost_response) == _comparable(response)
    if row.is_api and response.status_code >= 400:
        assert set(response.json()) == {"error"}
        assert set(response.json()["error"]) == {"code", "message", "details"}


def test_anonymous_api_answer_names_the_problem(api_client_for, project):
    response = api_client_for(None).get(reverse("api-project-detail", kwargs=SLUG))
    assert response.status_code == ANON_API_STATUS
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"


def test_a_user_with_the_add_project_permission_may_create(project_creator, client_for, api_client_for):
    assert client_for(project_creator).get(reverse("labeling:project-create")).status_code == 200
    response = api_client_for(project_creator).post(reverse("api-project-list"), NEW_PROJECT_API, format="json")
    assert response.status_code == 201, response.content
    assert Membership.objects.get(project__slug="brand-new", user=project_creator).role == Role.ADMIN


def _url_names(patterns, namespace: str | None = None):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                yield "admin:index"
                continue
            inner = pattern.namespace or namespace
            yield from _url_names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}:{pattern.name}" if namespace else pattern.name


def test_every_url_is_in_the_matrix():
    names = set(_url_names(get_resolver().url_patterns))
    covered = {row.name for row in ROWS}
    assert names - covered - NOT_IN_MATRIX == set()
    assert covered - names == set()

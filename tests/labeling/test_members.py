"""Members: adding, changing roles, removing; the last admin is protected; access follows."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import Membership, Role
from labeling.services.projects import membership_remove, membership_set
from tests.factories import UserFactory
from webapp.errors import Conflict, NotFound, ValidationFailed

pytestmark = pytest.mark.django_db


@pytest.fixture
def newbie(db):
    return UserFactory(username="newbie")


def members_url(project) -> str:
    return reverse("labeling:project-members", kwargs={"slug": project.slug})


def roles(project) -> dict[str, str]:
    return dict(project.memberships.values_list("user__username", "role"))


# --- services ------------------------------------------------------------------------------


def test_the_last_admin_can_be_neither_demoted_nor_removed(project, admin_member):
    with pytest.raises(Conflict):
        membership_set(project=project, user=admin_member, role=Role.OWNER)
    with pytest.raises(Conflict):
        membership_remove(project=project, user=admin_member)
    assert roles(project)[admin_member.username] == Role.ADMIN


def test_an_admin_may_step_down_once_another_admin_exists(project, admin_member, owner):
    membership_set(project=project, user=owner, role=Role.ADMIN)
    membership_remove(project=project, user=admin_member)
    assert roles(project) == {"owner": "admin"}


def test_unknown_roles_inactive_users_and_non_members_are_refused(project, admin_member, newbie):
    with pytest.raises(ValidationFailed):
        membership_set(project=project, user=newbie, role="overlord")
    newbie.is_active = False
    newbie.save()
    with pytest.raises(ValidationFailed):
        membership_set(project=project, user=newbie, role=Role.REVIEWER)
    with pytest.raises(NotFound):
        membership_remove(project=project, user=newbie)
    assert "newbie" not in roles(project)


# --- page ----------------------------------------------------------------------------------


def test_admin_adds_changes_and_removes_members(project, admin_member, newbie, client_for):
    client = client_for(admin_member)
    page = client.get(members_url(project)).content.decode()
    assert "projadmin" in page and "reviewer" in page
    response = client.post(members_url(project), {"action": "add", "username": "newbie", "role": "owner"})
    assert response.status_code == 302
    assert roles(project)["newbie"] == "owner"
    client.post(members_url(project), {"action": "update", "username": "newbie", "role": "reviewer"})
    assert roles(project)["newbie"] == "reviewer"
    response = client.post(members_url(project), {"action": "remove", "username": "newbie"}, follow=True)
    assert "newbie removed." in response.content.decode()
    assert "newbie" not in roles(project)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "add", "username": "ghost", "role": "reviewer"}, "There is no user named &#x27;ghost&#x27;"),
        ({"action": "add", "username": "reviewer", "role": "owner"}, "reviewer is already a member"),
        ({"action": "add", "username": "newbie", "role": "king"}, "Select a valid choice."),
        ({"action": "update", "username": "projadmin", "role": "reviewer"}, "at least one admin"),
        ({"action": "remove", "username": "projadmin"}, "at least one admin"),
        ({"action": "remove", "username": "newbie"}, "newbie is not a member of this project."),
        ({"action": "promote-all"}, "Unknown action"),
    ],
)
def test_bad_member_changes_re_render_with_a_message(
    project, admin_member, reviewer, newbie, client_for, data, message
):
    before = roles(project)
    response = client_for(admin_member).post(members_url(project), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert roles(project) == before


def test_a_removed_member_loses_access_at_once(project, admin_member, reviewer, client_for):
    detail = reverse("labeling:project-detail", kwargs={"slug": project.slug})
    assert client_for(reviewer).get(detail).status_code == 200
    client_for(admin_member).post(members_url(project), {"action": "remove", "username": "reviewer"})
    assert client_for(reviewer).get(detail).status_code == 404


# --- API -----------------------------------------------------------------------------------


def api_url(project, username: str | None = None) -> str:
    if username is None:
        return reverse("api-member-list", kwargs={"slug": project.slug})
    return reverse("api-member-detail", kwargs={"slug": project.slug, "username": username})


def test_api_lists_adds_changes_and_removes(project, admin_member, owner, newbie, api_client_for):
    client = api_client_for(admin_member)
    listed = client.get(api_url(project)).json()
    assert [(m["username"], m["role"]) for m in listed] == [("owner", "owner"), ("projadmin", "admin")]
    response = client.post(api_url(project), {"username": "newbie"}, format="json")
    assert response.status_code == 201
    assert response.json()["role"] == "reviewer"
    response = client.patch(api_url(project, "newbie"), {"role": "admin"}, format="json")
    assert (response.status_code, response.json()["role"]) == (200, "admin")
    assert client.delete(api_url(project, "newbie")).status_code == 204
    assert not Membership.objects.filter(project=project, user=newbie).exists()


@pytest.mark.parametrize(
    ("method", "username", "payload", "status", "code"),
    [
        ("post", None, {"username": "ghost"}, 400, "validation_error"),
        ("post", None, {"username": "owner", "role": "admin"}, 409, "conflict"),
        ("post", None, {"username": "newbie", "role": "king"}, 400, "validation_error"),
        ("post", None, {"username": "newbie", "colour": "blue"}, 400, "validation_error"),
        ("patch", "projadmin", {"role": "owner"}, 409, "conflict"),
        ("patch", "ghost", {"role": "owner"}, 404, "not_found"),
        ("delete", "projadmin", None, 409, "conflict"),
        ("delete", "newbie", None, 404, "not_found"),
    ],
)
def test_api_member_errors(
    project, admin_member, owner, newbie, api_client_for, method, username, payload, status, code
):
    before = roles(project)
    client = api_client_for(admin_member)
    url = api_url(project, username)
    response = getattr(client, method)(url, payload, format="json") if payload else getattr(client, method)(url)
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code
    assert roles(project) == before

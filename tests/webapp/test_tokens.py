"""The account settings page: create, regenerate and revoke the API token; the API follows."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.test_permission_matrix import ANON_API_STATUS

pytestmark = pytest.mark.django_db


def shown_key(response) -> str:
    match = re.search(r'<pre class="token" id="new-token">([0-9a-f]{40})</pre>', response.content.decode())
    assert match, "the new key is shown once on the page"
    return match.group(1)


def api_status(key: str, project) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get(reverse("api-project-detail", kwargs={"slug": project.slug})).status_code


def test_create_regenerate_and_revoke(project, reviewer, client_for):
    client = client_for(reviewer)
    url = reverse("account-settings")
    assert "You have no API token." in client.get(url).content.decode()

    first = shown_key(client.post(url, {"action": "create"}))
    assert api_status(first, project) == 200
    page = client.get(url).content.decode()
    assert first not in page and f"…{first[-4:]}" in page  # shown once, then only its tail

    second = shown_key(client.post(url, {"action": "regenerate"}))
    assert second != first
    assert api_status(second, project) == 200
    assert api_status(first, project) == ANON_API_STATUS

    response = client.post(url, {"action": "revoke"}, follow=True)
    assert "Token revoked" in response.content.decode()
    assert not Token.objects.filter(user=reviewer).exists()
    assert api_status(second, project) == ANON_API_STATUS


def test_a_token_only_grants_its_users_access(project, reviewer, outsider, client_for):
    key = shown_key(client_for(outsider).post(reverse("account-settings"), {"action": "create"}))
    assert api_status(key, project) == 404


def test_unknown_actions_change_nothing(reviewer, client_for):
    token = Token.objects.create(user=reviewer)
    response = client_for(reviewer).post(reverse("account-settings"), {"action": "steal"}, follow=True)
    assert "Unknown action." in response.content.decode()
    assert Token.objects.get(user=reviewer).key == token.key


def test_the_page_lists_the_users_projects_and_roles(project, owner, client_for):
    page = client_for(owner).get(reverse("account-settings")).content.decode()
    assert "Acme sentiment" in page and "Model owner" in page

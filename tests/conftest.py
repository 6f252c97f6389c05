"""Shared fixtures: one named user per role, a project they belong to, API clients, a Chromium tab.

The roles are the ones the permission matrix walks: ``anonymous`` (no user), ``outsider`` (a user
with no membership in the project), ``reviewer``, ``owner``, ``admin``.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from labeling.models import Role
from tests.browser import live_tab
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

PASSWORD = "correct-horse-battery"
ROLES = ("anonymous", "outsider", "reviewer", "owner", "admin")


def is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


requires_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres", "pgsql")),
    reason="needs PostgreSQL (set DATABASE_URL); the embedded SQLite default lacks this feature",
)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2's deliberate slowness costs seconds per test user; tests need no brute-force resistance."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    """Tests render pages without running collectstatic, so no hashed-name manifest exists."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def project(db):
    return ProjectFactory(slug="acme-sentiment", name="Acme sentiment")


@pytest.fixture
def other_project(db):
    return ProjectFactory(slug="other-project", name="Other project")


@pytest.fixture
def outsider(db, other_project):
    user = UserFactory(username="outsider")
    MembershipFactory(project=other_project, user=user, role=Role.ADMIN)
    return user


@pytest.fixture
def reviewer(db, project):
    user = UserFactory(username="reviewer")
    MembershipFactory(project=project, user=user, role=Role.REVIEWER)
    return user


@pytest.fixture
def owner(db, project):
    user = UserFactory(username="owner")
    MembershipFactory(project=project, user=user, role=Role.OWNER)
    return user


@pytest.fixture
def admin_member(db, project):
    user = UserFactory(username="projadmin")
    MembershipFactory(project=project, user=user, role=Role.ADMIN)
    return user


@pytest.fixture
def users(anonymous_user, outsider, reviewer, owner, admin_member):
    """Every role of the permission matrix, by name (``anonymous`` is None)."""
    return {"anonymous": None, "outsider": outsider, "reviewer": reviewer, "owner": owner, "admin": admin_member}


@pytest.fixture
def anonymous_user():
    return None


@pytest.fixture
def api_client_for():
    """Return a DRF client authenticated (by token) as the given user, or anonymous for None."""
    from rest_framework.authtoken.models import Token

    def make(user):
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def client_for(client):
    """Return a Django test client logged in (session) as the given user, or anonymous for None."""
    from django.test import Client

    def make(user):
        c = Client()
        if user is not None:
            c.force_login(user)
        return c

    return make


@pytest.fixture
def project_creator(db):
    """A user with the ``labeling.add_project`` permission and no membership."""
    from django.contrib.auth.models import Permission

    user = UserFactory(username="creator")
    user.user_permissions.add(Permission.objects.get(codename="add_project", content_type__app_label="labeling"))
    return user


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def chromium_page(live_server, monkeypatch):
    """A Chromium tab on the live server, and the server's base URL (tests/browser.py)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with live_tab(live_server.url) as page:
        yield page

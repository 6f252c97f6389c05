"""Every API error has one shape, ``{"error": {"code", "message", "details"}}``, and a fitting status."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import Project
from tests.test_permission_matrix import ANON_API_STATUS

pytestmark = pytest.mark.django_db

NEW = {"name": "New", "slug": "fresh", "base_checkpoint": "roberta-base", "labels": [{"name": "a"}, {"name": "b"}]}


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def test_malformed_json_is_a_400_parse_error(project_creator, api_client_for):
    client = api_client_for(project_creator)
    response = client.post(reverse("api-project-list"), data='{"name": "x",', content_type="application/json")
    error_of(response, 400, "parse_error")
    assert not Project.objects.exists()


def test_a_body_that_is_not_an_object_is_a_400(project_creator, api_client_for):
    response = api_client_for(project_creator).post(reverse("api-project-list"), [1, 2], format="json")
    error_of(response, 400, "validation_error")


def test_a_bad_label_set_is_a_400_with_details(project_creator, api_client_for):
    payload = {**NEW, "labels": [{"name": "dup"}, {"name": "DUP", "hotkey": "u"}, {"name": "c", "color": "blue"}]}
    response = api_client_for(project_creator).post(reverse("api-project-list"), payload, format="json")
    error = error_of(response, 400, "validation_error")
    assert set(error["details"]) == {"labels.duplicates", "labels.hotkey", "labels.color"}
    assert "dup" in error["details"]["labels.duplicates"]
    assert not Project.objects.filter(slug="fresh").exists()


def test_a_label_without_a_name_is_a_400_naming_the_row(project_creator, api_client_for):
    payload = {**NEW, "labels": [{"name": "a"}, {"hotkey": "b"}]}
    response = api_client_for(project_creator).post(reverse("api-project-list"), payload, format="json")
    error = error_of(response, 400, "validation_error")
    rows = error["details"]["labels"]  # DRF lists per-row errors, or maps row index → errors
    by_row = {str(i): e for i, e in enumerate(rows) if e} if isinstance(rows, list) else rows
    assert by_row == {"1": {"name": ["This field is required."]}}


def test_wrong_types_are_a_400_per_field(project_creator, api_client_for):
    payload = {**NEW, "al_batch_size": "many", "languages": "en"}
    response = api_client_for(project_creator).post(reverse("api-project-list"), payload, format="json")
    error = error_of(response, 400, "validation_error")
    assert set(error["details"]) == {"al_batch_size", "languages"}


def test_a_duplicate_slug_is_a_409(project, project_creator, api_client_for):
    payload = {**NEW, "slug": project.slug}
    error = error_of(
        api_client_for(project_creator).post(reverse("api-project-list"), payload, format="json"), 409, "conflict"
    )
    assert error["details"] == {"slug": "taken"}
    assert Project.objects.filter(slug=project.slug).count() == 1


def test_unauthenticated_and_bad_tokens(project, api_client_for):
    url = reverse("api-project-detail", kwargs={"slug": project.slug})
    error_of(api_client_for(None).get(url), ANON_API_STATUS, "not_authenticated")
    client = api_client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    error = error_of(client.get(url), ANON_API_STATUS, "authentication_failed")
    assert error["message"] == "Invalid token."


def test_an_unknown_project_is_a_404(reviewer, api_client_for):
    error_of(api_client_for(reviewer).get(reverse("api-project-detail", kwargs={"slug": "nope"})), 404, "not_found")


def test_an_unknown_api_path_is_a_json_404(reviewer, api_client_for):
    error_of(api_client_for(reviewer).get("/api/v1/no-such-endpoint"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "name"),
    [("delete", "api-project-detail"), ("put", "api-project-detail"), ("post", "api-item-list"), ("put", "api-export")],
)
def test_a_wrong_method_is_a_405(project, admin_member, api_client_for, method, name):
    response = getattr(api_client_for(admin_member), method)(reverse(name, kwargs={"slug": project.slug}))
    error_of(response, 405, "method_not_allowed")
    assert Project.objects.filter(slug=project.slug).exists()


def test_too_small_a_role_is_a_403_saying_which_role_is_needed(project, reviewer, api_client_for):
    url = reverse("api-project-detail", kwargs={"slug": project.slug})
    error = error_of(api_client_for(reviewer).patch(url, {"name": "x"}, format="json"), 403, "permission_denied")
    assert error["message"] == "This needs the model owner role in this project; you are reviewer."


def test_an_invalid_item_cursor_is_an_error_in_the_same_format(project, reviewer, api_client_for):
    url = reverse("api-item-list", kwargs={"slug": project.slug})
    error_of(api_client_for(reviewer).get(url, {"cursor": "garbage"}), 404, "not_found")

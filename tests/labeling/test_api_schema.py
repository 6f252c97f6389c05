"""The OpenAPI schema documents every labeling endpoint with its parameters and bodies."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    response = client.get(reverse("schema"), {"format": "json"})
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/api/v1/projects", {"get", "post"}),
        ("/api/v1/projects/{slug}", {"get", "patch"}),
        ("/api/v1/projects/{slug}/members", {"get", "post"}),
        ("/api/v1/projects/{slug}/members/{username}", {"patch", "delete"}),
        ("/api/v1/projects/{slug}/items", {"get"}),
        ("/api/v1/projects/{slug}/export", {"get"}),
    ],
)
def test_each_endpoint_and_method_is_documented(schema, path, methods):
    assert set(schema["paths"][path]) - {"parameters"} == methods
    for method in methods:
        assert schema["paths"][path][method]["summary"]


def test_bodies_are_documented(schema):
    create = schema["paths"]["/api/v1/projects"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    body = schema["components"]["schemas"][create["$ref"].rsplit("/", 1)[1]]
    assert {"name", "slug", "base_checkpoint", "labels"} <= set(body["required"])
    patch = schema["paths"]["/api/v1/projects/{slug}"]["patch"]["requestBody"]["content"]["application/json"]
    assert "labels" in schema["components"]["schemas"][patch["schema"]["$ref"].rsplit("/", 1)[1]]["properties"]


def test_item_filters_and_export_formats_are_documented(schema):
    items = {p["name"]: p for p in schema["paths"]["/api/v1/projects/{slug}/items"]["get"]["parameters"]}
    assert {"status", "label", "language", "split", "q", "cursor", "page_size"} <= set(items)
    assert "gold" in items["status"]["schema"]["enum"]
    export = schema["paths"]["/api/v1/projects/{slug}/export"]["get"]
    formats = {p["name"]: p for p in export["parameters"]}["format"]["schema"]["enum"]
    assert formats == ["csv", "jsonl"]
    assert {"text/csv", "application/x-ndjson"} <= set(export["responses"]["200"]["content"])

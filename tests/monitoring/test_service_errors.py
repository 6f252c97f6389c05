"""The predict view records service-side failures (429, 503, 5xx) as PredictionError rows, never 4xx."""

from __future__ import annotations

import pytest
from django.urls import reverse

from modeling.models import Alias, ModelVersion, PredictionError, ReleasePolicy

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_state(settings, tmp_path):
    settings.API_SERVING_STATE_TTL_MS = 0
    settings.API_AUTH_CACHE_MS = 0
    settings.API_RATE_LIMIT_STORE = f"file://{tmp_path / 'ratelimit'}"
    settings.MODEL_SERVER_ADDRESS = f"unix:{tmp_path / 'nobody.sock'}"  # nothing listens: the server is down
    settings.MODEL_SERVER_TIMEOUT_SECONDS = 1


def _url(project) -> str:
    return reverse("api-predict", kwargs={"slug": project.slug})


def _production(project, number=4):
    version = ModelVersion.objects.create(
        project=project, number=number, status=ModelVersion.Status.PRODUCTION, base_checkpoint="tiny-roberta"
    )
    Alias.objects.create(project=project, name="production", version=version)


def test_no_production_model_is_recorded_with_its_texts(project, reviewer, api_client_for):
    response = api_client_for(reviewer).post(_url(project), {"texts": ["a", "b", "c"]}, format="json")
    assert response.status_code == 503
    error = PredictionError.objects.get()
    assert (error.kind, error.status_code, error.texts, error.version_number, error.route) == (
        "no_model",
        503,
        3,
        0,
        "",
    )
    assert error.caller == "reviewer" and error.latency_ms > 0


def test_a_model_server_that_is_down_is_recorded_against_the_routed_version(project, reviewer, api_client_for):
    _production(project)
    response = api_client_for(reviewer).post(_url(project), {"texts": ["a", "b"]}, format="json")
    assert response.status_code == 503
    error = PredictionError.objects.get()
    assert (error.kind, error.texts, error.version_number, error.route) == ("server_error", 2, 4, "production")


def test_the_rate_limit_is_recorded_and_client_errors_are_not(project, reviewer, api_client_for):
    ReleasePolicy.objects.create(project=project, rate_limit_per_minute=1)
    client = api_client_for(reviewer)
    assert client.post(_url(project), {"texts": []}, format="json").status_code == 400  # uses the one request
    assert not PredictionError.objects.exists()
    response = client.post(_url(project), {"texts": ["a"]}, format="json")
    if response.status_code != 429:  # the minute turned between the two calls: try once more
        response = client.post(_url(project), {"texts": ["a"]}, format="json")
    assert response.status_code == 429
    limited = PredictionError.objects.get(kind="rate_limited")
    assert (limited.status_code, limited.texts) == (429, 1)  # refused before the body was read


def test_outsiders_and_bad_bodies_write_nothing(project, outsider, reviewer, api_client_for):
    assert api_client_for(outsider).post(_url(project), {"texts": ["a"]}, format="json").status_code == 404
    assert api_client_for(reviewer).post(_url(project), {"texts": "nope"}, format="json").status_code == 400
    assert not PredictionError.objects.exists()

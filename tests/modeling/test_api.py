"""The model-version API: start training (202), refusals (400, 403, 404, 409), list and detail."""

from __future__ import annotations

import pytest
from django.urls import reverse

from modeling.models import ModelVersion
from tests.modeling.conftest import TINY_OVERRIDES
from webapp.models import Job

pytestmark = pytest.mark.django_db
LIST = reverse("api-model-version-list", kwargs={"slug": "acme-sentiment"})


def _detail(number: int) -> str:
    return reverse("api-model-version-detail", kwargs={"slug": "acme-sentiment", "number": number})


def test_an_owner_starts_training_and_gets_the_version_and_its_job(roberta_project, owner, api_client_for):
    response = api_client_for(owner).post(LIST, {"overrides": {"epochs": 2}}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["number"], body["status"], body["train_config"]["epochs"]) == (1, "queued", 2)
    assert body["job"]["kind"] == "train" and body["job"]["status"] == "queued"
    assert Job.objects.get(pk=body["job"]["id"]).params == {"model_version_id": ModelVersion.objects.get().pk}


def test_a_start_without_a_body_uses_the_defaults(roberta_project, admin_member, api_client_for):
    response = api_client_for(admin_member).post(LIST, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["train_config"]["lr"] == 3e-5


def test_bad_overrides_answer_400_naming_the_field(roberta_project, owner, api_client_for):
    response = api_client_for(owner).post(LIST, {"overrides": {"lr": 0, "epochs": "many"}}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and set(error["details"]["overrides"]) == {"epochs"}
    response = api_client_for(owner).post(LIST, {"overrides": {"lr": 0}}, format="json")
    assert response.status_code == 400 and "lr must be positive" in response.json()["error"]["message"]
    response = api_client_for(owner).post(LIST, {"hyperparameters": {}}, format="json")
    assert response.status_code == 400 and "hyperparameters" in response.json()["error"]["details"]
    assert not ModelVersion.objects.exists()


def test_a_second_start_answers_409_and_numbers_follow_on(roberta_project, owner, api_client_for):
    client = api_client_for(owner)
    assert client.post(LIST, {"overrides": TINY_OVERRIDES}, format="json").status_code == 202
    response = client.post(LIST, {}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    Job.objects.update(status=Job.Status.SUCCEEDED)
    ModelVersion.objects.update(status=ModelVersion.Status.CANDIDATE)
    second = client.post(LIST, {}, format="json").json()
    assert (second["number"], second["parent"]) == (2, 1)
    listed = client.get(LIST).json()
    assert [v["number"] for v in listed] == [2, 1]


def test_no_data_answers_400_saying_what_is_missing(project, owner, api_client_for):
    response = api_client_for(owner).post(LIST, {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_enough_data"
    assert "gold train or labeled pool items for at least 2 labels (found 0)" in response.json()["error"]["message"]


def test_members_read_versions_with_metrics_and_outsiders_get_404(
    roberta_project, owner, reviewer, outsider, api_client_for
):
    version = ModelVersion.objects.create(
        project=roberta_project,
        number=1,
        base_checkpoint="x",
        status=ModelVersion.Status.CANDIDATE,
        metrics={"eval": {"accuracy": 0.75, "macro_f1": 0.7}},
        history=[{"step": 1, "loss": 0.6}],
    )
    listed = api_client_for(reviewer).get(LIST).json()
    assert listed[0]["macro_f1"] == 0.7 and "metrics" not in listed[0]
    detail = api_client_for(reviewer).get(_detail(1)).json()
    assert detail["metrics"] == version.metrics and detail["history"] == version.history
    assert detail["accuracy"] == 0.75
    assert api_client_for(reviewer).get(_detail(2)).status_code == 404
    assert api_client_for(outsider).get(_detail(1)).status_code == 404
    assert api_client_for(reviewer).post(LIST, {}, format="json").status_code == 403


def test_the_schema_documents_both_endpoints(api_client_for, owner):
    schema = api_client_for(owner).get(reverse("schema"), HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert set(paths["/api/v1/projects/{slug}/model-versions"]) >= {"get", "post"}
    assert "202" in paths["/api/v1/projects/{slug}/model-versions"]["post"]["responses"]
    assert "get" in paths["/api/v1/projects/{slug}/model-versions/{number}"]

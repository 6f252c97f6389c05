"""The prediction API against a real ``manage.py model_server`` process: the contract, every status code,
canary, shadow, redaction and feedback.

The model server runs once for the module with an hour-long log interval, so nothing reaches the
database unless a test (or the feedback endpoint) asks it to flush: that is what makes the
"not flushed yet" feedback case real.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
import uuid

import pytest
from django.db import connection
from django.urls import reverse

from modeling.ml.batching import BatchPolicy
from modeling.models import PredictionFeedback, PredictionLog, ReleasePolicy
from modeling.redaction import redact
from modeling.services.serving import audit_sampled
from modeling.serving.server import ModelServer, artifact_runner
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.modeling.serving.harness import (
    LABELS,
    TEXTS,
    build_artifacts,
    short_socket_dir,
    wsgi_post,
)
from tests.modeling.serving.harness import deploy as _deploy
from tests.modeling.serving.harness import reference as _reference
from tests.modeling.serving.harness import set_policy as _policy

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.integration,
    pytest.mark.usefixtures("fresh_serving_state"),
]
DEFAULT_AUDIT_SHARE = ReleasePolicy._meta.get_field("audit_share").get_default()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return build_artifacts(tmp_path_factory.mktemp("predict-api"))


@pytest.fixture
def serving(settings, model_server):
    settings.MODEL_SERVER_ADDRESS = model_server.address
    return model_server


def _url(project, name="api-predict") -> str:
    return reverse(name, kwargs={"slug": project.slug})


def _flushed_rows(server, **filters):
    assert server.client.flush() is True
    return PredictionLog.objects.filter(**filters)


@pytest.fixture
def deployed(serving, project, artifacts):
    _deploy(project, artifacts[0], 1, "production")
    serving.wait_serving(f"{project.pk}:production", 1)
    return project


# --- 200: the contract ---------------------------------------------------------------------------


def test_predict_answers_each_text_in_input_order_with_calibrated_scores(
    deployed, serving, reviewer, artifacts, api_client_for
):
    response = api_client_for(reviewer).post(_url(deployed), {"texts": TEXTS}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"model_version", "predictions"} and body["model_version"] == 1
    assert len(body["predictions"]) == len(TEXTS)
    for prediction, expected in zip(body["predictions"], _reference(artifacts[0], TEXTS), strict=True):
        assert set(prediction) == {"id", "label", "score", "scores"}
        assert uuid.UUID(prediction["id"]).version == 4
        assert list(prediction["scores"]) == LABELS
        assert list(prediction["scores"].values()) == pytest.approx(expected, abs=1e-5)
        assert prediction["label"] == LABELS[max(range(3), key=expected.__getitem__)]
        assert prediction["score"] == max(prediction["scores"].values())
    ids = [p["id"] for p in body["predictions"]]
    rows = {str(row.id): row for row in _flushed_rows(serving, project=deployed)}
    assert set(rows) == set(ids)
    for text, prediction in zip(TEXTS, body["predictions"], strict=True):
        row = rows[prediction["id"]]
        assert (row.route, row.version_number, row.caller, row.label) == (
            "production",
            1,
            "reviewer",
            prediction["label"],
        )
        assert row.probs == prediction["scores"] and row.confidence == prediction["score"]
        assert row.input_chars == len(text) and row.text_sha256 == hashlib.sha256(text.encode()).hexdigest()
        # Texts are not logged (no opt-in), except those the default audit sample draws (kept redacted).
        assert row.audit == audit_sampled(row.id, DEFAULT_AUDIT_SHARE) and row.latency_ms > 0
        assert row.text == (redact(text) if row.audit else None)


def test_a_session_member_may_predict_and_a_version_can_be_pinned(deployed, serving, owner, artifacts, client_for):
    _deploy(deployed, artifacts[1], 2, "canary")
    serving.wait_serving(f"{deployed.pk}:canary", 2)
    client = client_for(owner)
    for model, version in (("production", 1), ("canary", 2), (2, 2), (1, 1)):
        response = client.post(_url(deployed), {"texts": TEXTS[:2], "model": model}, content_type="application/json")
        assert response.status_code == 200, response.content
        assert response.json()["model_version"] == version
    routes = _flushed_rows(serving, project=deployed).values_list("route", flat=True)
    assert sorted(set(routes)) == ["canary", "pinned", "production"]


# --- 400 / 401 / 404 / 413 / 429 -----------------------------------------------------------------

BAD_BODIES = [
    ({}, "texts", None),
    ({"texts": []}, "texts", None),
    ({"texts": "one text"}, "texts", None),
    ({"texts": ["fine", 5, "fine"]}, "texts", 1),
    ({"texts": ["fine", "fine", "   "]}, "texts", 2),
    ({"texts": ["x" * 101]}, "texts", 0),
    ({"texts": ["a", "b", "c", "d"]}, "texts", None),
    ({"texts": ["fine"], "model": "staging"}, "model", None),
    ({"texts": ["fine"], "model": True}, "model", None),
    ({"texts": ["fine"], "model": 0}, "model", None),
    ({"texts": ["fine"], "model": 99}, "model", None),
    ({"texts": ["fine"], "model": 7}, "model", None),
    ({"texts": ["fine"], "model": "canary"}, "model", None),
    ({"texts": ["fine"], "temperature": 2}, "temperature", None),
    (["fine"], "body", None),
]


@pytest.mark.parametrize(("body", "field", "index"), BAD_BODIES, ids=[json.dumps(b)[:40] for b, _, _ in BAD_BODIES])
def test_bad_input_is_a_400_naming_the_field_and_index_and_nothing_is_logged(
    deployed, serving, reviewer, artifacts, api_client_for, body, field, index
):
    _policy(deployed, max_texts_per_request=3, max_text_chars=100)
    _deploy(deployed, artifacts[1], 7)  # exists, but no alias points at it: not served
    response = api_client_for(reviewer).post(_url(deployed), body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["details"]["field"] == field
    assert error["details"].get("index") == index
    if index is not None:
        assert f"texts[{index}]" in error["message"]
    assert not _flushed_rows(serving, project=deployed).exists()


def test_unparsable_json_and_a_bad_caller_key_are_400s(deployed, reviewer, api_client_for):
    client = api_client_for(reviewer)
    response = client.generic("POST", _url(deployed), b'{"texts": ["a",', content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "parse_error"
    for url in (_url(deployed), _url(deployed, "api-feedback")):
        deep = client.generic("POST", url, b"[" * 5000 + b"]" * 5000, content_type="application/json")
        assert deep.status_code == 400 and deep.json()["error"]["details"]["field"] == "body"
    surrogate = client.generic(
        "POST", _url(deployed), b'{"texts": ["ok", "bad \\ud800"]}', content_type="application/json"
    )
    assert surrogate.status_code == 400 and surrogate.json()["error"]["details"]["index"] == 1
    response = client.post(_url(deployed), {"texts": ["a"]}, format="json", HTTP_X_CALLER_KEY="k" * 101)
    assert response.status_code == 400 and response.json()["error"]["details"]["field"] == "X-Caller-Key"


def test_no_or_a_bad_token_is_a_401(deployed, api_client_for):
    client = api_client_for(None)
    assert client.post(_url(deployed), {"texts": ["a"]}, format="json").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    response = client.post(_url(deployed), {"texts": ["a"]}, format="json")
    assert response.status_code == 401 and response.json()["error"]["code"] == "authentication_failed"


def test_outsiders_get_the_same_404_as_for_a_missing_project(deployed, outsider, api_client_for):
    client = api_client_for(outsider)
    hidden = client.post(_url(deployed), {"texts": ["a"]}, format="json")
    ghost = client.post(reverse("api-predict", kwargs={"slug": "no-such-project"}), {"texts": ["a"]}, format="json")
    assert hidden.status_code == ghost.status_code == 404
    assert hidden.content == ghost.content


def test_a_body_larger_than_any_valid_request_is_a_413_before_it_is_read(deployed, reviewer, api_client_for, settings):
    _policy(deployed, max_texts_per_request=2, max_text_chars=10)
    client = api_client_for(reviewer)
    response = client.post(_url(deployed), {"texts": ["x" * 5000]}, format="json")
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    assert client.post(_url(deployed), {"texts": ["x" * 11]}, format="json").status_code == 400  # small: read, refused
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024  # the global cap applies under generous project limits too
    _policy(deployed, max_texts_per_request=64, max_text_chars=20_000)
    assert client.post(_url(deployed), {"texts": ["x" * 2000]}, format="json").status_code == 413


def test_the_rate_limit_is_per_token_and_answers_429_with_retry_after(
    deployed, serving, reviewer, owner, api_client_for
):
    _policy(deployed, rate_limit_per_minute=3)
    while time.time() % 60 > 50:  # the four calls must fall in one one-minute window
        time.sleep(0.5)
    statuses = [api_client_for(reviewer).post(_url(deployed), {"texts": ["hi"]}, format="json") for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    limited = statuses[-1]
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited.json()["error"]["details"]["retry_after"] == int(limited["Retry-After"])
    # Another token has its own budget.
    assert api_client_for(owner).post(_url(deployed), {"texts": ["hi"]}, format="json").status_code == 200


# --- 503 ---------------------------------------------------------------------------------------------


def test_no_production_model_is_a_503_with_retry_after(serving, project, reviewer, artifacts, api_client_for):
    _deploy(project, artifacts[0], 1)  # trained, never promoted
    response = api_client_for(reviewer).post(_url(project), {"texts": ["hi"]}, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_production_model" and int(response["Retry-After"]) >= 1


def test_a_model_server_that_is_down_is_a_503_with_retry_after(deployed, reviewer, api_client_for, settings, tmp_path):
    settings.MODEL_SERVER_ADDRESS = f"unix:{tmp_path / 'nobody.sock'}"  # nothing listens there
    response = api_client_for(reviewer).post(_url(deployed), {"texts": ["hi"]}, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable" and int(response["Retry-After"]) >= 1


def test_an_overloaded_model_server_is_a_503_with_retry_after(project, reviewer, artifacts, api_client_for, settings):
    """A real server with a one-text queue; the first batch is held so the queue fills deterministically."""
    gate = threading.Event()

    def held_loader(spec):
        labels, run = artifact_runner(spec)

        def held(texts):
            if "warm up" not in texts:
                gate.wait(30)
            return run(texts)

        return labels, held

    _deploy(project, artifacts[0], 1, "production")
    server = ModelServer(
        policy=BatchPolicy(max_batch_texts=1, max_queue_texts=1, max_wait_ms=0), loader=held_loader, threads=1
    )
    server.load(artifacts[0].spec(f"{project.pk}:production", 1))
    socket_dir = short_socket_dir()
    address = f"unix:{socket_dir / 'held.sock'}"
    listener = server.serve(address.removeprefix("unix:"))
    settings.MODEL_SERVER_ADDRESS = address
    results: list[int] = []

    def call():
        try:
            response = api_client_for(reviewer).post(_url(project), {"texts": ["hi"]}, format="json")
            results.append(response.status_code)
        finally:
            connection.close()  # this thread's own connection

    try:
        running = threading.Thread(target=call)
        running.start()
        _until(
            lambda: server.stats()["models"][f"{project.pk}:production"]["queued_texts"] == 0 and _requests(server) == 1
        )
        queued = threading.Thread(target=call)
        queued.start()
        _until(lambda: _requests(server) == 2)
        response = api_client_for(reviewer).post(_url(project), {"texts": ["hi"]}, format="json")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "overloaded" and int(response["Retry-After"]) >= 1
        gate.set()
        running.join(30)
        queued.join(30)
        assert results == [200, 200]
    finally:
        gate.set()
        listener.shutdown()
        listener.server_close()
        server.close()
        shutil.rmtree(socket_dir, ignore_errors=True)


def _requests(server) -> int:
    return sum(model["requests"] for model in server.stats()["models"].values())


def _until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_each_web_process_reuses_a_projects_serving_state_for_the_configured_time(project, settings):
    from modeling.services.serving import state as serving_caches

    serving_caches._states.clear()  # nothing cached by earlier tests for a project that had this id
    serving_state = serving_caches.serving_state
    settings.API_SERVING_STATE_TTL_MS = 60_000
    _policy(project, canary_percent=5.0)
    first = serving_state(project=project)
    _policy(project, canary_percent=50.0)
    assert serving_state(project=project) is first and first.policy.canary_percent == 5.0
    settings.API_SERVING_STATE_TTL_MS = 0
    assert serving_state(project=project).policy.canary_percent == 50.0


def test_predict_remembers_a_token_and_a_membership_for_the_cache_time_only(
    deployed, reviewer, api_client_for, settings
):
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    from labeling.models import Membership
    from modeling.api import predict
    from modeling.services.serving import state as serving_caches

    predict._tokens.clear()
    serving_caches._members.clear()
    settings.API_AUTH_CACHE_MS = settings.API_SERVING_STATE_TTL_MS = 400
    client = api_client_for(reviewer)
    assert client.post(_url(deployed), {"texts": ["hi"]}, format="json").status_code == 200
    with CaptureQueriesContext(db) as queries:
        assert client.post(_url(deployed), {"texts": ["hi"]}, format="json").status_code == 200
    assert len(queries) == 0  # a steady caller's request reads nothing from the database
    Membership.objects.filter(user=reviewer, project=deployed).delete()
    Token.objects.filter(user=reviewer).delete()
    assert client.post(_url(deployed), {"texts": ["hi"]}, format="json").status_code == 200  # within the cache time
    time.sleep(0.45)
    assert client.post(_url(deployed), {"texts": ["hi"]}, format="json").status_code == 401
    new_client = api_client_for(reviewer)  # a new token: the removed membership is checked again
    assert new_client.post(_url(deployed), {"texts": ["hi"]}, format="json").status_code == 404


# --- canary and shadow ----------------------------------------------------------------------------------


def test_the_canary_gets_its_share_of_callers_within_three_points_and_each_caller_sticks(
    deployed, serving, reviewer, artifacts, api_client_for
):
    _deploy(deployed, artifacts[1], 2, "canary")
    _policy(deployed, canary_percent=20.0, rate_limit_per_minute=100_000)
    serving.wait_serving(f"{deployed.pk}:canary", 2)
    client = api_client_for(reviewer)
    versions = {}
    for i in range(2000):
        response = client.post(_url(deployed), {"texts": ["hi"]}, format="json", HTTP_X_CALLER_KEY=f"caller-{i}")
        assert response.status_code == 200, response.content
        versions[f"caller-{i}"] = response.json()["model_version"]
    share = sum(v == 2 for v in versions.values()) / len(versions) * 100
    assert 17.0 <= share <= 23.0, share
    for key in list(versions)[:100]:  # sticky: the same caller lands on the same version again
        response = client.post(_url(deployed), {"texts": ["hi"]}, format="json", HTTP_X_CALLER_KEY=key)
        assert response.json()["model_version"] == versions[key]
    answered = {
        client.post(_url(deployed), {"texts": ["hi"]}, format="json").json()["model_version"] for _ in range(20)
    }
    assert len(answered) == 1  # without a caller key the token's user is the caller
    rows = _flushed_rows(serving, project=deployed)
    assert rows.filter(route="canary").count() == rows.filter(version_number=2).count()
    once = list(versions)[100:]  # callers asked only once
    on_canary = next(key for key in once if versions[key] == 2)
    on_production = next(key for key in once if versions[key] == 1)
    assert rows.filter(route="canary", caller=on_canary).count() == 1
    assert rows.filter(caller=on_production).values_list("route", flat=True).get() == "production"


def test_shadow_outputs_are_logged_and_never_returned(deployed, serving, reviewer, artifacts, api_client_for):
    _deploy(deployed, artifacts[1], 2, "shadow")
    _policy(deployed, shadow_enabled=True)
    serving.wait_serving(f"{deployed.pk}:shadow", 2)
    response = api_client_for(reviewer).post(_url(deployed), {"texts": TEXTS}, format="json")
    body = response.json()
    assert response.status_code == 200 and body["model_version"] == 1
    for prediction, expected in zip(body["predictions"], _reference(artifacts[0], TEXTS), strict=True):
        assert list(prediction["scores"].values()) == pytest.approx(expected, abs=1e-5)
    shadow = PredictionLog.objects.filter(project=deployed, route="shadow")
    _until(lambda: serving.client.flush() and shadow.count() == len(TEXTS))
    assert set(shadow.values_list("version_number", flat=True)) == {2}
    assert not {str(i) for i in shadow.values_list("id", flat=True)} & {p["id"] for p in body["predictions"]}
    expected = dict(zip(TEXTS, _reference(artifacts[1], TEXTS), strict=True))
    for row in shadow:
        text = next(t for t in TEXTS if hashlib.sha256(t.encode()).hexdigest() == row.text_sha256)
        assert [row.probs[label] for label in LABELS] == pytest.approx(expected[text], abs=1e-5)  # jsonb sorts keys
    # Shadow off, or a request that is not production traffic: no copy.
    _policy(deployed, shadow_enabled=False)
    api_client_for(reviewer).post(_url(deployed), {"texts": TEXTS}, format="json")
    _policy(deployed, shadow_enabled=True)
    api_client_for(reviewer).post(_url(deployed), {"texts": TEXTS, "model": 1}, format="json")
    time.sleep(0.3)
    assert serving.client.flush() and shadow.count() == len(TEXTS)


# --- the stored log: redaction -----------------------------------------------------------------------

PRIVATE = "write to jane.doe@example.com or call +1 (555) 123-4567 about order 88812345"


def test_opted_in_texts_are_stored_redacted_and_others_not_at_all(deployed, serving, reviewer, api_client_for):
    client = api_client_for(reviewer)
    _policy(deployed, log_texts=True)
    kept = client.post(_url(deployed), {"texts": [PRIVATE]}, format="json").json()["predictions"][0]["id"]
    _policy(deployed, log_texts=False, audit_share=0.0)  # nor audited: an audited text is kept for labeling
    hidden = client.post(_url(deployed), {"texts": [PRIVATE]}, format="json").json()["predictions"][0]["id"]
    rows = _flushed_rows(serving, project=deployed)
    stored = rows.get(id=kept)
    assert stored.text == "write to [EMAIL] or call [PHONE] about order [NUMBER]"
    assert rows.get(id=hidden).text is None
    digest = hashlib.sha256(PRIVATE.encode()).hexdigest()
    assert stored.text_sha256 == rows.get(id=hidden).text_sha256 == digest


def test_a_text_with_a_nul_character_is_answered_and_logged(deployed, serving, reviewer, api_client_for):
    _policy(deployed, log_texts=True)
    response = api_client_for(reviewer).post(_url(deployed), {"texts": ["nul\x00inside"]}, format="json")
    assert response.status_code == 200
    row = _flushed_rows(serving, project=deployed).get()
    assert row.text == "nul\ufffdinside" and row.input_chars == len("nul\x00inside")


# --- feedback --------------------------------------------------------------------------------------------


def _predict_one(client, project, text="hi") -> str:
    response = client.post(_url(project), {"texts": [text]}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["predictions"][0]["id"]


def test_feedback_right_after_a_prediction_is_recorded_though_the_log_was_not_flushed(
    deployed, serving, reviewer, api_client_for
):
    client = api_client_for(reviewer)
    prediction_id = _predict_one(client, deployed)
    assert not PredictionLog.objects.filter(id=prediction_id).exists()  # still in the server's buffer
    response = client.post(
        _url(deployed, "api-feedback"), {"prediction_id": prediction_id, "label": "positive"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json() == {"prediction_id": prediction_id, "label": "positive"}
    feedback = PredictionFeedback.objects.get(prediction_id=prediction_id)
    assert (feedback.project_id, feedback.label.name, feedback.user) == (deployed.pk, "positive", reviewer)


def test_feedback_is_idempotent_for_the_same_label_and_a_conflict_for_another(
    deployed, serving, reviewer, owner, api_client_for
):
    prediction_id = _predict_one(api_client_for(reviewer), deployed)
    url = _url(deployed, "api-feedback")
    first = api_client_for(reviewer).post(url, {"prediction_id": prediction_id, "label": "negative"}, format="json")
    again = api_client_for(owner).post(url, {"prediction_id": prediction_id, "label": "negative"}, format="json")
    other = api_client_for(owner).post(url, {"prediction_id": prediction_id, "label": "positive"}, format="json")
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert other.json()["error"]["details"] == {"label": "negative"}
    feedback = PredictionFeedback.objects.get()
    assert (feedback.label.name, feedback.user) == ("negative", reviewer)


def test_feedback_refuses_unknown_labels_ids_and_predictions_of_other_projects(
    deployed, serving, reviewer, artifacts, api_client_for
):
    client = api_client_for(reviewer)
    prediction_id = _predict_one(client, deployed)
    url = _url(deployed, "api-feedback")
    unknown_label = client.post(url, {"prediction_id": prediction_id, "label": "sarcastic"}, format="json")
    assert unknown_label.status_code == 400 and unknown_label.json()["error"]["details"]["field"] == "label"
    for bad in ("not-a-uuid", 12, None):
        response = client.post(url, {"prediction_id": bad, "label": "positive"}, format="json")
        assert response.status_code == 400 and response.json()["error"]["details"]["field"] == "prediction_id"
    unknown = client.post(url, {"prediction_id": str(uuid.uuid4()), "label": "positive"}, format="json")
    assert unknown.status_code == 404
    other = ProjectFactory(slug="elsewhere")
    MembershipFactory(project=other, user=reviewer)
    elsewhere = client.post(
        _url(other, "api-feedback"), {"prediction_id": prediction_id, "label": "positive"}, format="json"
    )
    assert elsewhere.status_code == 404
    stranger = UserFactory(username="stranger")
    hidden = api_client_for(stranger).post(url, {"prediction_id": prediction_id, "label": "positive"}, format="json")
    assert hidden.status_code == 404
    assert not PredictionFeedback.objects.exists()


def test_feedback_on_a_shadow_prediction_is_a_404(deployed, serving, reviewer, artifacts, api_client_for):
    _deploy(deployed, artifacts[1], 2, "shadow")
    _policy(deployed, shadow_enabled=True)
    serving.wait_serving(f"{deployed.pk}:shadow", 2)
    client = api_client_for(reviewer)
    _predict_one(client, deployed)
    shadow = PredictionLog.objects.filter(route="shadow")
    _until(lambda: serving.client.flush() and shadow.exists())
    response = client.post(
        _url(deployed, "api-feedback"), {"prediction_id": str(shadow.get().id), "label": "positive"}, format="json"
    )
    assert response.status_code == 404


def test_feedback_for_an_unlogged_id_while_the_model_server_is_down_is_a_503(
    deployed, reviewer, api_client_for, settings, tmp_path
):
    settings.MODEL_SERVER_ADDRESS = f"unix:{tmp_path / 'nobody.sock'}"  # nothing listens there
    response = api_client_for(reviewer).post(
        _url(deployed, "api-feedback"), {"prediction_id": str(uuid.uuid4()), "label": "positive"}, format="json"
    )
    assert response.status_code == 503 and int(response["Retry-After"]) >= 1


# --- the WSGI application's short middleware chain for token calls (webapp.wsgi) ------------------------


def test_token_calls_take_the_short_chain_and_answer_as_the_full_one(
    deployed, serving, reviewer, outsider, api_client_for, settings
):
    from rest_framework.authtoken.models import Token

    from webapp import wsgi

    full_middleware = list(settings.MIDDLEWARE)
    environ = {"REQUEST_METHOD": "POST", "HTTP_AUTHORIZATION": "Token x", "PATH_INFO": _url(deployed)}
    assert wsgi.token_api_call(environ)
    assert not wsgi.token_api_call({**environ, "REQUEST_METHOD": "GET"})
    assert not wsgi.token_api_call({**environ, "HTTP_AUTHORIZATION": "Bearer x"})
    assert not wsgi.token_api_call({**environ, "PATH_INFO": _url(deployed, "api-feedback")})
    assert not wsgi.token_api_call({**environ, "PATH_INFO": _url(deployed) + "/"})
    assert wsgi.application.api._middleware_chain is not wsgi.application.full._middleware_chain
    assert list(settings.MIDDLEWARE) == full_middleware  # put back after the short chain was built

    token = Token.objects.create(user=reviewer).key
    status, headers, content = wsgi_post(_url(deployed), json.dumps({"texts": TEXTS[:2]}).encode(), token)
    assert status == 200, content
    body = json.loads(content)
    assert body["model_version"] == 1 and len(body["predictions"]) == 2
    assert headers["Content-Type"] == "application/json" and headers["X-Frame-Options"] == "DENY"
    assert "Set-Cookie" not in headers and "Cookie" not in headers.get("Vary", "")
    rows = _flushed_rows(serving, project=deployed)
    assert {str(row.id) for row in rows} >= {p["id"] for p in body["predictions"]}

    # Errors: the same status and bytes as through the full chain (the test client's handler).
    outsider_token = Token.objects.create(user=outsider).key
    cases = [
        (_url(deployed), b'{"texts": []}', token),  # 400
        (_url(deployed), b"{not json", token),  # 400
        (_url(deployed), b'{"texts": ["a"]}', "not-a-token"),  # 401
        (_url(deployed), b'{"texts": ["a"]}', outsider_token),  # 404
    ]
    for path, raw, key in cases:
        status, headers, content = wsgi_post(path, raw, key)
        full = api_client_for(None)
        full.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        expected = full.generic("POST", path, raw, content_type="application/json")
        assert (status, content) == (expected.status_code, expected.content), (path, raw)
        assert status in (400, 401, 404)


def test_granian_serves_the_api_as_the_web_service_runs_it(deployed, serving, reviewer, tmp_path):
    """The production web server (docker-compose's command) in front of the real model server."""
    import http.client
    import signal
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from rest_framework.authtoken.models import Token

    from tests.worker_harness import worker_environment

    token = Token.objects.create(user=reviewer).key
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = worker_environment({"MODEL_SERVER_ADDRESS": serving.address, "ALLOWED_HOSTS": "127.0.0.1", "DEBUG": "0"})
    command = [
        str(Path(sys.executable).parent / "granian"), "--interface", "wsgi", "webapp.wsgi:application",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--runtime-threads", "1",
        "--blocking-threads", "4", "--no-ws",
    ]  # fmt: skip
    log = (tmp_path / "granian.log").open("wb")
    process = subprocess.Popen(
        command, cwd=Path(__file__).resolve().parents[2], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:

        def call(method: str, path: str, body: bytes | None = None, headers: dict | None = None):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request(method, path, body, headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()

        _until(lambda: process.poll() is not None or _reachable(call), timeout=120)
        assert process.poll() is None, (tmp_path / "granian.log").read_text()
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        status, _, content = call("POST", _url(deployed), json.dumps({"texts": TEXTS[:3]}).encode(), headers)
        assert status == 200, content
        body = json.loads(content)
        assert body["model_version"] == 1 and [p["label"] for p in body["predictions"]] != []
        assert len(body["predictions"]) == 3 and all(set(p["scores"]) == set(LABELS) for p in body["predictions"])
        status, _, content = call("POST", _url(deployed), b'{"texts": []}', headers)
        assert status == 400 and json.loads(content)["error"]["details"]
        status, _, _ = call("POST", _url(deployed), b'{"texts": ["a"]}', {**headers, "Authorization": "Token nope"})
        assert status == 401
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def _reachable(call) -> bool:
    try:
        return call("GET", "/healthz")[0] == 200
    except OSError:
        return False

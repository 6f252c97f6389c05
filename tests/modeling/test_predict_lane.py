"""The prediction API's fast lane (``modeling.api.predict_lane``) against a real model server.

Every answer the lane gives is compared with the answer of the short chain it replaces (Django's
handler, the API middleware, DRF's ``PredictView``): status, bytes and headers. Every call it must not
answer is shown to reach that chain untouched, and to get the chain's answer.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.core import signals
from rest_framework.authtoken.models import Token

from modeling.api.predict_lane import PredictLane, lane_enabled, middleware_headers
from modeling.models import PredictionError
from tests.modeling.serving.harness import TEXTS, build_artifacts, wsgi_post
from tests.modeling.serving.harness import deploy as _deploy
from tests.modeling.serving.harness import set_policy as _policy
from webapp.errors import SERVER_ERROR
from webapp.observability import REQUESTS

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.integration,
    pytest.mark.usefixtures("fresh_serving_state"),
]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return build_artifacts(tmp_path_factory.mktemp("lane"), seeds=(1,))


@pytest.fixture
def deployed(settings, model_server, project, artifacts):
    settings.MODEL_SERVER_ADDRESS = model_server.address
    _deploy(project, artifacts[0], 1, "production")
    model_server.wait_serving(f"{project.pk}:production", 1)
    return project


@pytest.fixture
def token(reviewer):
    return Token.objects.create(user=reviewer).key


@pytest.fixture
def wsgi(monkeypatch):
    """The web service's WSGI application, recording which calls its lane handed to the short chain."""
    from webapp.wsgi import application

    handed: list[str] = []
    chain = application.lane.fallback

    def fallback(environ, start_response):
        handed.append(environ["PATH_INFO"])
        return chain(environ, start_response)

    monkeypatch.setattr(application.lane, "fallback", fallback)
    application.handed = handed
    return application


def _path(project) -> str:
    return f"/api/v1/projects/{project.slug}/predict"


def _body(texts=TEXTS[:2], **fields) -> bytes:
    return json.dumps({"texts": texts, **fields}).encode()


def _both(wsgi, path, body, token, extra=None):
    """The lane's answer and then the short chain's to the same request (a fresh body for each)."""
    lane = wsgi_post(path, body, token, extra=extra)
    chain = wsgi_post(path, body, token, handler=wsgi.api, extra=extra)
    return lane, chain


def _same_headers(lane, chain):
    """Equal headers; a Retry-After may differ by the second that passed between the two calls."""
    lane_headers, chain_headers = dict(lane), dict(chain)
    retry = lane_headers.pop("Retry-After", None), chain_headers.pop("Retry-After", None)
    assert lane_headers == chain_headers
    if retry != (None, None):
        assert abs(int(retry[0]) - int(retry[1])) <= 1


def _without_ids(content: bytes):
    body = json.loads(content)
    return body["model_version"], [{k: v for k, v in p.items() if k != "id"} for p in body["predictions"]]


def test_a_plain_call_is_answered_by_the_lane_as_the_view_answers_it(deployed, model_server, wsgi, token):
    before = REQUESTS.labels(view="api-predict", method="POST", status="200")._value.get()
    finished: list[object] = []
    receiver = lambda sender, **kwargs: finished.append(sender)  # noqa: E731
    signals.request_finished.connect(receiver)
    try:
        (status, headers, content), (chain_status, chain_headers, chain_content) = _both(
            wsgi, _path(deployed), _body(TEXTS), token
        )
    finally:
        signals.request_finished.disconnect(receiver)
    assert wsgi.handed == []
    assert status == chain_status == 200, content
    assert _without_ids(content) == _without_ids(chain_content)
    _same_headers(headers, chain_headers)
    assert headers["Content-Type"] == "application/json" and headers["X-Frame-Options"] == "DENY"
    assert int(headers["Content-Length"]) == len(content)
    assert finished.count(PredictLane) == 1  # Django's connection handling ran once for the lane's call
    assert REQUESTS.labels(view="api-predict", method="POST", status="200")._value.get() == before + 2
    ids = [p["id"] for p in json.loads(content)["predictions"]]
    assert model_server.client.flush() is True
    from modeling.models import PredictionLog

    assert PredictionLog.objects.filter(id__in=ids, route="production", version_number=1).count() == len(TEXTS)


@pytest.mark.parametrize(
    ("case", "body", "extra"),
    [
        ("no texts", _body([]), None),
        ("a text too long", _body(["x" * 20_001]), None),
        ("a bad model", _body(model="nightly"), None),
        ("an empty caller key", _body(), {"HTTP_X_CALLER_KEY": " "}),
    ],
)
def test_the_callers_mistakes_the_lane_answers_are_the_views_400s(deployed, wsgi, token, case, body, extra):
    (status, headers, content), (chain_status, chain_headers, chain_content) = _both(
        wsgi, _path(deployed), body, token, extra
    )
    assert wsgi.handed == [], case
    assert status == chain_status == 400, (case, content)
    assert content == chain_content
    _same_headers(headers, chain_headers)
    assert not PredictionError.objects.exists()  # the caller's own mistakes write nothing


def test_a_rate_limited_call_gets_the_views_429_its_log_line_and_its_error_row(deployed, wsgi, token, caplog):
    _policy(deployed, rate_limit_per_minute=1)
    assert wsgi_post(_path(deployed), _body(), token)[0] == 200
    with caplog.at_level(logging.WARNING, logger="django.request"):
        (status, headers, content), (chain_status, chain_headers, chain_content) = _both(
            wsgi, _path(deployed), _body(), token
        )
    lines = [(r.levelname, r.getMessage(), r.status_code) for r in caplog.records if r.name == "django.request"]
    assert lines == [("WARNING", f"Too Many Requests: {_path(deployed)}", 429)] * 2  # the lane's, then Django's
    assert wsgi.handed == []
    assert status == chain_status == 429
    assert json.loads(content)["error"]["code"] == json.loads(chain_content)["error"]["code"] == "rate_limited"
    _same_headers(headers, chain_headers)
    rows = list(PredictionError.objects.filter(project=deployed).values_list("kind", "status_code", "texts"))
    assert rows == [("rate_limited", 429, 1)] * 2  # refused before the body is read: one text is assumed


def test_no_production_model_and_a_model_server_down_get_the_views_503s(deployed, wsgi, token, settings, tmp_path):
    from modeling.models import Alias

    Alias.objects.filter(project=deployed, name="production").delete()
    (status, headers, content), (chain_status, chain_headers, chain_content) = _both(
        wsgi, _path(deployed), _body(), token
    )
    assert status == chain_status == 503 and content == chain_content
    _same_headers(headers, chain_headers)
    assert int(headers["Retry-After"]) >= 1

    _deploy(deployed, *_artifact_of(deployed), 1, "production")
    settings.MODEL_SERVER_ADDRESS = f"unix:{tmp_path / 'nobody.sock'}"  # nothing listens there
    (status, headers, content), (chain_status, chain_headers, chain_content) = _both(
        wsgi, _path(deployed), _body(), token
    )
    assert wsgi.handed == []
    assert status == chain_status == 503 and content == chain_content
    _same_headers(headers, chain_headers)
    kinds = sorted(PredictionError.objects.filter(project=deployed).values_list("kind", flat=True))
    assert kinds == ["no_model", "no_model", "server_error", "server_error"]


def _artifact_of(project):
    from modeling.models import ModelVersion
    from tests.modeling.serving.harness import Artifact

    version = ModelVersion.objects.get(project=project, number=1)
    return (Artifact(version.artifact_path, version.manifest_sha256),)


def test_an_unexpected_failure_is_a_logged_500_with_its_error_row(deployed, wsgi, token, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("the model server client broke")

    monkeypatch.setattr("modeling.api.predict.prediction_make", broken)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        status, headers, content = wsgi_post(_path(deployed), _body(), token)
    assert wsgi.handed == []
    assert status == 500 and json.loads(content) == SERVER_ERROR
    assert "Allow" not in headers and headers["X-Frame-Options"] == "DENY"
    assert any("Internal Server Error" in r.getMessage() and r.exc_info for r in caplog.records)
    assert list(PredictionError.objects.values_list("kind", "status_code")) == [("server_error", 500)]


@pytest.mark.parametrize(
    ("case", "body", "token_of", "extra", "expected"),
    [
        ("an unknown token", _body(), "nobody", None, 401),
        ("a token of an outsider", _body(), "outsider", None, 404),
        ("a body that is not JSON", b"{not json", "reviewer", None, 400),
        ("a body with NaN", b'{"texts": [NaN]}', "reviewer", None, 400),
        ("an empty body", b"", "reviewer", None, 400),
        ("a form body", b"texts=a", "reviewer", {"CONTENT_TYPE": "application/x-www-form-urlencoded"}, 400),
        ("a query string", _body(), "reviewer", {"QUERY_STRING": "format=json"}, 200),
        ("a pretty-printed answer", _body(), "reviewer", {"HTTP_ACCEPT": "application/json; indent=4"}, 200),
        ("an unacceptable Accept", _body(), "reviewer", {"HTTP_ACCEPT": "text/html"}, 406),
        ("a host outside ALLOWED_HOSTS", _body(), "reviewer", {"HTTP_HOST": "evil.example"}, 400),
        ("a lower-case keyword", _body(), "reviewer", {"HTTP_AUTHORIZATION": "token {key}"}, 200),
        ("a slug the URL does not match", _body(), "reviewer", {"PATH_INFO": "/api/v1/projects/a.b/predict"}, 404),
    ],
)
def test_what_the_lane_does_not_answer_reaches_the_short_chain_untouched(
    deployed, wsgi, reviewer, outsider, case, body, token_of, extra, expected
):
    keys = {"reviewer": Token.objects.create(user=reviewer).key, "outsider": Token.objects.create(user=outsider).key}
    key = keys.get(token_of, "0" * 40)
    extra = {k: v.format(key=key) for k, v in (extra or {}).items()}
    path = extra.get("PATH_INFO", _path(deployed))
    status, headers, content = wsgi_post(path, body, key, extra=extra)
    chain_status, chain_headers, chain_content = wsgi_post(path, body, key, handler=wsgi.api, extra=extra)
    if "HTTP_AUTHORIZATION" not in extra:  # a lower-case keyword is DRF's to accept, not the lane's
        assert wsgi.handed == [path], case
    assert status == chain_status == expected, (case, content)
    if expected != 200:
        assert content == chain_content, case
    assert set(headers) == set(chain_headers), case


def test_a_body_over_the_projects_limit_is_the_views_413_unread(deployed, wsgi, token):
    _policy(deployed, max_texts_per_request=1, max_text_chars=10)
    big = _body(["x" * 5000])
    status, _, content = wsgi_post(_path(deployed), big, token)
    assert wsgi.handed == [_path(deployed)]
    assert status == 413 and json.loads(content)["error"]["code"] == "payload_too_large"


def test_settings_that_make_headers_depend_on_the_request_turn_the_lane_off(deployed, settings, token):
    from webapp.wsgi import application

    assert lane_enabled()
    for name, value in [("SECURE_SSL_REDIRECT", True), ("SECURE_HSTS_SECONDS", 3600), ("USE_X_FORWARDED_HOST", True)]:
        old = getattr(settings, name)
        setattr(settings, name, value)
        assert not PredictLane(fallback=application.api).enabled, name
        setattr(settings, name, old)
    handed = []
    settings.SECURE_SSL_REDIRECT = True
    lane = PredictLane(fallback=lambda environ, start: handed.append(1) or application.api(environ, start))
    status, _, _ = wsgi_post(_path(deployed), _body(), token, handler=lane)
    assert handed == [1] and status == 200  # the chain's middleware was built before the setting changed


def test_the_middleware_headers_are_the_middlewares_own(settings):
    assert dict(middleware_headers()) == {
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    settings.X_FRAME_OPTIONS = "SAMEORIGIN"
    settings.SECURE_REFERRER_POLICY = None
    assert dict(middleware_headers())["X-Frame-Options"] == "SAMEORIGIN"
    assert "Referrer-Policy" not in dict(middleware_headers())

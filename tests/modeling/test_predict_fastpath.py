"""The prediction API's plain-JSON fast path answers exactly what DRF's own machinery answers.

Parity first, measured against DRF itself (its negotiation, its JSONParser, its JSONRenderer) over the
inputs where a shortcut could differ; then the same through the real API and a real model server.
"""

from __future__ import annotations

import json

import pytest
from django.http import Http404
from django.urls import reverse
from rest_framework.exceptions import APIException
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from modeling.api.plainjson import PlainJsonNegotiation, json_body, json_response
from tests.modeling.serving.harness import TEXTS, build_artifacts
from tests.modeling.serving.harness import deploy as _deploy

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/json; indent=4",
    "application/json; q=0.5, */*; q=0.1",
    "text/html",
    "text/html, application/json",
    "application/*",
    "",
]
QUERIES = ["", "format=json", "format=api", "x=1"]


def _drf_request(body: bytes = b"", content_type: str = "application/json", accept: str | None = None, query=""):
    extra = {} if accept is None else {"HTTP_ACCEPT": accept}
    path = "/api/v1/projects/p/predict" + (f"?{query}" if query else "")
    django_request = APIRequestFactory().generic("POST", path, body, content_type=content_type, **extra)
    return Request(
        django_request,
        parsers=[JSONParser(), FormParser(), MultiPartParser()],
        negotiator=DefaultContentNegotiation(),
    )


def _outcome(call):
    try:
        renderer_or_data = call()
    except (APIException, Http404, RecursionError, ValueError) as exc:
        detail = getattr(exc, "detail", None)
        return ("error", type(exc).__name__, str(detail) if detail is not None else "")
    return ("ok", renderer_or_data)


@pytest.mark.parametrize("renderers", [[JSONRenderer], [JSONRenderer, BrowsableAPIRenderer]])
def test_negotiation_picks_what_drf_picks_for_every_accept_and_query(renderers):
    def pick(negotiation, accept, query):
        renderer, media_type = negotiation.select_renderer(
            _drf_request(accept=accept, query=query), [cls() for cls in renderers]
        )
        return type(renderer), media_type

    for accept in ACCEPTS:
        for query in QUERIES:
            fast = _outcome(lambda a=accept, q=query: pick(PlainJsonNegotiation(), a, q))
            drf = _outcome(lambda a=accept, q=query: pick(DefaultContentNegotiation(), a, q))
            assert fast == drf, (accept, query)


DEEP = b"[" * 5000 + b"]" * 5000
BODIES = [
    (b'{"texts": ["a", "\xc3\xa9t\xc3\xa9"], "model": 2}', "application/json"),
    (b'{"texts": ["a"], "texts": ["b"]}', "application/json"),
    (b'{"texts": ["\\ud800"]}', "application/json"),
    (b'{"n": 123456789012345678901234567890}', "application/json"),
    (b'\xef\xbb\xbf{"texts": ["a"]}', "application/json"),
    (b'{"texts": [NaN]}', "application/json"),
    (b'{"texts": [-Infinity]}', "application/json"),
    (b'{"texts": ["\xff"]}', "application/json"),
    (b'{"texts": ["a",', "application/json"),
    (b"   ", "application/json"),
    (b"", "application/json"),
    (b'{"texts": ["a"]}', "application/json; charset=utf-8"),
    (b"texts=a", "application/x-www-form-urlencoded"),
    (b'{"texts": ["a"]}', "text/plain"),
    (DEEP, "application/json"),
]


@pytest.mark.parametrize(("body", "content_type"), BODIES)
def test_the_body_decodes_to_what_drfs_parsers_give(body, content_type):
    fast = _outcome(lambda: json_body(_drf_request(body, content_type)))
    drf = _outcome(lambda: _drf_request(body, content_type).data)
    assert fast == drf


@pytest.mark.parametrize(
    "data",
    [
        {"model_version": 3, "predictions": [{"id": "x", "label": "né", "score": 1e-05, "scores": {"a": 0.1}}]},
        {"text": "line\u2028separator\u2029and <script>"},
        {"float": 0.30000000000000004, "big": 1e16, "tiny": 3.2e-07},
    ],
)
def test_a_plain_response_has_the_bytes_drfs_renderer_writes(data):
    request = _drf_request()
    request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
    response = json_response(request, data)
    assert response.content == JSONRenderer().render(data, "application/json")
    assert response["Content-Type"] == "application/json"


def test_a_float_json_cannot_carry_is_refused_like_drf_refuses_it():
    request = _drf_request()
    request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
    with pytest.raises(ValueError):
        JSONRenderer().render({"score": float("nan")}, "application/json")
    with pytest.raises(ValueError):
        json_response(request, {"score": float("nan")})


# --- through the API, against a real model server ---------------------------------------------------


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return build_artifacts(tmp_path_factory.mktemp("fastpath"), seeds=(1,))


@pytest.fixture
def deployed(settings, tmp_path, model_server, project, artifacts):
    settings.MODEL_SERVER_ADDRESS = model_server.address
    settings.API_SERVING_STATE_TTL_MS = 0
    settings.API_AUTH_CACHE_MS = 0
    settings.API_RATE_LIMIT_STORE = f"file://{tmp_path / 'ratelimit'}"
    _deploy(project, artifacts[0], 1, "production")
    model_server.wait_serving(f"{project.pk}:production", 1)
    return project


def _post(client, project, accept=None, query="", caller=None):
    url = reverse("api-predict", kwargs={"slug": project.slug}) + (f"?{query}" if query else "")
    extra = {} if accept is None else {"HTTP_ACCEPT": accept}
    if caller is not None:
        extra["HTTP_X_CALLER_KEY"] = caller
    body = json.dumps({"texts": TEXTS[:2]}).encode()
    return client.generic("POST", url, body, content_type="application/json", **extra)


def _without_ids(body):
    return [{k: v for k, v in p.items() if k != "id"} for p in body["predictions"]], body["model_version"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_plain_and_drf_rendered_answers_agree_in_body_and_headers(deployed, reviewer, api_client_for):
    client = api_client_for(reviewer)
    plain = _post(client, deployed)
    pretty = _post(client, deployed, accept="application/json; indent=4")  # DRF's Response renders this one
    assert plain.status_code == pretty.status_code == 200
    assert plain.content == JSONRenderer().render(json.loads(plain.content), "application/json")
    assert pretty.content.startswith(b'{\n    "model_version"')
    assert _without_ids(plain.json()) == _without_ids(pretty.json())
    assert plain["Content-Type"] == pretty["Content-Type"] == "application/json"
    assert {k for k in plain.headers if k != "Content-Length"} == {k for k in pretty.headers if k != "Content-Length"}
    assert plain["Allow"] == pretty["Allow"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_an_unacceptable_accept_is_still_a_406_and_a_caller_key_still_counts(deployed, reviewer, api_client_for):
    client = api_client_for(reviewer)
    refused = _post(client, deployed, accept="text/html")
    assert refused.status_code == 406 and refused.json()["error"]["code"] == "not_acceptable"
    bad_key = _post(client, deployed, caller="")
    assert bad_key.status_code == 400 and bad_key.json()["error"]["details"]["field"] == "X-Caller-Key"
    assert _post(client, deployed, caller="end-user-7").status_code == 200


@pytest.mark.django_db
def test_a_message_still_reaches_the_next_page(reviewer, client_for):
    """The message storage is built on first use (``LazyMessageMiddleware``): a redirect still carries it."""
    page = client_for(reviewer).post(reverse("account-settings"), {"action": "revoke"}, follow=True)
    assert page.status_code == 200
    assert "Token revoked" in page.content.decode()

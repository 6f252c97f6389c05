"""A promotion under concurrent HTTP load: the alias moves while clients hammer the API; nothing fails.

Real HTTP (the live server's threads), a real ``manage.py model_server`` process that notices the
alias move on its own (polling the alias table), loads and warms the new version, and swaps it in.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token

from modeling.models import Alias
from tests.modeling.serving.harness import TEXTS, build_artifacts, deploy, reference, running_model_server, set_policy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


@pytest.fixture(autouse=True)
def _fresh_state(settings):
    settings.API_SERVING_STATE_TTL_MS = 0  # no web process state cached across tests
    settings.API_AUTH_CACHE_MS = 0


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return build_artifacts(tmp_path_factory.mktemp("hot-swap"))


def _post(url: str, token: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 (the live server's http URL)
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_a_promotion_under_concurrent_load_fails_no_request_and_each_answer_names_its_model(
    live_server, settings, tmp_path, project, reviewer, artifacts
):
    settings.API_RATE_LIMIT_STORE = f"file://{tmp_path / 'ratelimit'}"
    set_policy(project, rate_limit_per_minute=1_000_000)
    deploy(project, artifacts[0], 1, "production")
    token = Token.objects.create(user=reviewer).key
    url = live_server.url + reverse("api-predict", kwargs={"slug": project.slug})
    answers: list[tuple[int, str, dict]] = []
    failures: list[tuple[int, dict]] = []
    stop = threading.Event()

    def hammer(worker: int) -> None:
        n = worker
        while not stop.is_set():
            texts = [TEXTS[n % len(TEXTS)], TEXTS[(n + 1) % len(TEXTS)]]
            status, body = _post(url, token, {"texts": texts})
            (answers.append((worker, texts, body)) if status == 200 else failures.append((status, body)))
            n += 3

    with running_model_server(tmp_path, env={"MODEL_SERVER_MAX_WAIT_MS": "2"}) as server:
        settings.MODEL_SERVER_ADDRESS = server.address
        server.wait_serving(f"{project.pk}:production", 1)
        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        try:
            _wait(lambda: len(answers) >= 40)
            promoted = deploy(project, artifacts[1], 2)
            Alias.objects.filter(project=project, name="production").update(version=promoted)  # the promotion
            _wait(lambda: any(body["model_version"] == 2 for _, _, body in answers))
            seen = len(answers)
            _wait(lambda: len(answers) >= seen + 40)
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)
        log = server.log()
    assert failures == []
    versions = [body["model_version"] for _, _, body in answers]
    assert versions.count(1) >= 40 and versions.count(2) >= 40
    for worker in range(8):  # once a client saw the new version it never sees the old one again
        mine = [body["model_version"] for w, _, body in answers if w == worker]
        assert mine == sorted(mine)
    for _, texts, body in answers:  # and every answer is entirely the model it names
        expected = reference(artifacts[body["model_version"] - 1], texts)
        for prediction, probs in zip(body["predictions"], expected, strict=True):
            assert list(prediction["scores"].values()) == pytest.approx(probs, abs=1e-5)
    assert '"swap": true' in log


def _wait(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)

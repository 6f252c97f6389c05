"""``manage.py model_server`` as a real process: it follows the alias table, keeps a working version
when a new one fails to load, quantizes per policy, and on SIGTERM answers what it holds and flushes
the prediction log. The web process never imports torch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from modeling.models import Alias, PredictionLog
from modeling.serving.client import ModelServerError
from tests.modeling.serving.harness import (
    REPO_ROOT,
    TEXTS,
    build_artifacts,
    deploy,
    reference,
    running_model_server,
    set_policy,
)
from tests.worker_harness import worker_environment

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


@pytest.fixture(autouse=True)
def _fresh_state(settings):
    settings.API_SERVING_STATE_TTL_MS = 0  # no web process state cached across tests
    settings.API_AUTH_CACHE_MS = 0


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return build_artifacts(tmp_path_factory.mktemp("model-server"))


@pytest.fixture(scope="module")
def model_server(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock(), running_model_server(tmp_path_factory.mktemp("ms")) as server:
        yield server


def _served(server) -> dict[str, dict]:
    client = server.client
    try:
        return {model["key"]: model for model in client.models()}
    finally:
        client.close()


def test_the_server_follows_the_alias_table(model_server, project, artifacts):
    production, canary = f"{project.pk}:production", f"{project.pk}:canary"
    deploy(project, artifacts[0], 1, "production")
    deploy(project, artifacts[1], 2, "canary")
    model_server.wait_serving(production, 1)
    model_server.wait_serving(canary, 2)
    Alias.objects.filter(project=project, name="canary").delete()
    model_server.wait_unloaded(canary)
    Alias.objects.filter(project=project, name="production").update(version=project.model_versions.get(number=2))
    model_server.wait_serving(production, 2)
    assert set(_served(model_server)) == {production}


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(model_server, project, artifacts):
    key = f"{project.pk}:production"
    deploy(project, artifacts[0], 1, "production")
    model_server.wait_serving(key, 1)
    broken = deploy(project, artifacts[1], 3)
    broken.manifest_sha256 = "0" * 64  # the artifact no longer matches what was approved
    broken.save(update_fields=["manifest_sha256"])
    Alias.objects.filter(project=project, name="production").update(version=broken)
    model_server.wait_for_log('"message": "model load failed"')
    client = model_server.client
    try:
        assert client.predict(key, ["still answering"])["version"] == 1
    finally:
        client.close()


def test_int8_quantization_follows_the_release_policy(model_server, project, artifacts):
    key = f"{project.pk}:production"
    set_policy(project, quantize_int8=True)
    deploy(project, artifacts[0], 1, "production")
    model_server.wait_until(
        lambda: _served(model_server).get(key, {}).get("quantize_int8") is True, timeout=60, what="int8"
    )
    set_policy(project, quantize_int8=False)
    model_server.wait_until(lambda: _served(model_server)[key]["quantize_int8"] is False, timeout=60, what="fp32 again")


def test_sigterm_under_load_answers_or_refuses_each_request_and_logs_every_answer(project, artifacts, tmp_path):
    env = {"PREDICTION_LOG_FLUSH_MS": "3600000"}  # nothing is written before the shutdown flush
    deploy(project, artifacts[0], 1, "production")
    answered: list[str] = []
    refused: list[str] = []
    stop = threading.Event()
    with running_model_server(tmp_path, env=env) as server:
        key = f"{project.pk}:production"
        server.wait_serving(key, 1)

        def hammer(n: int) -> None:
            client = server.client
            while not stop.is_set():
                try:
                    reply = client.predict(
                        key, TEXTS[n % 5 : n % 5 + 2], {"project": project.pk, "route": "production"}
                    )
                    answered.extend(reply["ids"])
                except ModelServerError as exc:  # refused while shutting down, or the socket is gone
                    refused.append(exc.code)
                    return
                n += 1

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        server.wait_until(lambda: len(answered) >= 60, timeout=60, what="sixty answers")
        assert not PredictionLog.objects.exists()
        assert server.terminate(signal.SIGTERM) == 0
        stop.set()
        for thread in threads:
            thread.join(30)
        output = server.log()
    logged = {str(i) for i in PredictionLog.objects.values_list("id", flat=True)}
    assert logged == set(answered)
    assert set(refused) <= {"overloaded", "unavailable"}
    assert f"model server stopped: {len(answered)} log rows written, 0 dropped, 0 pending" in output


WEB_REQUEST = """
import json, sys
import django
django.setup()
from django.test import Client
response = Client().post(
    "/api/v1/projects/{slug}/predict", {{"texts": ["hello"]}}, content_type="application/json",
    HTTP_AUTHORIZATION="Token {token}",
)
print(json.dumps({{"status": response.status_code, "torch": "torch" in sys.modules,
                  "transformers": "transformers" in sys.modules}}))
"""


def test_the_web_process_answers_predictions_without_importing_torch(model_server, project, reviewer, artifacts):
    from rest_framework.authtoken.models import Token

    deploy(project, artifacts[0], 1, "production")
    model_server.wait_serving(f"{project.pk}:production", 1)
    token = Token.objects.create(user=reviewer).key
    env = worker_environment({"MODEL_SERVER_ADDRESS": model_server.address, "ALLOWED_HOSTS": "testserver"})
    done = subprocess.run(
        [sys.executable, "-c", WEB_REQUEST.format(slug=project.slug, token=token)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"status": 200, "torch": False, "transformers": False}


@pytest.mark.parametrize(
    ("setting", "device", "wait"),
    [(-1, "cpu", 5.0), (-1, "cuda", 0.0), (2, "cpu", 2.0), (2, "cuda", 2.0), (0, "cpu", 0.0)],
)
def test_the_batch_wait_defaults_to_the_device_s_and_an_explicit_setting_wins(settings, setting, device, wait):
    from modeling.management.commands.model_server import batch_policy

    settings.MODEL_SERVER_MAX_WAIT_MS = setting
    assert batch_policy(device).max_wait_ms == wait


@pytest.mark.parametrize(
    ("setting", "device", "in_a_child"),
    [("auto", "cpu", False), ("auto", "cuda", True), ("on", "cpu", True), ("off", "cuda", False)],
)
def test_forward_passes_run_in_a_child_process_on_a_gpu_unless_set(settings, setting, device, in_a_child):
    from modeling.management.commands.model_server import forward_loader
    from modeling.serving.server import artifact_runner

    settings.MODEL_SERVER_FORWARD_PROCESS = setting
    assert (forward_loader(device, 1) is not artifact_runner) is in_a_child


def _descendants(pid: int) -> set[int]:
    """Process ids below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def test_with_forward_processes_the_server_answers_from_a_child_that_dies_with_it(project, artifacts, tmp_path):
    deploy(project, artifacts[0], 1, "production")
    key = f"{project.pk}:production"
    with running_model_server(tmp_path, env={"MODEL_SERVER_FORWARD_PROCESS": "on"}) as server:
        server.wait_serving(key, 1, timeout=120)
        client = server.client
        try:
            reply = client.predict(key, TEXTS[:3], {"project": project.pk, "route": "production"})
        finally:
            client.close()
        for probs, expected in zip(reply["probs"], reference(artifacts[0], TEXTS[:3]), strict=True):
            assert probs == pytest.approx(expected, abs=1e-5)
        below = _descendants(server.process.pid)
        assert below, "the forward pass ran in no child process"
        os.kill(server.process.pid, signal.SIGKILL)  # the server alone, not its group: no clean-up code runs
        server.process.wait(30)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in below) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in below if _alive(pid)], "a forward process outlived a SIGKILL of the server"


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie awaiting its reaper is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

"""Operations endpoints: liveness, readiness with real checks, Prometheus metrics."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from tests.worker_harness import REPO_ROOT, worker_environment
from webapp.models import Job

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_when_database_and_broker_answer(client):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


READYZ_IN_A_FRESH_PROCESS = """
import json, django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
response = Client().get("/readyz")
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""


def test_readyz_is_503_with_details_when_the_broker_is_down(closed_port):
    # A fresh process, configured from the environment like a deployed one, with a broker nobody serves.
    env = worker_environment({"CELERY_BROKER_URL": f"redis://127.0.0.1:{closed_port}/0"})
    done = subprocess.run(
        [sys.executable, "-c", READYZ_IN_A_FRESH_PROCESS], cwd=REPO_ROOT, env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    result = json.loads(done.stdout.decode().strip().splitlines()[-1])
    body = result["body"]
    assert result["status"] == 503, body
    assert body["status"] == "unavailable" and body["broker"] == "redis"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["broker"]["error"]


def test_metrics_expose_request_counts_and_job_states(client):
    Job.objects.create(kind=Job.Kind.EXPORT, status=Job.Status.QUEUED)
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'loopline_http_requests_total{method="GET",status="200",view="healthz"}' in text
    assert 'loopline_jobs{kind="export",status="queued"} 1.0' in text
    assert 'loopline_jobs{kind="train",status="running"} 0.0' in text

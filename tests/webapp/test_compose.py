"""The production-shaped stack: docker-compose.yml and the Dockerfile refer to things that exist.

Docker cannot run here, so this reads the files and checks each command against the project:
the WSGI module, the Celery app and its queues, the management commands.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

from webapp.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"postgres", "redis", "migrate", "web", "model-server", "worker-cpu", "worker-gpu", "beat"}
APP_SERVICES = SERVICES - {"postgres", "redis"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _command(compose: dict, service: str) -> list[str]:
    command = compose["services"][service]["command"]
    assert isinstance(command, list), f"{service}: use the exec (list) form for command"
    return command


def _option(command: list[str], name: str) -> str:
    """Return the value of ``-Q x`` / ``--concurrency=x`` style options."""
    for index, part in enumerate(command):
        if part == name:
            return command[index + 1]
        if part.startswith(name + "="):
            return part.split("=", 1)[1]
    raise AssertionError(f"{name} missing from {command}")


def _declared_queues() -> set[str]:
    return {queue.name for queue in celery_app.conf.task_queues}


def test_every_service_exists_and_depends_only_on_services_that_exist(compose):
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert set(service.get("depends_on", {})) <= set(services), name


def test_images_pin_postgres_16_and_redis_7(compose):
    assert compose["services"]["postgres"]["image"] == "postgres:16"
    assert compose["services"]["redis"]["image"] == "redis:7"


def test_web_runs_granian_on_the_wsgi_application(compose):
    command = _command(compose, "web")
    assert command[0] == "granian" and _option(command, "--interface") == "wsgi"
    module, attribute = next(part for part in command[1:] if ":" in part and not part.startswith("$")).split(":")
    assert callable(getattr(importlib.import_module(module), attribute))


def test_the_model_server_binds_the_address_the_web_workers_call(compose):
    command = _command(compose, "model-server")
    assert command[:3] == ["python", "manage.py", "model_server"] and "model_server" in get_commands()
    bind_host, _, bind_port = _option(command, "--address").rpartition(":")
    address = compose["x-app"]["environment"]["MODEL_SERVER_ADDRESS"]
    host, _, port = re.fullmatch(r"\$\{MODEL_SERVER_ADDRESS:-(.*)\}", address).group(1).rpartition(":")
    assert (host, port) == ("model-server", bind_port) and bind_host == "0.0.0.0"  # noqa: S104 (the compose file binds the internal network)
    assert "ports" not in compose["services"]["model-server"]  # the unauthenticated socket stays internal
    web = _command(compose, "web")
    assert int(_option(web, "--blocking-threads").split(":-")[1].rstrip("}")) > 1  # requests wait on it together


def test_migrate_runs_a_management_command_that_exists(compose):
    command = _command(compose, "migrate")
    assert command[:2] == ["python", "manage.py"] and (ROOT / "manage.py").exists()
    assert command[2] in get_commands()


@pytest.mark.parametrize("service", ["worker-cpu", "worker-gpu", "beat"])
def test_celery_services_use_the_project_app(compose, service):
    command = _command(compose, service)
    assert command[0] == "celery"
    module = _option(command, "-A")
    assert importlib.import_module(f"{module}.celery").app is celery_app


@pytest.mark.parametrize("service", ["worker-cpu", "worker-gpu"])
def test_workers_consume_only_declared_queues(compose, service):
    queues = set(_option(_command(compose, service), "-Q").split(","))
    assert queues and queues <= _declared_queues()


def test_cpu_and_gpu_workers_together_consume_every_queue(compose):
    consumed = set()
    for service in ("worker-cpu", "worker-gpu"):
        consumed |= set(_option(_command(compose, service), "-Q").split(","))
    assert consumed == _declared_queues()


def test_gpu_worker_runs_one_task_on_the_gpu_queue_with_a_gpu_reserved(compose):
    service = compose["services"]["worker-gpu"]
    command = _command(compose, "worker-gpu")
    assert _option(command, "-Q") == "gpu"
    assert _option(command, "--concurrency") == "1"
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert "cu1" in service["build"]["args"]["TORCH_INDEX_URL"]


def test_app_services_read_settings_from_the_environment_with_defaults(compose):
    for name in APP_SERVICES:
        env = compose["services"][name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379/")
        assert "SECRET_KEY" in env
        for key, value in env.items():
            for reference in re.findall(r"\$\{([^}]*)\}", str(value)):
                assert ":-" in reference or ":?" in reference, f"{name}.{key} has no default: {reference}"


def test_dockerfile_installs_the_pinned_torch_from_the_build_arg_index():
    dockerfile = (ROOT / "Dockerfile").read_text()
    pinned = re.search(r'"torch==([\d.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pinned
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in dockerfile
    assert f"ARG TORCH_VERSION={pinned.group(1)}" in dockerfile
    assert 'pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"' in dockerfile

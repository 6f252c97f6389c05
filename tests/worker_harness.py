"""Start a real Celery worker process against the test database and the configured broker.

The worker is a separate ``celery -A webapp worker`` process: it shares the test database (the
SQLite test file, or pytest-django's ``test_<name>`` PostgreSQL database) and the broker (Redis from
``CELERY_BROKER_URL``, or the filesystem broker under the same ``LOOPLINE_VAR_DIR``). Tests that use
it need ``@pytest.mark.django_db(transaction=True)`` so the rows they write are committed and visible.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """Return a DATABASE_URL naming the database this test process is connected to right now."""
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{name}"
    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


def worker_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a process that must see what this test process sees."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        LOOPLINE_VAR_DIR=str(settings.VAR_DIR),
        ARTIFACT_ROOT=str(settings.ARTIFACT_ROOT),
        CELERY_TASK_ALWAYS_EAGER="0",
        DJANGO_SETTINGS_MODULE="webapp.settings",
        PYTHONUNBUFFERED="1",
    )
    env.setdefault("SECRET_KEY", settings.SECRET_KEY)
    env.update(extra or {})
    return env


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    hostname: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, needle: str, timeout: float = 60.0) -> None:
        """Wait until the worker's output contains ``needle``; fail with the output if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            time.sleep(0.2)
        raise AssertionError(f"worker never logged {needle!r} within {timeout}s:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        """Warm shutdown of the whole process group, then a kill if it hangs."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@contextmanager
def running_worker(
    log_dir: Path, *, queues: str = "default,gpu", env: Mapping[str, str] | None = None
) -> Iterator[WorkerProcess]:
    """Run ``celery -A webapp worker -Q <queues>`` until the block exits."""
    hostname = f"test-{uuid.uuid4().hex[:8]}@%h"
    log_path = log_dir / "worker.log"
    command = [sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", queues, "--concurrency=1"]
    command += ["--hostname", hostname, "--loglevel=INFO", "--without-gossip", "--without-mingle"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=worker_environment(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = WorkerProcess(process=process, log_path=log_path, hostname=hostname)
    try:
        worker.wait_for_log(" ready.", timeout=90)
        yield worker
    finally:
        worker.stop()


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str, log: Callable[[], str]) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` with the worker's output otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} did not happen within {timeout}s; worker output:\n{log()[-4000:]}")

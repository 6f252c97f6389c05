"""Real pieces for serving tests: tiny artifacts, and ``manage.py model_server`` as a real process.

The process shares the test database and settings with the test (see ``tests/worker_harness.py``);
tests that use it need ``django_db(transaction=True)`` so the rows they write are visible to it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modeling.serving.client import ModelServerClient

REPO_ROOT = Path(__file__).resolve().parents[3]
LABELS = ["negative", "neutral", "positive"]
TEXTS = [
    "the hotel was lovely and the staff kind",
    "awful food, cold room, never again",
    "it was a room with a bed",
    "great view but a noisy street at night",
    "checkout took forty minutes",
]


@dataclass(frozen=True)
class Artifact:
    path: Path
    manifest_sha256: str

    def spec(self, key: str, version: int):  # -> ModelSpec (imported lazily: it pulls the batcher in)
        from modeling.serving.server import ModelSpec

        return ModelSpec(
            key=key, path=str(self.path), version=version, manifest_sha256=self.manifest_sha256, max_length=64
        )


def build_artifacts(root: Path, seeds: tuple[int, ...] = (1, 2)) -> tuple[Artifact, ...]:
    """Save one real (tiny, untrained) RoBERTa artifact per seed: same body, different heads."""
    from modeling.ml.artifacts import DataSnapshot, ManifestFields, save_artifact
    from modeling.ml.checkpoints import load_checkpoint
    from modeling.ml.config import TrainConfig
    from modeling.ml.tiny import build_tiny_roberta

    base = build_tiny_roberta(root / "tiny-roberta")
    built = []
    for seed in seeds:
        checkpoint = load_checkpoint(str(base), labels=LABELS, offline=True, seed=seed)
        fields = ManifestFields(
            base_checkpoint="tiny-roberta",
            train_config=TrainConfig(max_length=64),
            data_snapshot=DataSnapshot(hash="0" * 64, n_train=0, n_eval=0),
            temperature=1.5,
        )
        saved = save_artifact(checkpoint.model, checkpoint.tokenizer, root / f"v{seed}", fields)
        built.append(Artifact(saved.path, saved.manifest_sha256))
    return tuple(built)


def deploy(project, artifact: Artifact, number: int, alias: str | None = None):
    """Record ``artifact`` as version ``number`` of ``project`` and point ``alias`` at it (a promotion)."""
    from modeling.models import Alias, ModelVersion

    version, _ = ModelVersion.objects.update_or_create(
        project=project,
        number=number,
        defaults={
            "status": ModelVersion.Status.PRODUCTION if alias == "production" else ModelVersion.Status.APPROVED,
            "base_checkpoint": "tiny-roberta",
            "artifact_path": str(artifact.path),
            "manifest_sha256": artifact.manifest_sha256,
            "train_config": {"max_length": 64},
        },
    )
    if alias:
        Alias.objects.update_or_create(project=project, name=alias, defaults={"version": version})
    return version


def set_policy(project, **values):
    """Create or update the project's release policy with ``values``."""
    from modeling.models import ReleasePolicy

    policy, _ = ReleasePolicy.objects.update_or_create(project=project, defaults=values)
    return policy


_references: dict[tuple[str, str], list[float]] = {}


def reference(artifact: Artifact, texts: list[str]) -> list[list[float]]:
    """Each text's calibrated probabilities computed directly from the artifact (cached per text)."""
    from modeling.ml.artifacts import load_artifact
    from modeling.ml.config import InferenceConfig

    missing = [t for t in dict.fromkeys(texts) if (str(artifact.path), t) not in _references]
    if missing:
        classifier = load_artifact(artifact.path)
        config = InferenceConfig(max_length=64, device="cpu", num_threads=1)
        for text, row in zip(missing, classifier.predict(missing, config).probabilities, strict=True):
            _references[(str(artifact.path), text)] = [float(p) for p in row]
    return [_references[(str(artifact.path), t)] for t in texts]


def wsgi_post(
    path: str,
    body: bytes,
    token: str | None,
    *,
    handler: Callable[..., Any] | None = None,
    extra: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """POST through ``webapp.wsgi.application`` (or ``handler``) as the web server calls it: (status, headers, body)."""
    import io

    from webapp.wsgi import application

    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if token is not None:
        environ["HTTP_AUTHORIZATION"] = f"Token {token}"
    environ.update(extra or {})
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)

    chunks = (handler or application)(environ, start_response)
    try:
        content = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return seen["status"], seen["headers"], content


def short_socket_dir() -> Path:
    """A fresh short directory: a Unix socket path must stay under ~100 bytes."""
    return Path(tempfile.mkdtemp(prefix="ms-", dir="/tmp"))


@dataclass
class ModelServerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    address: str

    @property
    def client(self) -> ModelServerClient:
        return ModelServerClient(self.address, timeout=30.0)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, needle: str, timeout: float = 120.0) -> None:
        self.wait_until(lambda: needle in self.log(), timeout=timeout, what=f"the log line {needle!r}")

    def wait_until(self, predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"model server exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            time.sleep(0.05)
        raise AssertionError(f"{what} did not happen within {timeout}s; model server output:\n{self.log()[-4000:]}")

    def wait_serving(self, key: str, version: int, timeout: float = 60.0) -> None:
        """Wait until the server answers for ``key`` with ``version`` loaded."""
        client = self.client

        def serving() -> bool:
            return any(m["key"] == key and m["version"] == version for m in client.models())

        try:
            self.wait_until(serving, timeout=timeout, what=f"serving {key} v{version}")
        finally:
            client.close()

    def wait_unloaded(self, key: str, timeout: float = 30.0) -> None:
        client = self.client
        try:
            self.wait_until(
                lambda: all(m["key"] != key for m in client.models()), timeout=timeout, what=f"unloading {key}"
            )
        finally:
            client.close()

    def terminate(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``signum`` and wait for the exit status."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signum)
        return self.process.wait(timeout=timeout)


@contextmanager
def running_model_server(log_dir: Path, *, env: Mapping[str, str] | None = None) -> Iterator[ModelServerProcess]:
    """Run ``manage.py model_server`` on a fresh Unix socket against the test database until the block exits."""
    from tests.worker_harness import worker_environment

    socket_dir = short_socket_dir()
    address = f"unix:{socket_dir / 'model.sock'}"
    settings_env = {
        "MODEL_SERVER_ADDRESS": address,
        "MODEL_SERVER_THREADS": "1",
        "MODEL_SERVER_POLL_MS": "100",
        # Between tests the test database is flushed (TRUNCATE) while a module-scoped server keeps polling:
        # once (CI, 2026-11-22) a poll holding one table's share lock and the TRUNCATE holding another's
        # deadlocked, and PostgreSQL chose the flush as the victim. A lock wait over 300 ms now fails the
        # server's statement first (it logs and retries at the next poll, as when the database restarts),
        # well before the 1 s deadlock check. libpq reads PGOPTIONS; SQLite ignores it.
        "PGOPTIONS": "-c lock_timeout=300",
        **(env or {}),
    }
    log_path = log_dir / "model-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "model_server"],
            cwd=REPO_ROOT,
            env=worker_environment(settings_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ModelServerProcess(process=process, log_path=log_path, address=address)
    try:
        server.wait_for_log("model server ready", timeout=180)
        yield server
    finally:
        if process.poll() is None:
            try:
                server.terminate(signal.SIGTERM, timeout=30)
            except subprocess.TimeoutExpired:
                server.terminate(signal.SIGKILL, timeout=10)
        shutil.rmtree(socket_dir, ignore_errors=True)

"""``manage.py model_server``: serve every project's production, canary and shadow versions.

The Django glue around ``modeling.serving.server.ModelServer``: it listens on
``MODEL_SERVER_ADDRESS`` (a Unix socket by default, host:port in compose), gives torch the cores this
process owns, and keeps what it serves equal to the alias table, read every ``MODEL_SERVER_POLL_MS``
(one small query). A promoted version is loaded and warmed beside the old one, then swapped in
(requests already queued finish on the old one; none fails); a removed alias is unloaded after its
queued requests ran. A version that fails to load is logged and retried after a minute; the version
it was meant to replace keeps serving.

The prediction log is written by a background thread in bulk (``prediction_log_write``), every
``PREDICTION_LOG_FLUSH_MS``: on SIGKILL or a crash, what is lost is that much traffic plus the batch
being written at the time (see ``modeling.serving.logbuffer``). SIGTERM and
SIGINT shut down cleanly: stop listening, answer what is queued, flush the log, exit 0.

Every ``STATUS_INTERVAL_SECONDS`` the server's counters (``server.stats()``: batch sizes, queue depth,
the log buffer) are written to its ``ModelServerStatus`` row (``host:pid``), which the Service page
reads; the row is removed on a clean shutdown, and a crashed server's row simply goes stale.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections, connection
from django.utils import timezone

from modeling.models import ModelServerStatus
from modeling.services.serving import ServedAlias, prediction_log_write, served_aliases

logger = logging.getLogger(__name__)
LOAD_RETRY_SECONDS = 60.0
STATUS_INTERVAL_SECONDS = 5.0
STATUS_FORGET_SECONDS = 24 * 3600  # rows of servers gone this long are deleted at start-up


class Command(BaseCommand):
    help = "Serve the production, canary and shadow versions of every project (dynamic batching, hot swap)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--address", help="Where to listen: unix:/path or host:port (default MODEL_SERVER_ADDRESS)."
        )
        parser.add_argument("--workers", type=int, help="Compute slots (default MODEL_SERVER_WORKERS, 0: automatic).")
        parser.add_argument("--threads", type=int, help="Torch threads per slot (default MODEL_SERVER_THREADS).")
        parser.add_argument(
            "--poll-ms", type=int, help="How often to read the alias table (default MODEL_SERVER_POLL_MS)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Imported here: every manage.py call loads this module, only this command needs torch.
        from modeling.serving.server import ModelServer

        address = options.get("address") or settings.MODEL_SERVER_ADDRESS
        device = _device(settings.MODEL_SERVER_DEVICE)
        workers, threads = _slots(device, options.get("workers"), options.get("threads"))
        poll = (options.get("poll_ms") or settings.MODEL_SERVER_POLL_MS) / 1000.0
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())

        server = ModelServer(
            policy=batch_policy(device),
            log=prediction_log_buffer(),
            loader=forward_loader(device, threads, workers),
            threads=threads,
            workers=workers,
        )
        sync = AliasSync(server, device=device)
        status = StatusWriter(server)
        listener = server.serve(address)
        self.stdout.write(
            f"model server listening on {address} ({device}: {workers} compute slot(s) x {server.threads} thread(s))"
        )
        self.stdout.flush()
        try:
            sync.run()
            self.stdout.write(f"model server ready: {len(server.specs())} model(s) served")
            self.stdout.flush()
            status.write()
            while not stop.wait(poll):
                sync.run()
                status.write()
        finally:
            self._shutdown(server, listener, address)
            status.remove()

    def _shutdown(self, server: Any, listener: Any, address: str) -> None:
        """Stop listening, drain the batchers, flush the log; say what was written."""
        self.stdout.write("model server stopping: draining queued requests and flushing the log")
        self.stdout.flush()
        listener.shutdown()
        listener.server_close()
        server.close()
        if address.startswith("unix:") or address.startswith("/"):
            Path(address.removeprefix("unix:")).unlink(missing_ok=True)
        log = server.stats()["log"] or {}
        self.stdout.write(
            f"model server stopped: {log.get('written', 0)} log rows written, {log.get('dropped', 0)} dropped, "
            f"{log.get('pending', 0)} pending"
        )
        self.stdout.flush()


# The batcher's wait when MODEL_SERVER_MAX_WAIT_MS is unset. On a CPU a forward pass costs a fixed part
# worth ~4.5 tokens (runner.CPU_CHUNK_OVERHEAD_TOKENS) and two slots fill up by themselves: 5 ms and
# none served alike (313 and 310 API requests/s at c=16 in int8, 2026-11-22). On an H100 a one-text
# forward of the demo model takes ~3 ms, so a 5 ms wait more than doubled a lone request's latency and
# capped what a closed loop of clients could send; with none, batches still form from what queues while
# one runs (benchmarks/predict_api.py, 2026-11-23, MiniLM, 1 text a request): c=1 169 against 74 API
# requests/s (p50 5.2 against 12.4 ms), c=64 in-process 2,779 against 1,401 requests/s.
DEFAULT_MAX_WAIT_MS = {"cpu": 5.0, "cuda": 0.0}


def batch_policy(device: str = "cpu") -> Any:
    """The dynamic batcher's policy from the settings (``MODEL_SERVER_MAX_*``) for a resolved device."""
    from modeling.ml.batching import BatchPolicy

    wait = settings.MODEL_SERVER_MAX_WAIT_MS
    return BatchPolicy(
        max_batch_texts=settings.MODEL_SERVER_MAX_BATCH_TEXTS,
        max_batch_tokens=settings.MODEL_SERVER_MAX_BATCH_TOKENS,
        max_wait_ms=float(wait) if wait >= 0 else DEFAULT_MAX_WAIT_MS[device],
        max_queue_texts=max(settings.MODEL_SERVER_MAX_QUEUE_TEXTS, settings.MODEL_SERVER_MAX_BATCH_TEXTS),
    )


def prediction_log_buffer() -> Any:
    """The write-behind prediction log from the settings (``PREDICTION_LOG_*``), written in bulk."""
    from modeling.serving.logbuffer import LogBuffer

    return LogBuffer(
        prediction_log_write,
        interval=settings.PREDICTION_LOG_FLUSH_MS / 1000.0,
        max_rows=settings.PREDICTION_LOG_MAX_ROWS,
    )


def _slots(device: str, workers: int | None, threads: int | None) -> tuple[int, int]:
    """Resolve compute slots and threads per slot (0 or None: automatic, see settings)."""
    from modeling.ml.runtime import available_cores

    cores = available_cores()
    workers = workers or settings.MODEL_SERVER_WORKERS or (1 if device == "cuda" else min(cores, 4))
    threads = threads or settings.MODEL_SERVER_THREADS or max(1, cores // workers)
    return workers, threads


def forward_loader(device: str, threads: int, workers: int = 1) -> Any:
    """The loader for served versions: a child process per version (``process_loader``) where the
    settings say so (by default on a GPU), else the server's own process (``artifact_runner``)."""
    from modeling.serving.server import artifact_runner
    from modeling.serving.server.process_runner import process_loader

    choice = settings.MODEL_SERVER_FORWARD_PROCESS
    if choice == "on" or (choice == "auto" and device == "cuda"):
        return process_loader(threads, processes=workers)
    return artifact_runner


def _device(requested: str) -> str:
    """Resolve auto/cpu/cuda against this machine (int8 quantization applies on CPU only)."""
    import torch

    from modeling.ml.runtime import resolve_device

    return resolve_device(requested, torch.cuda.is_available())


@dataclass
class StatusWriter:
    """Write the server's stats snapshot to its ``ModelServerStatus`` row every few seconds."""

    server: Any
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    started_at: Any = field(default_factory=timezone.now)
    last: float = float("-inf")
    purged: bool = False

    def write(self) -> None:
        now = time.monotonic()
        if now - self.last < STATUS_INTERVAL_SECONDS:
            return
        self.last = now
        try:
            if not self.purged:
                forget = timezone.now() - timedelta(seconds=STATUS_FORGET_SECONDS)
                ModelServerStatus.objects.filter(updated_at__lt=forget).delete()
                self.purged = True
            ModelServerStatus.objects.update_or_create(
                name=self.name[:200],
                defaults={"started_at": self.started_at, "updated_at": timezone.now(), "stats": self.server.stats()},
            )
        except Exception:  # the database is restarting: serving goes on, the next write catches up
            logger.exception("writing the model server status failed")
            connection.close()

    def remove(self) -> None:
        try:
            ModelServerStatus.objects.filter(name=self.name[:200]).delete()
        except Exception:
            logger.exception("removing the model server status failed")


@dataclass
class AliasSync:
    """Keep the server's models equal to the alias table: load, hot-swap, unload."""

    server: Any
    device: str
    failed: dict[str, tuple[Any, float]] = field(default_factory=dict)

    def run(self) -> None:
        close_old_connections()
        try:
            wanted = {alias.key: self._spec(alias) for alias in served_aliases()}
        except Exception:  # the database is restarting: keep serving what is loaded, try again next poll
            logger.exception("reading the alias table failed")
            connection.close()
            return
        # Production first: at start-up it is what most requests wait for.
        for key in sorted(wanted, key=lambda key: not key.endswith(":production")):
            self._load(key, wanted[key])
        for key in set(self.server.specs()) - set(wanted):
            self.server.unload(key)
            logger.info("model unloaded", extra={"key": key})

    def _spec(self, alias: ServedAlias) -> Any:
        from modeling.serving.server import ModelSpec

        return ModelSpec(
            key=alias.key,
            path=alias.path,
            version=alias.version,
            manifest_sha256=alias.manifest_sha256,
            max_length=alias.max_length,
            truncation=alias.truncation,
            quantize_int8=alias.quantize_int8 and self.device == "cpu",
            device="cpu" if self.device == "cpu" else "cuda",
        )

    def _load(self, key: str, spec: Any) -> None:
        if self.server.specs().get(key) == spec:
            return
        failed = self.failed.get(key)
        if failed is not None and failed[0] == spec and time.monotonic() < failed[1]:
            return
        started = time.perf_counter()
        try:
            self.server.load(spec)
        except Exception:  # a broken artifact must not stop the others (or the version it would replace)
            logger.exception("model load failed", extra={"key": key, "version": spec.version})
            self.failed[key] = (spec, time.monotonic() + LOAD_RETRY_SECONDS)
            return
        self.failed.pop(key, None)
        logger.info(
            "model serving",
            extra={"key": key, "version": spec.version, "seconds": round(time.perf_counter() - started, 2)},
        )

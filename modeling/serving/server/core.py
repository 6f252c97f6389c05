"""The ``ModelServer``: served versions by key, loads and hot swaps, predictions and their log rows,
the shadow copy, stats, shutdown, and the protocol's messages answered over a socket.

Hot swap: ``load`` of a key that is already served loads and warms the new version *beside* the
old one, then hands the batcher the new runner; a batch already running finishes on the old model
and no request is refused or fails during the switch. At most ``workers`` forward passes run at once
across every model on the device (the compute semaphore), warm-ups included.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeling.ml.batching import BatchPolicy, Overloaded
from modeling.serving.logbuffer import LogBuffer
from modeling.serving.protocol import ProtocolError, parse_address, recv_message, send_message
from modeling.serving.server.log_rows import _log_rows
from modeling.serving.server.pool import _BatcherPool, _token_estimate
from modeling.serving.server.runner import _set_threads, artifact_runner
from modeling.serving.server.sockets import _error, _TcpServer, _texts, _UnixServer
from modeling.serving.server.specs import Loader, ModelNotLoaded, ModelSpec, Runner, ShadowStats, TextResult

logger = logging.getLogger(__name__)


WARMUP_TEXTS = ["warm up", "a slightly longer warm-up text, so two lengths are compiled and cached"]


@dataclass
class _Slot:
    spec: ModelSpec
    labels: list[str]
    batcher: _BatcherPool
    loaded_at: float = field(default_factory=time.time)


class ModelServer:
    """Serve loaded versions by key; thread-safe; ``serve`` exposes it on a socket."""

    def __init__(
        self,
        *,
        policy: BatchPolicy | None = None,
        log: LogBuffer | None = None,
        loader: Loader = artifact_runner,
        threads: int | None = None,
        workers: int = 1,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.policy = policy or BatchPolicy()
        self.workers = workers
        self._log = log
        self._loader = loader
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Condition()
        self._load_lock = threading.Lock()
        self._compute = threading.BoundedSemaphore(workers)  # compute slots (see the module docstring)
        self._inflight = 0
        self._closing = False
        self._shadow = ShadowStats()
        self.threads = _set_threads(threads, workers)
        self.started_at = time.time()

    # --- models ------------------------------------------------------------------------------

    def load(self, spec: ModelSpec) -> dict[str, Any]:
        """Load and warm ``spec``, then serve it under its key (a hot swap when the key is served)."""
        with self._load_lock:  # one load at a time: two models loading at once would double peak memory
            current = self._slots.get(spec.key)
            if current is not None and current.spec == spec:
                return self._describe(current)
            labels, loaded = self._loader(spec)
            runner = self._exclusive(loaded)
            runner(WARMUP_TEXTS)
            with self._lock:
                if self._closing:
                    raise Overloaded("the model server is shutting down")
                current = self._slots.get(spec.key)
                if current is None:
                    pool = _BatcherPool(
                        runner, self.policy, _token_estimate(spec.max_length), f"batcher-{spec.key}", self.workers
                    )
                    slot = _Slot(spec, labels, pool)
                else:
                    current.batcher.replace_runner(runner)
                    slot = _Slot(spec, labels, current.batcher)
                self._slots[spec.key] = slot
        logger.info("model loaded", extra={"key": spec.key, "version": spec.version, "swap": current is not None})
        return self._describe(slot)

    def unload(self, key: str) -> bool:
        """Stop serving ``key`` after its queued requests finish; return whether it was served."""
        with self._lock:
            slot = self._slots.pop(key, None)
        if slot is not None:
            slot.batcher.close(drain=True)
        return slot is not None

    def models(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._describe(slot) for slot in self._slots.values()]

    def specs(self) -> dict[str, ModelSpec]:
        """Return what is served now, by key."""
        with self._lock:
            return {key: slot.spec for key, slot in self._slots.items()}

    def _describe(self, slot: _Slot) -> dict[str, Any]:
        return {
            "key": slot.spec.key,
            "version": slot.spec.version,
            "labels": slot.labels,
            "loaded_at": slot.loaded_at,
            "quantize_int8": slot.spec.quantize_int8,
        }

    def _exclusive(self, runner: Runner) -> Runner:
        """Return ``runner`` taking the device lock for each call."""

        def run(texts: list[str]) -> list[TextResult]:
            with self._compute:
                return runner(texts)

        return run

    # --- predictions ---------------------------------------------------------------------------

    def predict(
        self,
        key: str,
        texts: list[str],
        meta: dict[str, Any] | None = None,
        timeout: float = 30.0,
        *,
        shadow: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Return the served version's calibrated predictions for ``texts``, in order, and log them.

        ``shadow`` (``{"key", "meta"}``) has the shadow model score a copy once the answer is ready.
        Raises ``ModelNotLoaded`` for an unknown key and ``Overloaded`` when the queue is full or
        the server is shutting down.
        """
        with self._lock:
            if self._closing:
                raise Overloaded("the model server is shutting down", retry_after=1.0)
            slot = self._slots.get(key)
            if slot is None:
                raise ModelNotLoaded(f"no model is served under {key!r}")
            self._inflight += 1
        try:
            return self._predict(slot, texts, meta or {}, timeout, shadow)
        finally:
            with self._lock:
                self._inflight -= 1
                self._lock.notify_all()

    def _predict(
        self, slot: _Slot, texts: list[str], meta: dict[str, Any], timeout: float, shadow: dict[str, Any] | None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        # A request always runs whole in one batch, so one runner, hence one version, answers all its texts.
        results = slot.batcher.submit(texts).result(timeout=timeout)
        latency_ms = (time.perf_counter() - started) * 1000.0
        ids = [str(uuid.uuid4()) for _ in texts]
        if self._log is not None and not meta.get("no_log"):
            self._log.append(_log_rows(slot.spec.key, texts, results, ids, latency_ms, meta))
        if shadow is not None:
            self._shadow_copy(str(shadow.get("key", "")), texts, dict(shadow.get("meta") or {}))
        return {
            "version": results[0].version,
            "labels": results[0].labels,
            "ids": ids,
            "probs": [result.probs for result in results],
            "latency_ms": round(latency_ms, 3),
        }

    def _shadow_copy(self, key: str, texts: list[str], meta: dict[str, Any]) -> None:
        """Queue ``texts`` on the shadow model; its outputs go to the log only. Never blocks or raises."""
        with self._lock:
            slot = self._slots.get(key)
            if slot is None or self._log is None:
                self._shadow.skipped += 1
                return
        started = time.perf_counter()
        try:
            future = slot.batcher.submit(texts)
        except Overloaded:
            with self._lock:
                self._shadow.skipped += 1
            return
        with self._lock:
            self._shadow.submitted += 1
        log = self._log

        def done(finished: Any) -> None:
            # Runs in the shadow batcher's thread as soon as its batch is done (before close() returns).
            error = finished.exception()
            if error is not None:
                with self._lock:
                    self._shadow.failed += 1
                logger.warning("shadow batch failed", extra={"key": key, "error": type(error).__name__})
                return
            latency_ms = (time.perf_counter() - started) * 1000.0
            ids = [str(uuid.uuid4()) for _ in texts]
            log.append(_log_rows(key, texts, finished.result(), ids, latency_ms, meta))

        future.add_done_callback(done)

    def flush(self, timeout: float = 10.0) -> bool:
        """Write every prediction-log row appended so far; return whether that finished within ``timeout``."""
        return self._log.flush(timeout) if self._log is not None else True

    def stats(self) -> dict[str, Any]:
        with self._lock:
            slots = list(self._slots.values())
        log = self._log.stats().__dict__ if self._log is not None else None
        with self._lock:
            shadow = dict(self._shadow.__dict__)
        return {
            "threads": self.threads,
            "uptime_s": round(time.time() - self.started_at, 1),
            "models": {
                slot.spec.key: {**slot.batcher.stats().__dict__, "version": slot.spec.version} for slot in slots
            },
            "shadow": shadow,
            "log": log,
        }

    def close(self, timeout: float = 60.0) -> None:
        """Refuse new requests, finish every queued one, wait for their log rows, then flush the log."""
        with self._lock:
            self._closing = True
            slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            slot.batcher.close(drain=True, timeout=timeout)
        # A request whose batch just ran appends its rows from its own handler thread: wait for it.
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._inflight and time.monotonic() < deadline:
                self._lock.wait(deadline - time.monotonic())
            if self._inflight:
                logger.error("model server closed with requests still running", extra={"inflight": self._inflight})
        if self._log is not None:
            self._log.close(timeout)

    # --- the socket ------------------------------------------------------------------------------

    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        """Answer one protocol message (predict, load, unload, models, stats, flush, ping)."""
        op = message.get("op")
        try:
            if op == "predict":
                shadow = message.get("shadow")
                return {
                    "ok": self.predict(
                        str(message["key"]),
                        _texts(message),
                        message.get("meta") or {},
                        shadow=shadow if isinstance(shadow, dict) else None,
                    )
                }
            if op == "flush":
                return {"ok": self.flush(float(message.get("timeout", 10.0)))}
            if op == "load":
                return {"ok": self.load(ModelSpec(**message["spec"]))}
            if op == "unload":
                return {"ok": self.unload(str(message["key"]))}
            if op == "models":
                return {"ok": self.models()}
            if op == "stats":
                return {"ok": self.stats()}
            if op == "ping":
                return {"ok": "pong"}
            return _error("bad_request", f"unknown op {op!r}")
        except Overloaded as exc:
            return _error("overloaded", str(exc), retry_after=exc.retry_after)
        except ModelNotLoaded as exc:
            return _error("model_not_loaded", str(exc))
        except (KeyError, TypeError, ValueError) as exc:
            return _error("bad_request", f"malformed {op} message: {exc}")
        except Exception as exc:  # a model error answers this request; the server keeps serving others
            logger.exception("model server request failed", extra={"op": op})
            return _error("model_error", f"{type(exc).__name__}: {exc}")

    def serve(self, address: str, ready: threading.Event | None = None) -> socketserver.BaseServer:
        """Listen on ``address`` (a socket path or host:port) in a background thread; return the server."""
        family, bind = parse_address(address)
        if family == socket.AF_UNIX:
            Path(bind).unlink(missing_ok=True)
            server_cls: type[socketserver.BaseServer] = _UnixServer
        else:
            server_cls = _TcpServer
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                while True:
                    try:
                        message = recv_message(sock)
                    except (ProtocolError, OSError):
                        return
                    if message is None:
                        return
                    try:
                        send_message(sock, outer.handle(message))
                    except OSError:
                        return

        server = server_cls(bind, Handler)
        threading.Thread(target=server.serve_forever, name="model-server", daemon=True).start()
        if ready is not None:
            ready.set()
        return server

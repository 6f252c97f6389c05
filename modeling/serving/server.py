"""The model server: the served versions loaded once per device, dynamic batching, hot swap, the log.

One process holds every served model (a project's ``production`` and ``canary`` versions, and a
shadow) behind a ``DynamicBatcher`` each, and answers web workers over a local socket. Web workers
never load a model: that would cost a model copy and a set of torch threads per worker, and CUDA
cannot survive a fork. Torch's intra-op threads are set once to the cores this process owns.

Hot swap: ``load`` of a key that is already served loads and warms the new version *beside* the
old one, then hands the batcher the new runner; a batch already running finishes on the old model
and no request is refused or fails during the switch.

Each answered text becomes a prediction-log row appended to a write-behind ``LogBuffer``; the
caller's metadata (project, caller key, route) comes with the request. For drift monitoring a row
also carries the text's unknown-token rate under the version's tokenizer and, once the version has a
drift reference, its pooled embedding projected with the reference's PCA: the projection is read
from a file beside the artifact directory (``modeling.serving.projection``: the server never imports
Django, and the artifact itself is immutable), and looked for again while the version has none.

Shadow: a request may name a ``shadow`` key. Once the answer is computed, the same texts are queued
on the shadow model's batcher and the reply goes out without waiting; the shadow's outputs become
log rows (with the shadow's own metadata) and are never returned. A full shadow queue or a missing
shadow model skips the copy (counted in ``stats``): the shadow never slows or fails the answer.

Compute slots: each model is served by ``workers`` batchers (a ``_BatcherPool``), and at most
``workers`` forward passes run at once across every model on the device (production, canary, shadow,
and the warm-up of a version being swapped in), each with ``threads`` torch threads. On a GPU that is
one slot. On a CPU the default is one slot per core with one thread each: independent batches side by
side instead of one batch split over cores, because an intra-op thread team synchronises at every
operator, and on a busy machine a descheduled team member stalls the others (measured on the 2-core
box: batch 1 took 19 ms with 1 thread, 536 ms with 2 threads while other processes held the cores).

Shutdown (``close``): new requests are refused (``Overloaded``, so callers retry elsewhere or later),
queued requests run, the requests already answered append their log rows, then the log is flushed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeling.ml.batching import BatcherStats, BatchPolicy, DynamicBatcher, Overloaded
from modeling.ml.config import DeviceRequest
from modeling.serving.logbuffer import LogBuffer, Row
from modeling.serving.projection import ProjectionWatch
from modeling.serving.protocol import ProtocolError, parse_address, recv_message, send_message

logger = logging.getLogger(__name__)

CPU_FORWARD_BATCH = 8
GPU_FORWARD_BATCH = 64
WARMUP_TEXTS = ["warm up", "a slightly longer warm-up text, so two lengths are compiled and cached"]


@dataclass(frozen=True)
class ModelSpec:
    """What to serve under ``key``: a verified artifact directory and how to run it."""

    key: str
    path: str
    version: int
    manifest_sha256: str | None = None
    max_length: int = 256
    truncation: str = "head"
    quantize_int8: bool = False
    device: DeviceRequest = "auto"


@dataclass(frozen=True)
class TextResult:
    """One text's calibrated probabilities, in the label order of the version that computed them.

    The version travels with the result: during a hot swap a request queued before the switch may
    run on the new model, and its answer must name the model that actually produced it.
    """

    probs: list[float]
    version: int
    labels: list[str]
    # Drift descriptors for the log: the share of unknown tokens, and the pooled embedding projected with
    # the version's reference PCA (float16 bytes; None until a reference exists, see serving.projection).
    unk_rate: float | None = None
    embedding: bytes | None = None


@dataclass
class _Slot:
    spec: ModelSpec
    labels: list[str]
    batcher: _BatcherPool
    loaded_at: float = field(default_factory=time.time)


class ModelNotLoaded(LookupError):
    """No model is served under the requested key."""


@dataclass
class ShadowStats:
    submitted: int = 0
    skipped: int = 0
    failed: int = 0


Runner = Callable[[list[str]], list[TextResult]]
Loader = Callable[[ModelSpec], tuple[list[str], Runner]]


def artifact_runner(spec: ModelSpec) -> tuple[list[str], Runner]:
    """Load ``spec``'s artifact (verified against its manifest hash) and return its labels and runner."""
    import torch

    from modeling.ml.artifacts import load_artifact
    from modeling.ml.config import InferenceConfig
    from modeling.ml.textinfo import unk_rates

    device: DeviceRequest = "cpu" if spec.quantize_int8 else spec.device
    on_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    classifier = load_artifact(spec.path, expected_manifest_sha256=spec.manifest_sha256)
    config = InferenceConfig(
        # The batch is scored longest-first in chunks of this many texts. On a CPU, padding costs as
        # much as real tokens and a bigger matrix buys little: chunks of 8 scored 106 tweets/s (fp32)
        # and 391 (int8) on one core, one padded batch of 64 only 60 and 184. A GPU wants big batches.
        batch_size=CPU_FORWARD_BATCH if on_cpu else GPU_FORWARD_BATCH,
        max_length=spec.max_length,
        truncation=spec.truncation,  # type: ignore[arg-type]
        device=device,
        quantize_int8=spec.quantize_int8,
        # The server set the thread count for the cores it owns; None here would reset it per batch.
        num_threads=torch.get_num_threads(),
    )

    labels = list(classifier.labels)
    watch = ProjectionWatch(spec.path, spec.manifest_sha256)
    hidden_size = int(classifier.model.config.hidden_size)

    def run(texts: list[str]) -> list[TextResult]:
        projection = watch.current(hidden_size)
        predictions = classifier.predict(texts, config, return_embeddings=projection is not None)
        rates = unk_rates(classifier.tokenizer, texts, max_tokens=spec.max_length)
        codes: list[bytes | None] = [None] * len(texts)
        if projection is not None and predictions.embeddings is not None:
            codes = list(projection.encode(predictions.embeddings))
        return [
            TextResult(
                probs=[round(float(p), 6) for p in row],
                version=spec.version,
                labels=labels,
                unk_rate=round(rate, 4),
                embedding=code,
            )
            for row, rate, code in zip(predictions.probabilities, rates, codes, strict=True)
        ]

    return labels, run


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


# A web deployment opens one connection per worker thread at start-up: the default backlog of 5
# refuses a burst of them with EAGAIN.
BACKLOG = 512


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = BACKLOG


class _TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    request_queue_size = BACKLOG
    allow_reuse_address = True


def _texts(message: dict[str, Any]) -> list[str]:
    texts = message.get("texts")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a non-empty list of strings")
    return texts


def _error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _token_estimate(max_length: int) -> Callable[[str], int]:
    """Estimate a text's tokens for the batch budget: ~4 characters a token, never past truncation."""

    def count(text: str) -> int:
        return min(max(1, len(text) // 4), max_length) + 2

    return count


def _set_threads(threads: int | None, workers: int = 1) -> int:
    """Give torch ``threads`` per forward pass (default: this process's cores shared by the workers)."""
    from modeling.ml.runtime import available_cores, set_threads

    return set_threads(threads or max(1, available_cores() // workers))


class _BatcherPool:
    """``workers`` dynamic batchers serving one model; a request goes to the one with the least work.

    Work is counted from submit to result (queued and running), so an idle batcher is preferred over
    one that is busy with a batch even when both queues are empty. Each batcher's queue holds its
    share of the policy's bound; a request is refused only when every batcher's queue is full.
    """

    def __init__(
        self, runner: Runner, policy: BatchPolicy, count_tokens: Callable[[str], int], name: str, workers: int
    ) -> None:
        share = dataclasses.replace(
            policy, max_queue_texts=max(policy.max_batch_texts, policy.max_queue_texts // workers)
        )
        self._batchers = [
            DynamicBatcher(runner, share, count_tokens=count_tokens, name=f"{name}-{i}") for i in range(workers)
        ]
        self._work = [0] * workers
        self._lock = threading.Lock()

    def submit(self, texts: list[str]) -> Future[list[TextResult]]:
        with self._lock:
            order = sorted(range(len(self._batchers)), key=self._work.__getitem__)
        refused: Overloaded | None = None
        count = len(texts)
        for index in order:
            with self._lock:
                self._work[index] += count
            try:
                future = self._batchers[index].submit(texts)
            except Overloaded as exc:
                self._finished(index, count)
                refused = exc
                continue
            future.add_done_callback(self._on_done(index, count))
            return future
        assert refused is not None
        raise refused

    def _on_done(self, index: int, count: int) -> Callable[[Future[list[TextResult]]], None]:
        return lambda _: self._finished(index, count)

    def _finished(self, index: int, count: int) -> None:
        with self._lock:
            self._work[index] -= count

    def replace_runner(self, runner: Runner) -> None:
        for batcher in self._batchers:
            batcher.replace_runner(runner)

    def close(self, *, drain: bool = True, timeout: float | None = 30.0) -> None:
        for batcher in self._batchers:
            batcher.close(drain=drain, timeout=timeout)

    def stats(self) -> BatcherStats:
        """Return the batchers' counters summed."""
        total = BatcherStats()
        for stats in (batcher.stats() for batcher in self._batchers):
            for name in ("batches", "texts", "requests", "rejected", "failed_batches", "queued_texts", "run_seconds"):
                setattr(total, name, getattr(total, name) + getattr(stats, name))
            for bucket, count in stats.batch_size_counts.items():
                total.batch_size_counts[bucket] += count
        return total


def _log_rows(
    key: str,
    texts: list[str],
    results: Sequence[TextResult],
    ids: list[str],
    latency_ms: float,
    meta: dict[str, Any],
) -> list[Row]:
    """One prediction-log row per text: ids, version, caller, latency, label, probabilities, length, hash,
    unknown-token rate and projected embedding (the sink adds the script: off the request path).

    Probabilities are keyed by label name: versions of a project may order their labels differently.
    """
    now = time.time()
    rows = []
    for text, result, prediction_id in zip(texts, results, ids, strict=True):
        best = max(range(len(result.probs)), key=result.probs.__getitem__)
        rows.append(
            {
                "id": prediction_id,
                "key": key,
                "version": result.version,
                "created_at": now,
                "latency_ms": latency_ms,
                "label": result.labels[best],
                "confidence": result.probs[best],
                "probs": dict(zip(result.labels, result.probs, strict=True)),
                "input_chars": len(text),
                "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                "text": text,  # the sink keeps it (redacted) only when the project opted in or for audit
                "unk_rate": result.unk_rate,
                "embedding": result.embedding,
                "meta": meta,
            }
        )
    return rows

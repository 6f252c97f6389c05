"""Dynamic batching for the model server: concurrent requests share one forward pass.

Requests (each a list of texts) wait in a bounded queue. One worker thread takes the oldest request,
then keeps gathering until the batch holds ``max_batch_texts`` texts or ``max_batch_tokens`` tokens,
or until ``max_wait_ms`` has passed since that oldest request arrived, and runs the whole batch with
one call of the runner. The runner sorts by length inside the batch (``inference.forward_sequences``
does), so mixing short and long requests costs little padding. Results go back to each request in
its input order.

The same design as Triton's and TorchServe's dynamic batchers: the wait is bounded by the *oldest*
request, so a lone request is delayed at most ``max_wait_ms``, and a busy server forms its next batch
at once from what queued while the previous one ran. The queue is bounded in texts: past the bound,
``submit`` raises ``Overloaded`` at once (the API answers 503 + Retry-After) instead of letting
latency grow without limit.

Hot swap: ``replace_runner`` takes effect between batches. A batch already running finishes on the
runner it started with, so no request fails or mixes two models.

Pure Python (threads and ``concurrent.futures``): no Django and no torch import; the runner is
injected, which is what makes this testable without a model.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

R = TypeVar("R")
Runner = Callable[[list[str]], Sequence[R]]

# Batch sizes are counted into these buckets (upper bounds, in texts) for the server's metrics.
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Overloaded(RuntimeError):
    """The queue is full (or the batcher is shutting down): retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class BatchPolicy:
    """How requests are gathered: limits per batch, the longest wait, and the queue bound."""

    max_batch_texts: int = 64
    max_batch_tokens: int = 16_384
    max_wait_ms: float = 5.0
    max_queue_texts: int = 2_048

    def __post_init__(self) -> None:
        if self.max_batch_texts < 1 or self.max_batch_tokens < 1:
            raise ValueError("max_batch_texts and max_batch_tokens must be >= 1")
        if not 0.0 <= self.max_wait_ms <= 1_000.0:
            raise ValueError(f"max_wait_ms must be in [0, 1000], got {self.max_wait_ms}")
        if self.max_queue_texts < self.max_batch_texts:
            raise ValueError("max_queue_texts must be >= max_batch_texts")


@dataclass
class BatcherStats:
    """Counters since start: what the server's metrics and the service page show."""

    batches: int = 0
    texts: int = 0
    requests: int = 0
    rejected: int = 0
    failed_batches: int = 0
    queued_texts: int = 0
    run_seconds: float = 0.0
    batch_size_counts: dict[int, int] = field(default_factory=lambda: dict.fromkeys(BATCH_SIZE_BUCKETS, 0))

    @property
    def mean_batch_texts(self) -> float:
        return self.texts / self.batches if self.batches else 0.0


@dataclass
class _Request(Generic[R]):
    texts: list[str]
    tokens: int
    future: Future[list[R]]
    arrived: float


class DynamicBatcher(Generic[R]):
    """Gather concurrent ``submit`` calls into batches run by one worker thread."""

    def __init__(
        self,
        runner: Runner[R],
        policy: BatchPolicy | None = None,
        *,
        count_tokens: Callable[[str], int] | None = None,
        name: str = "batcher",
    ) -> None:
        self.policy = policy or BatchPolicy()
        self._runner = runner
        # A cheap stand-in for the tokenizer: ~4 characters per sub-word token, at least one.
        self._count_tokens = count_tokens or (lambda text: max(1, len(text) // 4))
        self._queue: deque[_Request[R]] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._drain = True
        self._stats = BatcherStats()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # --- the callers' side ------------------------------------------------------------------

    def submit(self, texts: Sequence[str]) -> Future[list[R]]:
        """Queue ``texts`` as one request and return a future of their results, in input order.

        Raises ``Overloaded`` at once when the queue would pass its bound or the batcher is closing.
        """
        request: _Request[R] = _Request(
            texts=list(texts),
            tokens=sum(self._count_tokens(text) for text in texts),
            future=Future(),
            arrived=time.monotonic(),
        )
        with self._cond:
            if self._closing:
                raise Overloaded("the model server is shutting down", retry_after=1.0)
            if self._stats.queued_texts + len(request.texts) > self.policy.max_queue_texts:
                self._stats.rejected += 1
                raise Overloaded(
                    f"{self._stats.queued_texts} texts are already waiting (limit {self.policy.max_queue_texts})",
                    retry_after=self._retry_after(),
                )
            self._queue.append(request)
            self._stats.queued_texts += len(request.texts)
            self._stats.requests += 1
            self._cond.notify()
        return request.future

    def replace_runner(self, runner: Runner[R]) -> None:
        """Run every batch formed from now on with ``runner`` (a batch already running keeps its own)."""
        with self._cond:
            self._runner = runner

    def stats(self) -> BatcherStats:
        """Return a copy of the counters."""
        with self._cond:
            copy = BatcherStats(**{**self._stats.__dict__, "batch_size_counts": dict(self._stats.batch_size_counts)})
        return copy

    def close(self, *, drain: bool = True, timeout: float | None = 30.0) -> None:
        """Stop accepting requests; finish the queued ones (``drain``) or fail them with ``Overloaded``."""
        with self._cond:
            self._closing, self._drain = True, drain
            self._cond.notify_all()
        self._thread.join(timeout)

    # --- the worker thread ------------------------------------------------------------------

    def _retry_after(self) -> float:
        """Estimate how long the queue takes to drain at the throughput seen so far, 1 to 30 s (lock held)."""
        stats = self._stats
        if not stats.texts or stats.run_seconds <= 0:
            return 1.0
        seconds = stats.queued_texts / (stats.texts / stats.run_seconds)
        return float(min(30.0, max(1.0, round(seconds + 0.5))))

    def _loop(self) -> None:
        carry: _Request[R] | None = None
        while True:
            batch, runner, carry = self._gather(carry)
            if batch is None:
                return
            self._run(batch, runner)

    def _gather(self, carry: _Request[R] | None) -> tuple[list[_Request[R]] | None, Runner[R], _Request[R] | None]:
        """Return the next batch, the runner to use for it, and a request held over for the batch after."""
        with self._cond:
            first = carry or self._wait_first()
            if first is None:
                return None, self._runner, None
            batch, texts, tokens = [first], len(first.texts), first.tokens
            deadline = first.arrived + self.policy.max_wait_ms / 1000.0
            held: _Request[R] | None = None
            while texts < self.policy.max_batch_texts:
                if not self._queue:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._closing:
                        break
                    self._cond.wait(remaining)
                    continue
                candidate = self._queue.popleft()
                fits = texts + len(candidate.texts) <= self.policy.max_batch_texts
                if not fits or tokens + candidate.tokens > self.policy.max_batch_tokens:
                    held = candidate
                    break
                batch.append(candidate)
                texts, tokens = texts + len(candidate.texts), tokens + candidate.tokens
            return batch, self._runner, held

    def _wait_first(self) -> _Request[R] | None:
        """Block until a request arrives (return it) or the batcher closes with nothing left to run (None)."""
        while not self._queue:
            if self._closing:
                return None
            self._cond.wait()
        if self._closing and not self._drain:
            self._fail_queued()
            return None
        return self._queue.popleft()

    def _fail_queued(self) -> None:
        while self._queue:
            request = self._queue.popleft()
            self._stats.queued_texts -= len(request.texts)
            request.future.set_exception(Overloaded("the model server shut down before this request ran"))

    def _run(self, batch: list[_Request[R]], runner: Runner[R]) -> None:
        """Run one batch and hand each request its slice of the results (or the batch's error)."""
        texts = [text for request in batch for text in request.texts]
        with self._cond:
            self._stats.queued_texts -= len(texts)
        started = time.monotonic()
        try:
            results = list(runner(texts))
            if len(results) != len(texts):
                raise RuntimeError(f"the runner returned {len(results)} results for {len(texts)} texts")
        except Exception as error:  # every request of the batch gets the error; the worker carries on
            with self._cond:
                self._stats.failed_batches += 1
            for request in batch:
                request.future.set_exception(error)
            return
        self._record(len(texts), time.monotonic() - started)
        start = 0
        for request in batch:
            end = start + len(request.texts)
            request.future.set_result(results[start:end])
            start = end

    def _record(self, size: int, seconds: float) -> None:
        with self._cond:
            self._stats.run_seconds += seconds
            self._stats.batches += 1
            self._stats.texts += size
            bucket = next((b for b in BATCH_SIZE_BUCKETS if size <= b), BATCH_SIZE_BUCKETS[-1])
            self._stats.batch_size_counts[bucket] += 1

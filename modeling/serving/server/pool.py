"""Compute slots: each model is served by ``workers`` dynamic batchers (a ``_BatcherPool``); a request
goes to the one with the least work. Batches are bounded by an estimate of their tokens
(``_token_estimate``: about four characters a token, never past truncation).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import Future

from modeling.ml.batching import BatcherStats, BatchPolicy, DynamicBatcher, Overloaded
from modeling.serving.server.specs import Runner, TextResult


def _token_estimate(max_length: int) -> Callable[[str], int]:
    """Estimate a text's tokens for the batch budget: ~4 characters a token, never past truncation."""

    def count(text: str) -> int:
        return min(max(1, len(text) // 4), max_length) + 2

    return count


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

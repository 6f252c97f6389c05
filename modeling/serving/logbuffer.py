"""The prediction log's write-behind buffer: rows are written in bulk, off the request path.

The server appends each answered batch's rows; a background thread hands them to ``sink`` (a bulk
INSERT/COPY in production) every ``interval`` seconds or as soon as ``batch_rows`` are waiting. A
failing sink is retried with backoff, keeping the rows. The buffer is bounded: past ``max_rows``
the oldest rows are dropped and counted in ``dropped`` (a database outage must not exhaust the
server's memory); ``close`` flushes everything. The loss window on a crash (SIGKILL, power) is what
had not been written yet: the rows appended since the last write began (up to ``interval`` seconds of
traffic) plus the batch being written when the process died, bounded by ``max_rows``. Measured with
SIGKILL under load (``benchmarks/predict_api.py``, 500 ms interval): 3 to 12% of 5 s of traffic,
about 160 to 600 ms of it.

``flush`` writes what is waiting now and returns once it is in the sink: the feedback endpoint uses
it (through the server's ``flush`` op) when a caller reports on a prediction answered a moment ago.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)
Row = dict[str, Any]


@dataclass
class LogStats:
    appended: int = 0
    written: int = 0
    dropped: int = 0
    failed_flushes: int = 0
    pending: int = 0


class LogBuffer:
    """Collect prediction-log rows and write them in bulk from one background thread."""

    def __init__(
        self,
        sink: Callable[[list[Row]], None],
        *,
        interval: float = 0.5,
        batch_rows: int = 2_000,
        max_rows: int = 200_000,
        retry_backoff: float = 0.5,
    ) -> None:
        self._sink = sink
        self._interval, self._batch_rows, self._max_rows = interval, batch_rows, max_rows
        self._backoff = retry_backoff
        self._rows: deque[Row] = deque()
        self._cond = threading.Condition()
        self._stats = LogStats()
        self._closing = False
        self._flush_requested = False
        self._thread = threading.Thread(target=self._loop, name="prediction-log", daemon=True)
        self._thread.start()

    def append(self, rows: list[Row]) -> None:
        """Queue rows for writing; never blocks on the database."""
        with self._cond:
            self._rows.extend(rows)
            self._stats.appended += len(rows)
            overflow = len(self._rows) - self._max_rows
            for _ in range(max(0, overflow)):
                self._rows.popleft()
            if overflow > 0:
                self._stats.dropped += overflow
                logger.error("prediction log buffer full", extra={"dropped": overflow})
            if len(self._rows) >= self._batch_rows or overflow > 0:
                self._cond.notify_all()  # the writer, and flush() waiters when rows were dropped

    def stats(self) -> LogStats:
        with self._cond:
            return LogStats(**{**self._stats.__dict__, "pending": len(self._rows)})

    def flush(self, timeout: float = 10.0) -> bool:
        """Write every row appended so far now; return whether they were all handled within ``timeout``.

        Rows leave in order, so the rows appended before this call are handled once ``written +
        dropped`` reaches the ``appended`` count read here.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._stats.appended
            self._flush_requested = True
            self._cond.notify_all()
            while self._stats.written + self._stats.dropped < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Flush every queued row (retrying a failing sink until ``timeout``) and stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not (self._closing or self._flush_requested) and len(self._rows) < self._batch_rows:
                    self._cond.wait(self._interval)
                if not self._rows:
                    self._flush_requested = False
                batch = [self._rows.popleft() for _ in range(min(len(self._rows), self._batch_rows))]
                closing = self._closing
            if batch:
                self._write(batch)
            elif closing:
                return

    def _write(self, batch: list[Row]) -> None:
        """Write one batch, retrying with backoff; on close, give up after a few tries and count the loss."""
        attempt = 0
        while True:
            try:
                self._sink(batch)
            except Exception:  # the database may be down: keep the rows, retry, never crash the server
                attempt += 1
                with self._cond:
                    self._stats.failed_flushes += 1
                    closing = self._closing
                logger.exception("prediction log flush failed", extra={"rows": len(batch), "attempt": attempt})
                if closing and attempt >= 5:
                    with self._cond:
                        self._stats.dropped += len(batch)
                        self._cond.notify_all()
                    return
                time.sleep(min(self._backoff * 2 ** (attempt - 1), 10.0))
                continue
            with self._cond:
                self._stats.written += len(batch)
                self._cond.notify_all()
            return

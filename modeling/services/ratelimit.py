"""Per-token rate limits for the prediction API, counted in a store every web worker shares.

A fixed one-minute window per (project, caller): the first ``limit`` requests of a window pass,
the rest are refused with the seconds until the window ends (the ``Retry-After``). A fixed window
lets a caller burst up to twice the limit across a window boundary; that is the price of a single
counter per caller, and what GitHub's and most API gateways' per-minute limits do too.

Two stores, chosen by ``settings.API_RATE_LIMIT_STORE``:

- ``redis://…``: one counter key per window (``SET NX EX`` then ``INCR`` in a MULTI), shared by every
  web worker on every host. The production stack.
- ``file:///dir``: one small file per caller under ``dir``, read-modify-written under ``flock``, so
  web server workers and runserver threads on one host count together. The embedded stack, which has
  no Redis and runs on one host. (Django's file and database caches cannot do this: their ``incr`` is
  a get then a set, and concurrent workers lose counts.)

A store that fails (Redis down, disk full) lets the request through and logs the error: rate limiting
protects capacity, and refusing every call because the counter is unreachable would be an outage.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import math
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateDecision:
    """Whether one request may run, and when the caller may try again if not."""

    allowed: bool
    count: int
    retry_after: int


class RateStore(Protocol):
    def hit(self, key: str, *, window_start: int, ttl: int) -> int:
        """Count one request for ``key`` in the window starting at ``window_start``; return the count."""
        ...


class FileRateStore:
    """Counters in files under ``root``, one per key, updated under an exclusive ``flock``.

    A record is fixed-width and rewritten in place: truncating and rewriting a file makes ext4 flush
    it (``auto_da_alloc``), which cost 3 ms a request here; an in-place ``pwrite`` costs microseconds.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def hit(self, key: str, *, window_start: int, ttl: int) -> int:
        path = self.root / hashlib.sha256(key.encode()).hexdigest()[:32]
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            window, count = _read_record(os.pread(descriptor, RECORD.size, 0))
            count = count + 1 if window == window_start else 1
            os.pwrite(descriptor, RECORD.pack(window_start, count), 0)
            return count
        finally:
            os.close(descriptor)  # closing the descriptor releases the lock


RECORD = struct.Struct("<qq")  # window start, count


def _read_record(raw: bytes) -> tuple[int, int]:
    """Parse a counter file; an empty or short one (a crash mid-write) starts the window afresh."""
    if len(raw) != RECORD.size:
        return -1, 0
    window, count = RECORD.unpack(raw)
    return int(window), int(count)


class RedisRateStore:
    """Counters in Redis: a key per caller and window that expires with the window."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def hit(self, key: str, *, window_start: int, ttl: int) -> int:
        name = f"loopline:ratelimit:{key}:{window_start}"
        pipe = self._redis.pipeline(transaction=True)
        # SET NX EX first: a counter can never exist without its expiry, even if this process dies here.
        pipe.set(name, 0, ex=ttl, nx=True)
        pipe.incr(name)
        _, count = pipe.execute()
        return int(count)


_stores: dict[str, RateStore] = {}


def rate_store(url: str) -> RateStore:
    """Return the store for ``url`` (one per process and URL)."""
    store = _stores.get(url)
    if store is None:
        store = FileRateStore(Path(urlsplit(url).path)) if url.startswith("file://") else RedisRateStore(url)
        _stores[url] = store
    return store


def rate_limit_hit(*, key: str, limit: int, now: float | None = None, store: RateStore | None = None) -> RateDecision:
    """Count one request of ``key`` against ``limit`` per minute; say whether it may run."""
    now = time.time() if now is None else now
    window_start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
    try:
        count = (store or rate_store(settings.API_RATE_LIMIT_STORE)).hit(
            key, window_start=window_start, ttl=WINDOW_SECONDS + 5
        )
    except Exception:  # the store is down: fail open (see the module docstring)
        logger.exception("rate limit store failed; request let through", extra={"key": key})
        return RateDecision(allowed=True, count=0, retry_after=0)
    retry_after = max(1, math.ceil(window_start + WINDOW_SECONDS - now))
    return RateDecision(allowed=count <= limit, count=count, retry_after=retry_after)

"""A per-process cache whose entries live for a TTL read at each call, loaded by one thread at a time.

The web serves the prediction API from many threads per process (granian's blocking threads). With a plain
"look up, else load and store" cache, every thread that arrives while an entry is expired loads it
again: at 200 requests/s over 32 threads, each expiry of the token, membership and serving-state
entries meant a burst of identical queries, each on a fresh database connection. Here the first
thread to find an entry expired loads it while holding that key's lock; the threads behind it wait for
that one load and take its result (single flight). A load that raises stores nothing, so a refused
token or an outsider is checked again on the next call. An entry is dated from before its load began:
nothing is ever served later than ``ttl`` after the query that read it started.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Key -> value remembered for the ``ttl`` each call passes; at most ``max_entries`` keys."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._locks: dict[K, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: K, ttl: float, load: Callable[[], V]) -> V:
        """Return the value stored for `key` if younger than `ttl` seconds, else `load()` it (once at a time)."""
        hit = self._entries.get(key)
        if hit is not None and time.monotonic() - hit[0] < ttl:
            return hit[1]
        with self._guard:
            if len(self._locks) >= self.max_entries and key not in self._locks:
                # Keys whose load failed (unknown tokens) leave a lock and no entry: bound those too. A
                # thread still holding a dropped lock finishes its load; only that key's single flight lapses.
                self._locks = {}
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            started = time.monotonic()
            hit = self._entries.get(key)
            if hit is not None and started - hit[0] < ttl:
                return hit[1]  # another thread loaded it while this one waited
            value = load()
            if ttl > 0:
                with self._guard:
                    if len(self._entries) >= self.max_entries and key not in self._entries:
                        self._entries.clear()
                        self._locks = {key: lock}
                    self._entries[key] = (started, value)
            return value

    def clear(self) -> None:
        """Forget every entry."""
        with self._guard:
            self._entries.clear()
            self._locks.clear()

    def __len__(self) -> int:
        return len(self._entries)

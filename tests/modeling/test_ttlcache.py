"""The serving caches' single-flight TTL cache (modeling.services.serving.ttlcache)."""

from __future__ import annotations

import threading
import time

import pytest

from modeling.services.serving.ttlcache import TtlCache


def test_concurrent_misses_load_once_and_share_the_result() -> None:
    cache: TtlCache[str, int] = TtlCache(10)
    calls: list[int] = []
    gate = threading.Barrier(16)

    def load() -> int:
        calls.append(1)
        time.sleep(0.05)  # the other threads arrive while this load runs
        return 42

    results: list[int] = []

    def caller() -> None:
        gate.wait()
        results.append(cache.get("token", 10.0, load))

    threads = [threading.Thread(target=caller) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [42] * 16
    assert len(calls) == 1


def test_an_entry_expires_after_its_ttl_and_is_loaded_again() -> None:
    cache: TtlCache[str, int] = TtlCache(10)
    values = iter([1, 2])
    assert cache.get("k", 0.05, lambda: next(values)) == 1
    assert cache.get("k", 0.05, lambda: next(values)) == 1
    time.sleep(0.06)
    assert cache.get("k", 0.05, lambda: next(values)) == 2


def test_a_failed_load_stores_nothing_and_a_zero_ttl_never_stores() -> None:
    cache: TtlCache[str, int] = TtlCache(10)

    def refuse() -> int:
        raise PermissionError("unknown token")

    with pytest.raises(PermissionError):
        cache.get("bad", 10.0, refuse)
    assert len(cache) == 0
    assert cache.get("bad", 10.0, lambda: 7) == 7  # checked again, not remembered as a failure
    assert cache.get("z", 0.0, lambda: 1) == 1
    assert cache.get("z", 0.0, lambda: 2) == 2
    assert "z" not in cache._entries


def test_the_cache_is_bounded() -> None:
    cache: TtlCache[int, int] = TtlCache(3)
    for key in range(10):
        cache.get(key, 10.0, lambda key=key: key)
        assert len(cache) <= 3
    assert cache.get(9, 10.0, lambda: -1) == 9  # the newest entry survives a clear


def test_failed_loads_do_not_grow_the_cache_without_bound() -> None:
    cache: TtlCache[str, int] = TtlCache(3)

    def refuse() -> int:
        raise PermissionError("unknown token")

    for n in range(50):
        with pytest.raises(PermissionError):
            cache.get(f"random-token-{n}", 10.0, refuse)
    assert len(cache) == 0 and len(cache._locks) <= 3

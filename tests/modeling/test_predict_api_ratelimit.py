"""The API's rate-limit counters: exact under concurrent processes (file store) and in Redis; windows
reset; a broken store lets requests through."""

from __future__ import annotations

import multiprocessing
import os
import uuid
from pathlib import Path

import pytest

from modeling.services.ratelimit import FileRateStore, RedisRateStore, rate_limit_hit

WINDOW = 1_700_000_040.0  # the start of a one-minute window


def _hammer(root: str, hits: int) -> None:
    store = FileRateStore(Path(root))
    for _ in range(hits):
        store.hit("p1:u1", window_start=int(WINDOW), ttl=65)


def test_file_counters_are_exact_across_processes(tmp_path):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hammer, args=(str(tmp_path), 50)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert FileRateStore(tmp_path).hit("p1:u1", window_start=int(WINDOW), ttl=65) == 201


def test_a_caller_is_refused_past_the_limit_until_the_window_ends(tmp_path):
    store = FileRateStore(tmp_path)
    decisions = [rate_limit_hit(key="p1:u1", limit=3, now=WINDOW + 10, store=store) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].retry_after == 50
    assert rate_limit_hit(key="p1:u2", limit=3, now=WINDOW + 10, store=store).allowed  # another caller
    assert rate_limit_hit(key="p1:u1", limit=3, now=WINDOW + 60.5, store=store).count == 1  # a new window


def test_a_torn_counter_file_starts_the_window_afresh(tmp_path):
    store = FileRateStore(tmp_path)
    store.hit("k", window_start=0, ttl=65)
    assert store.hit("k", window_start=0, ttl=65) == 2
    (only,) = list(tmp_path.iterdir())
    only.write_bytes(only.read_bytes()[:5])  # a crash mid-write
    assert store.hit("k", window_start=0, ttl=65) == 1


def test_a_broken_store_lets_the_request_through(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    store = FileRateStore.__new__(FileRateStore)
    store.root = blocker  # every hit fails: the root is a file
    decision = rate_limit_hit(key="k", limit=1, now=WINDOW, store=store)
    assert decision.allowed and decision.count == 0


def _redis_url() -> str | None:
    url = os.environ.get("CELERY_BROKER_URL", "")
    return url if url.startswith("redis://") else None


@pytest.mark.skipif(_redis_url() is None, reason="needs Redis (CELERY_BROKER_URL=redis://...)")
def test_redis_counters_count_every_hit_and_expire_with_the_window():
    import redis

    store = RedisRateStore(_redis_url())
    key = f"test-{uuid.uuid4().hex}"
    counts = [store.hit(key, window_start=int(WINDOW), ttl=65) for _ in range(5)]
    assert counts == [1, 2, 3, 4, 5]
    name = f"loopline:ratelimit:{key}:{int(WINDOW)}"
    client = redis.Redis.from_url(_redis_url())
    assert 0 < client.ttl(name) <= 65
    client.delete(name)

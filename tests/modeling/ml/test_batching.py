"""The dynamic batcher: coalescing, limits, the bounded queue, errors, hot swap and shutdown.

The runner is a plain function that records each batch it receives; where a test needs requests to
pile up, the runner blocks on an event the test releases, so nothing depends on timing.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from modeling.ml.batching import BatchPolicy, DynamicBatcher, Overloaded


class Recorder:
    """A runner that upper-cases texts and records every batch; optionally blocks until released."""

    def __init__(self, tag: str = "", block: bool = False) -> None:
        self.tag = tag
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not block:
            self.release.set()

    def __call__(self, texts: list[str]) -> list[str]:
        self.batches.append(list(texts))
        self.entered.set()
        assert self.release.wait(10), "the test never released the runner"
        return [self.tag + text.upper() for text in texts]


@pytest.fixture
def batchers():
    made: list[DynamicBatcher] = []

    def make(runner, **policy):
        batcher = DynamicBatcher(runner, BatchPolicy(**policy), count_tokens=len)
        made.append(batcher)
        return batcher

    yield make
    for batcher in made:
        batcher.close(drain=False, timeout=5)


def test_a_lone_request_runs_and_keeps_its_order(batchers):
    runner = Recorder()
    batcher = batchers(runner, max_wait_ms=1)
    assert batcher.submit(["b", "a", "c"]).result(timeout=5) == ["B", "A", "C"]
    assert runner.batches == [["b", "a", "c"]]


def test_requests_queued_while_a_batch_runs_share_the_next_batch(batchers):
    runner = Recorder(block=True)
    batcher = batchers(runner, max_wait_ms=0)
    first = batcher.submit(["first"])
    assert runner.entered.wait(5)
    waiting = [batcher.submit([f"t{i}", f"u{i}"]) for i in range(5)]
    runner.release.set()
    assert first.result(timeout=5) == ["FIRST"]
    assert [f.result(timeout=5) for f in waiting] == [[f"T{i}", f"U{i}"] for i in range(5)]
    assert runner.batches[1] == [text for i in range(5) for text in (f"t{i}", f"u{i}")]
    stats = batcher.stats()
    assert (stats.batches, stats.texts, stats.requests) == (2, 11, 6)
    assert stats.batch_size_counts[1] == 1 and stats.batch_size_counts[16] == 1


def test_a_batch_never_passes_the_text_limit(batchers):
    runner = Recorder(block=True)
    batcher = batchers(runner, max_batch_texts=4, max_wait_ms=0)
    blocker = batcher.submit(["x"])
    assert runner.entered.wait(5)
    futures = [batcher.submit([f"{i}a", f"{i}b", f"{i}c"]) for i in range(3)]
    runner.release.set()
    blocker.result(timeout=5)
    for future in futures:
        future.result(timeout=5)
    # Three-text requests cannot pair up under a limit of four: one request per batch after the blocker.
    assert [len(batch) for batch in runner.batches] == [1, 3, 3, 3]


def test_a_batch_never_passes_the_token_budget(batchers):
    runner = Recorder(block=True)
    batcher = batchers(runner, max_batch_tokens=10, max_wait_ms=0)
    blocker = batcher.submit(["x"])
    assert runner.entered.wait(5)
    futures = [batcher.submit(["aaaa"]), batcher.submit(["bbbb"]), batcher.submit(["cccc"])]
    runner.release.set()
    blocker.result(timeout=5)
    assert [f.result(timeout=5) for f in futures] == [["AAAA"], ["BBBB"], ["CCCC"]]
    # count_tokens=len: 4 + 4 fits the budget of 10, a third request would make 12.
    assert runner.batches[1:] == [["aaaa", "bbbb"], ["cccc"]]


def test_an_oversized_request_still_runs_alone(batchers):
    runner = Recorder()
    batcher = batchers(runner, max_batch_texts=2, max_queue_texts=8)
    assert batcher.submit(["a", "b", "c", "d"]).result(timeout=5) == ["A", "B", "C", "D"]


def test_a_full_queue_sheds_load_instead_of_growing(batchers):
    runner = Recorder(block=True)
    batcher = batchers(runner, max_batch_texts=2, max_queue_texts=4, max_wait_ms=0)
    running = batcher.submit(["r"])
    assert runner.entered.wait(5)
    queued = [batcher.submit(["a", "b"]), batcher.submit(["c", "d"])]
    with pytest.raises(Overloaded) as refused:
        batcher.submit(["e"])
    assert refused.value.retry_after >= 1.0
    assert batcher.stats().queued_texts == 4 and batcher.stats().rejected == 1
    runner.release.set()
    running.result(timeout=5)
    assert [f.result(timeout=5) for f in queued] == [["A", "B"], ["C", "D"]]
    assert batcher.submit(["e"]).result(timeout=5) == ["E"]


def test_a_failing_batch_fails_its_requests_and_the_batcher_carries_on(batchers):
    calls = []

    def runner(texts):
        calls.append(texts)
        if "boom" in texts:
            raise ValueError("model error")
        return texts

    batcher = batchers(runner)
    with pytest.raises(ValueError, match="model error"):
        batcher.submit(["boom"]).result(timeout=5)
    assert batcher.submit(["fine"]).result(timeout=5) == ["fine"]
    assert batcher.stats().failed_batches == 1


def test_a_runner_returning_the_wrong_count_is_an_error_not_a_misalignment(batchers):
    batcher = batchers(lambda texts: texts[:-1])
    with pytest.raises(RuntimeError, match="returned 1 results for 2 texts"):
        batcher.submit(["a", "b"]).result(timeout=5)


def test_hot_swap_lets_the_running_batch_finish_on_the_old_runner(batchers):
    old, new = Recorder("old:", block=True), Recorder("new:")
    batcher = batchers(old, max_wait_ms=0)
    in_flight = batcher.submit(["a"])
    assert old.entered.wait(5)
    batcher.replace_runner(new)
    after = batcher.submit(["b"])
    old.release.set()
    assert in_flight.result(timeout=5) == ["old:A"]
    assert after.result(timeout=5) == ["new:B"]


def test_no_request_fails_while_runners_are_swapped_under_load(batchers):
    runners = [Recorder(f"v{n}:") for n in range(5)]
    batcher = batchers(runners[0], max_wait_ms=1)

    def call(i):
        return batcher.submit([f"t{i}"]).result(timeout=10)

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(call, i) for i in range(400)]
        for runner in runners[1:]:
            batcher.replace_runner(runner)
        results = [f.result() for f in futures]
    assert len(results) == 400
    assert all(result[0].split(":")[1] == f"T{i}" for i, result in enumerate(results))
    assert sum(len(batch) for runner in runners for batch in runner.batches) == 400


def test_close_drains_queued_requests(batchers):
    runner = Recorder(block=True)
    batcher = batchers(runner, max_wait_ms=0)
    first = batcher.submit(["a"])
    assert runner.entered.wait(5)
    second = batcher.submit(["b"])
    closer = threading.Thread(target=batcher.close, kwargs={"drain": True})
    closer.start()
    runner.release.set()
    closer.join(5)
    assert first.result(timeout=5) == ["A"] and second.result(timeout=5) == ["B"]
    with pytest.raises(Overloaded, match="shutting down"):
        batcher.submit(["c"])


def test_close_without_drain_fails_what_has_not_started(batchers):
    runner = Recorder(block=True)
    batcher = batchers(runner, max_wait_ms=0)
    first = batcher.submit(["a"])
    assert runner.entered.wait(5)
    second = batcher.submit(["b"])
    closer = threading.Thread(target=batcher.close, kwargs={"drain": False})
    closer.start()
    runner.release.set()
    closer.join(5)
    assert first.result(timeout=5) == ["A"]
    with pytest.raises(Overloaded, match="shut down before this request ran"):
        second.result(timeout=5)


@pytest.mark.parametrize(
    "policy",
    [{"max_batch_texts": 0}, {"max_wait_ms": -1}, {"max_queue_texts": 1, "max_batch_texts": 2}],
)
def test_policy_refuses_values_that_cannot_work(policy):
    with pytest.raises(ValueError):
        BatchPolicy(**policy)

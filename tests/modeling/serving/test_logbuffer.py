"""The prediction log's write-behind buffer: batching, retries, the memory bound, flush on close."""

from __future__ import annotations

import threading

from modeling.serving.logbuffer import LogBuffer


def _wait(condition, seconds=10.0):
    for _ in range(int(seconds / 0.01)):
        if condition():
            return True
        threading.Event().wait(0.01)
    return False


def test_rows_are_written_in_bulk_once_a_batch_is_full():
    batches: list[list[dict]] = []
    buffer = LogBuffer(batches.append, interval=60, batch_rows=3)
    buffer.append([{"n": i} for i in range(7)])
    assert _wait(lambda: sum(map(len, batches)) == 6)
    assert [len(batch) for batch in batches] == [3, 3]
    buffer.close()
    assert [row["n"] for batch in batches for row in batch] == list(range(7))
    stats = buffer.stats()
    assert (stats.appended, stats.written, stats.dropped, stats.pending) == (7, 7, 0, 0)


def test_a_partial_batch_is_written_after_the_interval():
    batches: list[list[dict]] = []
    buffer = LogBuffer(batches.append, interval=0.05, batch_rows=1000)
    buffer.append([{"n": 1}])
    assert _wait(lambda: batches == [[{"n": 1}]])
    buffer.close()


def test_a_failing_sink_is_retried_and_nothing_is_lost():
    written: list[dict] = []
    failures = {"left": 2}

    def flaky(rows):
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("database restarting")
        written.extend(rows)

    buffer = LogBuffer(flaky, interval=0.01, retry_backoff=0.01)
    buffer.append([{"n": i} for i in range(5)])
    assert _wait(lambda: len(written) == 5)
    buffer.close()
    assert buffer.stats().failed_flushes == 2 and buffer.stats().dropped == 0


def test_the_buffer_is_bounded_and_counts_what_it_drops():
    release = threading.Event()
    written: list[dict] = []

    def blocked(rows):
        release.wait(10)
        written.extend(rows)

    buffer = LogBuffer(blocked, interval=0.01, batch_rows=1, max_rows=3)
    buffer.append([{"n": 0}])
    assert _wait(lambda: buffer.stats().pending == 0)  # row 0 is in the (blocked) sink
    buffer.append([{"n": i} for i in range(1, 6)])
    assert buffer.stats().dropped == 2 and buffer.stats().pending == 3
    release.set()
    buffer.close()
    assert [row["n"] for row in written] == [0, 3, 4, 5]


def test_close_flushes_everything_pending():
    written: list[dict] = []
    buffer = LogBuffer(written.extend, interval=60, batch_rows=10_000)
    buffer.append([{"n": i} for i in range(250)])
    buffer.close()
    assert len(written) == 250

"""The model server over a real Unix socket with real artifacts: contract, errors, concurrency, hot swap."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modeling.ml.artifacts import load_artifact
from modeling.ml.batching import BatchPolicy, Overloaded
from modeling.ml.config import InferenceConfig
from modeling.serving.client import (
    ModelNotServed,
    ModelServerClient,
    ModelServerError,
    ServerOverloaded,
    ServerUnavailable,
)
from modeling.serving.logbuffer import LogBuffer
from modeling.serving.server import ModelServer, ModelSpec, TextResult

from .conftest import LABELS

TEXTS = [
    f"review number {i}: the room was {'great' if i % 2 else 'awful'} and the staff {'kind' * (i % 4)}"
    for i in range(40)
]


def _wait(condition, seconds: float = 10.0) -> bool:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return True
        threading.Event().wait(0.01)
    return False


@pytest.fixture
def socket_path(tmp_path: Path) -> str:
    return str(tmp_path / "model.sock")


@pytest.fixture
def served(socket_path, artifacts):
    written: list[dict] = []
    log = LogBuffer(written.extend, interval=0.05)
    server = ModelServer(policy=BatchPolicy(max_wait_ms=2), log=log, threads=1)
    server.load(artifacts[0].spec("acme:production", 1))
    listener = server.serve(socket_path)
    client = ModelServerClient(socket_path)
    yield server, client, written
    client.close()
    listener.shutdown()
    listener.server_close()
    server.close()


def _reference(artifact, texts):
    classifier = load_artifact(artifact.path)
    probs = classifier.predict(texts, InferenceConfig(max_length=64, device="cpu", num_threads=1)).probabilities
    return {text: [round(float(p), 6) for p in row] for text, row in zip(texts, probs, strict=True)}


def test_predict_answers_calibrated_probabilities_in_input_order_and_logs_each_text(served, artifacts):
    server, client, written = served
    reply = client.predict("acme:production", TEXTS[:5], {"caller": "svc-a", "project": "acme"})
    assert reply["version"] == 1 and reply["labels"] == LABELS
    assert len(reply["ids"]) == len(set(reply["ids"])) == 5
    expected = _reference(artifacts[0], TEXTS[:5])
    for text, probs in zip(TEXTS[:5], reply["probs"], strict=True):
        assert probs == pytest.approx(expected[text], abs=1e-5)
        assert sum(probs) == pytest.approx(1.0, abs=1e-4)
    server.close()  # flushes the log
    assert [row["id"] for row in written] == reply["ids"]
    row = written[0]
    assert row["input_chars"] == len(TEXTS[0]) and len(row["text_sha256"]) == 64
    assert row["meta"] == {"caller": "svc-a", "project": "acme"} and row["version"] == 1
    assert list(row["probs"]) == LABELS and list(row["probs"].values()) == reply["probs"][0]
    assert row["label"] == max(row["probs"], key=row["probs"].get)


def test_concurrent_callers_all_get_their_own_answers(served, artifacts):
    _, client, _ = served
    expected = _reference(artifacts[0], TEXTS)

    def call(i):
        texts = TEXTS[i % 40 : i % 40 + 1 + i % 3]
        return texts, client.predict("acme:production", texts)

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(call, range(160)))
    for texts, reply in answers:
        assert [p for p in reply["probs"]] == [pytest.approx(expected[t], abs=1e-5) for t in texts]


def test_hot_swap_under_load_fails_no_request_and_never_mixes_versions(served, artifacts):
    server, client, _ = served
    refs = {1: _reference(artifacts[0], TEXTS), 2: _reference(artifacts[1], TEXTS)}
    assert refs[1][TEXTS[0]] != pytest.approx(refs[2][TEXTS[0]], abs=1e-4)  # the two heads differ
    stop, errors, answers = threading.Event(), [], []

    def hammer(n):
        while not stop.is_set():
            try:
                text = TEXTS[n % 40]
                answers.append((text, client.predict("acme:production", [text])))
            except Exception as exc:  # collected: the assertion below must see every failure
                errors.append(exc)
            n += 7

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    while len(answers) < 50:
        threading.Event().wait(0.01)
    server.load(artifacts[1].spec("acme:production", 2))
    seen = len(answers)
    while len(answers) < seen + 50:
        threading.Event().wait(0.01)
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    versions = [reply["version"] for _, reply in answers]
    assert {1, 2} <= set(versions)
    for text, reply in answers:
        assert reply["probs"][0] == pytest.approx(refs[reply["version"]][text], abs=1e-5)
    assert server.models()[0]["version"] == 2


def test_unknown_model_bad_request_and_server_down_are_typed_errors(served, socket_path, tmp_path):
    _, client, _ = served
    with pytest.raises(ModelNotServed):
        client.predict("nobody:production", ["x"])
    with pytest.raises(ModelServerError) as bad:
        client.call({"op": "predict", "key": "acme:production", "texts": []})
    assert bad.value.code == "bad_request"
    with pytest.raises(ServerUnavailable):
        ModelServerClient(str(tmp_path / "nothing.sock")).ping()
    assert client.ping()


def test_a_full_queue_answers_overloaded_with_retry_after(socket_path):
    gate = threading.Event()

    def loader(spec):
        def run(texts):
            if "warm up" not in texts and not gate.wait(10):
                raise RuntimeError("never released")
            return [TextResult([0.5, 0.5], 1, ["a", "b"]) for _ in texts]

        return ["a", "b"], run

    server = ModelServer(
        policy=BatchPolicy(max_batch_texts=2, max_queue_texts=2, max_wait_ms=0), loader=loader, threads=1
    )
    server.load(ModelSpec(key="k", path="-", version=1))
    listener = server.serve(socket_path)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(ModelServerClient(socket_path).predict, "k", ["t1", "t2"]) for _ in range(6)]
            outcomes = []
            for _ in range(1000):  # until all six requests were either queued/running or refused
                counters = server.stats()["models"]["k"]
                if counters["requests"] + counters["rejected"] == 6:
                    break
                threading.Event().wait(0.01)
            gate.set()
            for future in futures:
                try:
                    outcomes.append(future.result(timeout=10)["version"])
                except ServerOverloaded as exc:
                    assert exc.retry_after >= 1
                    outcomes.append("overloaded")
        assert "overloaded" in outcomes and 1 in outcomes
    finally:
        listener.shutdown()
        listener.server_close()
        server.close()


def test_a_shadow_scores_a_copy_after_the_answer_and_only_the_log_sees_it(served, artifacts):
    server, client, written = served
    server.load(artifacts[1].spec("acme:shadow", 2))
    reply = client.predict(
        "acme:production",
        TEXTS[:3],
        {"route": "production"},
        shadow={"key": "acme:shadow", "meta": {"route": "shadow"}},
    )
    assert reply["version"] == 1
    assert client.flush() is True
    for _ in range(500):  # the shadow batch runs after the reply went out
        if len(written) == 6:
            break
        threading.Event().wait(0.01)
    shadow_rows = [row for row in written if row["meta"] == {"route": "shadow"}]
    assert [row["version"] for row in shadow_rows] == [2, 2, 2]
    assert not {row["id"] for row in shadow_rows} & set(reply["ids"])
    expected = _reference(artifacts[1], TEXTS[:3])
    for row, text in zip(shadow_rows, TEXTS[:3], strict=True):
        assert list(row["probs"].values()) == pytest.approx(expected[text], abs=1e-5)
    assert server.stats()["shadow"] == {"submitted": 1, "skipped": 0, "failed": 0}


def test_a_missing_shadow_is_skipped_and_the_answer_still_comes(served):
    server, client, written = served
    reply = client.predict("acme:production", TEXTS[:2], shadow={"key": "acme:shadow", "meta": {}})
    assert reply["version"] == 1
    assert server.stats()["shadow"]["skipped"] == 1
    assert client.flush() and len(written) == 2


def test_flush_writes_pending_rows_at_once(socket_path, artifacts):
    written: list[dict] = []
    server = ModelServer(log=LogBuffer(written.extend, interval=3600), threads=1)
    server.load(artifacts[0].spec("k", 1))
    listener = server.serve(socket_path)
    client = ModelServerClient(socket_path)
    try:
        reply = client.predict("k", TEXTS[:4])
        assert written == []  # an hour-long interval: nothing would be written yet
        assert client.flush() is True
        assert [row["id"] for row in written] == reply["ids"]
    finally:
        client.close()
        listener.shutdown()
        listener.server_close()
        server.close()


def test_close_answers_the_queued_requests_and_writes_their_log_rows(socket_path):
    gate, started = threading.Event(), threading.Event()
    written: list[dict] = []

    def loader(spec):
        def run(texts):
            if "warm up" not in texts:
                started.set()
                gate.wait(10)
            return [TextResult([0.25, 0.75], 1, ["a", "b"]) for _ in texts]

        return ["a", "b"], run

    server = ModelServer(log=LogBuffer(written.extend, interval=3600), loader=loader, threads=1)
    server.load(ModelSpec(key="k", path="-", version=1))
    with ThreadPoolExecutor(max_workers=5) as pool:  # four requests and close()
        futures = [pool.submit(server.predict, "k", [f"t{i}"]) for i in range(4)]
        assert started.wait(10)
        closing = pool.submit(server.close)
        threading.Event().wait(0.1)
        with pytest.raises(Overloaded):  # refused once closing began
            server.predict("k", ["late"])
        gate.set()
        ids = [id_ for future in futures for id_ in future.result(10)["ids"]]
        closing.result(10)
    assert sorted(row["id"] for row in written) == sorted(ids)


def test_the_batch_token_budget_counts_truncated_length():
    from modeling.serving.server.pool import _token_estimate

    count = _token_estimate(64)
    assert count("abcd" * 10) == 12 and count("x" * 20_000) == 66 and count("") == 3


def test_two_compute_slots_run_two_batches_side_by_side_and_refuse_only_when_both_queues_are_full():
    gate, running = threading.Event(), []
    both = threading.Barrier(2, timeout=10)

    def loader(spec):
        def run(texts):
            if "warm up" not in texts:
                running.append(texts)
                both.wait()  # would time out (BrokenBarrierError) if the batches ran one after the other
                gate.wait(10)
            return [TextResult([0.5, 0.5], 1, ["a", "b"]) for _ in texts]

        return ["a", "b"], run

    policy = BatchPolicy(max_batch_texts=1, max_queue_texts=2, max_wait_ms=0)
    server = ModelServer(policy=policy, loader=loader, threads=1, workers=2)
    server.load(ModelSpec(key="k", path="-", version=1))
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = []
            # One at a time, each seen in place before the next: two run side by side, then one waits in
            # each batcher's queue (each holds half of the bound: 1 text).
            for i, placed in enumerate(
                (
                    lambda: len(running) == 1,
                    lambda: len(running) == 2,
                    lambda: server.stats()["models"]["k"]["queued_texts"] == 1,
                    lambda: server.stats()["models"]["k"]["queued_texts"] == 2,
                )
            ):
                futures.append(pool.submit(server.predict, "k", [f"t{i}"]))
                assert _wait(placed), (i, server.stats(), running)
            with pytest.raises(Overloaded):
                server.predict("k", ["one too many"])
            gate.set()
            assert all(future.result(10)["version"] == 1 for future in futures)
        stats = server.stats()["models"]["k"]
        assert (stats["requests"], stats["texts"], stats["rejected"]) == (4, 4, 2)  # one refusal per full queue
    finally:
        gate.set()
        server.close()

"""Forward passes in a child process (``process_loader``): the same answers as in the server's own
process, the child ends with its runner (hot swap, unload), comes back after a crash, and a broken
artifact fails the load with no child left behind. Real spawned processes, tiny real artifacts.
"""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing
import os
import signal
import time

import pytest

from modeling.ml.artifacts import load_artifact
from modeling.ml.batching import BatchPolicy
from modeling.ml.config import InferenceConfig
from modeling.serving.server import ModelServer
from modeling.serving.server.process_runner import ForwardProcessError, process_loader

from .harness import LABELS

pytestmark = pytest.mark.integration

TEXTS = ["great stay, lovely staff", "the room was dirty", "ok", "breakfast was fine but the wifi failed"]


def _children(expected: int, seconds: float = 30.0) -> list[multiprocessing.Process]:
    """Wait until ``expected`` children are alive (collecting garbage meanwhile); return them."""
    deadline = time.monotonic() + seconds
    while True:
        gc.collect()
        children = [child for child in multiprocessing.active_children() if child.name.startswith("forward-")]
        if len(children) == expected or time.monotonic() > deadline:
            return children
        time.sleep(0.1)


def _reference(artifact, texts):
    probs = load_artifact(artifact.path).predict(texts, InferenceConfig(max_length=64, device="cpu", num_threads=1))
    return [[round(float(p), 6) for p in row] for row in probs.probabilities]


@pytest.fixture
def server():
    server = ModelServer(policy=BatchPolicy(max_wait_ms=1), loader=process_loader(1), threads=1)
    yield server
    server.close()
    _children(0)


def test_a_forward_process_answers_as_the_server_s_own_process_would(server, artifacts):
    server.load(artifacts[0].spec("acme:production", 1))
    reply = server.predict("acme:production", TEXTS, {"no_log": True})
    assert reply["labels"] == LABELS and reply["version"] == 1
    for probs, expected in zip(reply["probs"], _reference(artifacts[0], TEXTS), strict=True):
        assert probs == pytest.approx(expected, abs=1e-5)
    [child] = _children(1)
    assert child.pid != os.getpid()


def test_a_hot_swap_and_an_unload_end_the_children_they_replace(server, artifacts):
    server.load(artifacts[0].spec("acme:production", 1))
    [first] = _children(1)
    server.load(artifacts[1].spec("acme:production", 2))
    reply = server.predict("acme:production", TEXTS[:2], {"no_log": True})  # served by the new child
    assert reply["version"] == 2
    for probs, expected in zip(reply["probs"], _reference(artifacts[1], TEXTS[:2]), strict=True):
        assert probs == pytest.approx(expected, abs=1e-5)
    [second] = _children(1)
    assert second.pid != first.pid and not first.is_alive()
    assert server.unload("acme:production")
    assert _children(0) == []


def test_a_child_killed_under_load_is_started_again_and_the_batch_answered(server, artifacts):
    server.load(artifacts[0].spec("acme:production", 1))
    [child] = _children(1)
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    reply = server.predict("acme:production", TEXTS[:3], {"no_log": True})
    for probs, expected in zip(reply["probs"], _reference(artifacts[0], TEXTS[:3]), strict=True):
        assert probs == pytest.approx(expected, abs=1e-5)
    [again] = _children(1)
    assert again.pid != child.pid


def test_an_artifact_that_fails_to_load_fails_the_load_and_leaves_no_child(server, artifacts):
    spec = artifacts[0].spec("acme:production", 1)
    tampered = dataclasses.replace(spec, manifest_sha256="0" * 64)
    with pytest.raises(ForwardProcessError, match="could not load acme:production"):
        server.load(tampered)
    assert _children(0) == []
    assert server.models() == []


def test_two_compute_slots_get_a_child_each_and_both_answer(artifacts):
    server = ModelServer(policy=BatchPolicy(max_wait_ms=0), loader=process_loader(1, processes=2), threads=1, workers=2)
    try:
        server.load(artifacts[0].spec("acme:production", 1))
        assert len(_children(2)) == 2
        for text, expected in zip(TEXTS, _reference(artifacts[0], TEXTS), strict=True):
            assert server.predict("acme:production", [text], {"no_log": True})["probs"][0] == pytest.approx(
                expected, abs=1e-5
            )
    finally:
        server.close()
    assert _children(0) == []


def test_a_loader_needs_at_least_one_process():
    with pytest.raises(ValueError, match="processes must be >= 1"):
        process_loader(1, processes=0)


def test_an_int8_version_is_quantized_and_warmed_in_its_child_and_answers_as_in_process(server, artifacts):
    from modeling.serving.server import artifact_runner

    spec = dataclasses.replace(artifacts[0].spec("acme:production", 1), quantize_int8=True, device="cpu")
    server.load(spec)
    reply = server.predict("acme:production", TEXTS, {"no_log": True})
    _labels, in_process = artifact_runner(spec)
    for probs, result in zip(reply["probs"], in_process(TEXTS), strict=True):
        assert probs == pytest.approx(result.probs, abs=1e-5)

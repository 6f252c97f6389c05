"""A version's forward passes in a child process of their own, so they hold a GIL of their own.

On a GPU the forward thread hands the GIL back at every operator it launches (a few hundred a forward)
and must take it again each time; in the model server it shares that GIL with the connections, the
prediction log and the alias sync. ``benchmarks/gil_convoy.py`` shows what a thread running Python does
to such a forward (514 times slower at Python's 5 ms switch interval). ``process_loader`` returns a
``Loader`` like ``artifact_runner`` whose runner sends each batch's texts to a child process (one per
compute slot), started with ``spawn`` (CUDA does not survive a fork), that loads the artifact with
``artifact_runner`` and answers with its ``TextResult`` list. The batcher's thread waits on the pipe
without the GIL.

Lifecycle: the child ends when its runner is garbage (after a hot swap, once the batcher has let the
old runner go) and when the parent dies, even by SIGKILL (its pipe reads EOF). A child that dies under
a batch is started again and the batch retried once: scoring is a pure function of the texts. A
forward that raises in the child raises ``RuntimeError`` in the caller and leaves the child serving.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import weakref
from collections.abc import Callable
from typing import Any

from modeling.serving.server.specs import ModelSpec, Runner, TextResult

logger = logging.getLogger(__name__)

# Loading in the child: the interpreter, torch, transformers and the artifact's verification and warm-up.
START_TIMEOUT_SECONDS = 600.0
STOP_TIMEOUT_SECONDS = 10.0


class ForwardProcessError(RuntimeError):
    """The child could not load the artifact, or stopped answering."""


def _child_main(conn: Any, spec: ModelSpec, threads: int | None) -> None:
    """In the child: load ``spec``, then answer batches until the parent closes the pipe or dies."""
    try:
        from modeling.serving.server.core import WARMUP_TEXTS
        from modeling.serving.server.runner import _set_threads, artifact_runner

        _set_threads(threads)
        labels, run = artifact_runner(spec)
        run(list(WARMUP_TEXTS))  # every child, a restarted one too, is warm before its first batch
    except Exception as exc:  # reported to the parent, which raises it from load()
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", labels))
    while True:
        try:
            texts = conn.recv()
        except (EOFError, OSError):  # the parent closed the pipe or is gone: free the device
            return
        try:
            conn.send(("ok", run(texts)))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class _Child:
    """One child process and the parent's end of its pipe."""

    def __init__(self, spec: ModelSpec, threads: int | None) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child_end = context.Pipe()
        self.process = context.Process(
            target=_child_main, args=(child_end, spec, threads), name=f"forward-{spec.key}", daemon=True
        )
        self.process.start()
        child_end.close()
        if not self.conn.poll(START_TIMEOUT_SECONDS):
            self.stop()
            raise ForwardProcessError(
                f"the forward process for {spec.key} did not load in {START_TIMEOUT_SECONDS:.0f} s"
            )
        try:
            kind, payload = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.stop()
            raise ForwardProcessError(f"the forward process for {spec.key} exited while loading") from exc
        if kind != "ready":
            self.stop()
            raise ForwardProcessError(f"the forward process could not load {spec.key}: {payload}")
        self.labels: list[str] = list(payload)

    def call(self, texts: list[str]) -> list[TextResult]:
        """Score ``texts`` in the child; ``EOFError``/``OSError`` when it is gone."""
        self.conn.send(texts)
        kind, payload = self.conn.recv()
        if kind == "error":
            raise RuntimeError(f"the forward failed in its process: {payload}")
        return list(payload)

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def stop(self) -> None:
        """Close the pipe (the child then returns) and wait; terminate it if it does not."""
        self.conn.close()
        self.process.join(STOP_TIMEOUT_SECONDS)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(STOP_TIMEOUT_SECONDS)


def _stop_all(children: list[_Child]) -> None:
    while children:
        children.pop().stop()


def process_loader(threads: int | None = None, processes: int = 1) -> Callable[[ModelSpec], tuple[list[str], Runner]]:
    """A ``Loader`` whose runners score in ``processes`` child processes of ``threads`` torch threads each.

    One child per compute slot of the server (``workers``): a child answers one batch at a time, so
    fewer children than slots would serialize the slots (on a 2-core CPU with 2 slots, one child scored
    76 requests/s through the socket against 128 in the server's own process, 2026-11-23).
    """
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")

    def load(spec: ModelSpec) -> tuple[list[str], Runner]:
        children: list[_Child] = []
        try:
            for _ in range(processes):
                children.append(_Child(spec, threads))
        except Exception:
            _stop_all(children)
            raise
        idle: queue.SimpleQueue[_Child] = queue.SimpleQueue()
        for child in children:
            idle.put(child)

        def run(texts: list[str]) -> list[TextResult]:
            child = idle.get()  # a slot's batch takes a child of its own; each child is one pipe exchange
            try:
                return child.call(texts)
            except (EOFError, OSError):
                logger.warning("a forward process died; starting it again", extra={"key": spec.key})
                child.stop()
                fresh = _Child(spec, threads)
                children[children.index(child)] = fresh
                child = fresh
                return child.call(texts)
            finally:
                idle.put(child)

        weakref.finalize(run, _stop_all, children)
        return children[0].labels, run

    return load

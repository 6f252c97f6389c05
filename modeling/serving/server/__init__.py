"""The model server: the served versions loaded once per device, dynamic batching, hot swap, the log.

One process holds every served model (a project's ``production`` and ``canary`` versions, and a
shadow) behind a ``DynamicBatcher`` each, and answers web workers over a local socket. Web workers
never load a model: that would cost a model copy and a set of torch threads per worker, and CUDA
cannot survive a fork. Torch's intra-op threads are set once to the cores this process owns.

Hot swap: ``load`` of a key that is already served loads and warms the new version *beside* the
old one, then hands the batcher the new runner; a batch already running finishes on the old model
and no request is refused or fails during the switch.

Each answered text becomes a prediction-log row appended to a write-behind ``LogBuffer``; the
caller's metadata (project, caller key, route) comes with the request. For drift monitoring a row
also carries the text's unknown-token rate under the version's tokenizer and, once the version has a
drift reference, its pooled embedding projected with the reference's PCA: the projection is read
from a file beside the artifact directory (``modeling.serving.projection``: the server never imports
Django, and the artifact itself is immutable), and looked for again while the version has none.

Shadow: a request may name a ``shadow`` key. Once the answer is computed, the same texts are queued
on the shadow model's batcher and the reply goes out without waiting; the shadow's outputs become
log rows (with the shadow's own metadata) and are never returned. A full shadow queue or a missing
shadow model skips the copy (counted in ``stats``): the shadow never slows or fails the answer.

Compute slots: each model is served by ``workers`` batchers (a ``_BatcherPool``), and at most
``workers`` forward passes run at once across every model on the device (production, canary, shadow,
and the warm-up of a version being swapped in), each with ``threads`` torch threads. On a GPU that is
one slot. On a CPU the default is one slot per core with one thread each: independent batches side by
side instead of one batch split over cores, because an intra-op thread team synchronises at every
operator, and on a busy machine a descheduled team member stalls the others (measured on the 2-core
box: batch 1 took 19 ms with 1 thread, 536 ms with 2 threads while other processes held the cores).

Shutdown (``close``): new requests are refused (``Overloaded``, so callers retry elsewhere or later),
queued requests run, the requests already answered append their log rows, then the log is flushed.

The package, by what each part does: ``specs`` (what is served and what an answer carries),
``runner`` (loading an artifact into a runner; torch threads), ``pool`` (the batchers of one model),
``log_rows`` (an answer's prediction-log rows), ``sockets`` (the threaded socket servers and message
helpers) and ``core`` (the ``ModelServer``). Everything public is re-exported here: import it from
``modeling.serving.server``.
"""

from __future__ import annotations

from modeling.serving.server.core import WARMUP_TEXTS, ModelServer
from modeling.serving.server.runner import CPU_FORWARD_BATCH, GPU_FORWARD_BATCH, artifact_runner
from modeling.serving.server.sockets import BACKLOG
from modeling.serving.server.specs import Loader, ModelNotLoaded, ModelSpec, Runner, ShadowStats, TextResult

__all__ = [
    "BACKLOG",
    "CPU_FORWARD_BATCH",
    "GPU_FORWARD_BATCH",
    "WARMUP_TEXTS",
    "Loader",
    "ModelNotLoaded",
    "ModelServer",
    "ModelSpec",
    "Runner",
    "ShadowStats",
    "TextResult",
    "artifact_runner",
]

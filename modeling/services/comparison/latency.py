"""Timing the versions side by side: each version's median wall time on one batch, the versions taking
turns run by run (and an int8 copy timed in the same turns).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Sequence
from typing import Any

from modeling.services.comparison.scoring import Loaded, _device

LATENCY_BATCH = 32
LATENCY_RUNS = 5


def measure_latencies(loaded: Sequence[Loaded], texts: Sequence[str]) -> list[dict[str, Any]]:
    """Return each version's median wall time over ``LATENCY_RUNS`` calls on one batch of ``LATENCY_BATCH`` texts.

    The versions take turns run by run, so a burst of load on a shared machine slows both alike instead
    of whichever happened to be timed then. Texts repeat when the eval split is smaller than a batch.
    Each version gets one untimed call first: the first forward pass pays for allocation (and on a GPU
    for kernel selection), which serving pays once. A version with an ``int8_config`` is timed a
    second time as its int8 copy, in the same turns; that timing is stored in its int8 block.
    """
    batch = [texts[i % len(texts)] for i in range(LATENCY_BATCH)]
    runs = [(one, one.config) for one in loaded] + [(one, one.int8_config) for one in loaded if one.int8_config]
    configs = [dataclasses.replace(config, batch_size=LATENCY_BATCH) for _, config in runs]
    devices = []
    for (one, _), config in zip(runs, configs, strict=True):
        one.classifier.predict(batch, config)
        devices.append("cpu" if config.quantize_int8 else _device(one.classifier))
    timings: list[list[float]] = [[] for _ in runs]
    for _ in range(LATENCY_RUNS):
        for (one, _), config, times in zip(runs, configs, timings, strict=True):
            started = time.perf_counter()
            one.classifier.predict(batch, config)
            times.append((time.perf_counter() - started) * 1000)
    latencies = [_latency(times, device) for times, device in zip(timings, devices, strict=True)]
    quantized = [one.scored.int8 for one in loaded if one.int8_config]
    for block, latency in zip(quantized, latencies[len(loaded) :], strict=True):
        if block is not None:
            block["latency"] = latency
    return latencies[: len(loaded)]


def _latency(timings: list[float], device: str) -> dict[str, Any]:
    median = statistics.median(timings)
    return {
        "batch_size": LATENCY_BATCH,
        "runs": len(timings),
        "median_ms": round(median, 3),
        "min_ms": round(min(timings), 3),
        "max_ms": round(max(timings), 3),
        "per_text_ms": round(median / LATENCY_BATCH, 4),
        "device": device,
    }

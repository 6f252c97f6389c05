"""The fixed histogram edges of the rollups (pure; shared by the rollup job, the SLOs and the charts)."""

from __future__ import annotations

from bisect import bisect_left

# Upper edges (inclusive) of the latency buckets in milliseconds; one more bucket holds what is slower.
LATENCY_EDGES_MS: tuple[int, ...] = (10, 25, 50, 100, 200, 300, 500, 1000, 2000, 5000)
# Ten equal-width bins of the calibrated max probability: [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0].
CONFIDENCE_BINS = 10


def latency_bucket(latency_ms: float) -> int:
    """Return the index of the bucket holding ``latency_ms`` (len(LATENCY_EDGES_MS) for slower)."""
    return bisect_left(LATENCY_EDGES_MS, latency_ms)


def confidence_bin(confidence: float) -> int:
    """Return the bin of a probability; 1.0 falls in the last bin."""
    return min(max(int(confidence * CONFIDENCE_BINS), 0), CONFIDENCE_BINS - 1)


def share_at_most(hist: list[int], threshold_ms: int) -> tuple[int, int]:
    """Return (requests at or under ``threshold_ms``, all requests); the threshold must be a bucket edge."""
    if threshold_ms not in LATENCY_EDGES_MS:
        raise ValueError(f"{threshold_ms} ms is not a latency bucket edge; use one of {LATENCY_EDGES_MS}.")
    upto = LATENCY_EDGES_MS.index(threshold_ms) + 1
    return sum(hist[:upto]), sum(hist)

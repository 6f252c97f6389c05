"""Quantiles from the rollups' fixed-bucket histograms (pure; no Django).

The rollups keep counts per latency bucket, not the latencies, so a percentile can only be located
inside a bucket. ``histogram_quantile`` interpolates linearly between the bucket's edges, assuming the
requests in a bucket are spread evenly across it (what Prometheus' ``histogram_quantile`` does). The
error is at most the bucket's width: a p95 reported as 240 ms means "between 200 and 300 ms". The first
bucket starts at 0; the open last bucket (slower than the last edge) cannot be interpolated, so a
quantile that falls in it is reported as the last edge with ``capped`` set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Quantile:
    q: float
    value: float | None  # None: an empty histogram
    capped: bool = False  # in the open last bucket: the true value is above ``value``


def histogram_quantile(q: float, counts: Sequence[int], edges: Sequence[float]) -> Quantile:
    """Return the q-quantile (0 < q < 1) of a histogram with upper ``edges`` and one open last bucket."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be inside (0, 1), got {q}")
    if len(counts) != len(edges) + 1:
        raise ValueError(f"{len(edges)} edges need {len(edges) + 1} counts, got {len(counts)}")
    total = sum(counts)
    if total <= 0:
        return Quantile(q, None)
    rank = q * total
    seen = 0.0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index == len(edges):
                return Quantile(q, float(edges[-1]), capped=True)
            lower = float(edges[index - 1]) if index else 0.0
            return Quantile(q, lower + (float(edges[index]) - lower) * (rank - seen) / count)
        seen += count
    return Quantile(q, float(edges[-1]), capped=True)  # unreachable: the counts sum to total


def add_into(total: list[int], counts: Sequence[int]) -> list[int]:
    """Add ``counts`` into ``total`` element-wise (growing it if needed) and return it."""
    if len(total) < len(counts):
        total.extend([0] * (len(counts) - len(total)))
    for index, count in enumerate(counts):
        total[index] += int(count)
    return total

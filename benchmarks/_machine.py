"""How fast this machine is right now, in one line, so figures from different days can be put side by side.

The shared 2-core machines differ from day to day (a pure-Python loop took 1.36 s on a day when the
prediction baseline ran at half its usual rate). Benchmarks print this line before measuring; ratios
inside one run stay comparable regardless, absolute figures only between runs with similar lines.
"""

from __future__ import annotations

import os
import time

LOOP = 10_000_000


def speed_line() -> str:
    """Time a 10M-step pure-Python loop (interpreter speed, best of 3) and report it with the load."""
    best = float("inf")
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for i in range(LOOP):
            total += i
        best = min(best, time.perf_counter() - started)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    cores = os.cpu_count()
    return f"machine speed: a 10M-step Python loop took {best:.2f} s (best of 3); load average {load} on {cores} cores"

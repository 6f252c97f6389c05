"""Error-budget burn rates and the multiwindow, multi-burn-rate alert policies (pure; no Django).

An SLO with objective ``o`` (say 0.999) allows an error rate of ``1 - o`` on average over its period.
The *burn rate* of a window is its error rate divided by that allowance: burn 1 spends the budget
exactly over the period, burn 14.4 spends it 14.4 times as fast.

The policies are those of the Google SRE workbook ("Alerting on SLOs", table 5-8), written for a
30-day period: page when the burn exceeds 14.4 over 1 h *and* 5 min (2% of the budget gone in an hour),
or 6 over 6 h and 30 min (5% in six hours); ticket when it exceeds 3 over 1 day and 2 h (10% in a day),
or 1 over 3 days and 6 h (10% in three days). The long window makes an alert significant, the short one
(1/12 of it) makes it reset soon after the problem stops.

Scaling to other periods. A policy's factor means a *share of the period's budget spent in the long
window*: share = factor * window / period (14.4 * 1 h / 30 d = 2%). For a period P we keep the share
and the windows, so factor_P = factor_30d * P / 30 d: a 7-day SLO pages at 14.4 * 7/30 = 3.36 over 1 h,
since 2% of a 7-day budget is a smaller number of errors. A scaled factor never goes below 1: a burn
under 1 leaves budget at the end of the period, which is nobody's emergency (it would otherwise fire on
a healthy service whose long window is a large part of a short period).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

REFERENCE_PERIOD = timedelta(days=30)
PAGE = "page"
TICKET = "ticket"


class ObjectiveError(ValueError):
    """An objective (with its period) that the alert policies cannot work with; the message says why."""


@dataclass(frozen=True)
class BurnPolicy:
    """Alert with ``severity`` when the burn exceeds ``factor`` over both windows."""

    severity: str
    long_window: timedelta
    short_window: timedelta
    factor: float

    @property
    def name(self) -> str:
        return f"{window_label(self.long_window)}/{window_label(self.short_window)}"

    def describe(self) -> str:
        long, short = window_label(self.long_window), window_label(self.short_window)
        return f"{self.severity} when burn > {self.factor:g} over {long} and {short}"

    def budget_share(self, period: timedelta) -> float:
        """Return the share of the period's budget a burn of ``factor`` spends in the long window."""
        return self.factor * (self.long_window / period)


SRE_WORKBOOK_POLICIES: tuple[BurnPolicy, ...] = (
    BurnPolicy(PAGE, timedelta(hours=1), timedelta(minutes=5), 14.4),
    BurnPolicy(PAGE, timedelta(hours=6), timedelta(minutes=30), 6.0),
    BurnPolicy(TICKET, timedelta(days=1), timedelta(hours=2), 3.0),
    BurnPolicy(TICKET, timedelta(days=3), timedelta(hours=6), 1.0),
)


def window_label(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)} d"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def scaled_policies(
    period: timedelta, policies: Sequence[BurnPolicy] = SRE_WORKBOOK_POLICIES
) -> tuple[BurnPolicy, ...]:
    """Return the 30-day policies scaled to ``period`` (same budget share per window, factor ≥ 1)."""
    if period <= timedelta(0):
        raise ObjectiveError("An SLO period must be positive.")
    return tuple(replace(p, factor=round(max(1.0, p.factor * (period / REFERENCE_PERIOD)), 6)) for p in policies)


def burn_rate(bad: int, events: int, objective: float) -> float | None:
    """Return the window's error rate over the allowed one; None for a window with no events."""
    if not 0.0 < objective < 1.0:
        raise ObjectiveError(f"An objective lies strictly between 0 and 1; got {objective}.")
    if events <= 0:
        return None
    return (bad / events) / (1.0 - objective)


def check_objective(objective: float, policies: Iterable[BurnPolicy], *, slo: str = "SLO") -> None:
    """Refuse an objective under which some policy can never fire.

    The highest possible burn is 1 / (1 - o) (every event bad), so a policy with factor * (1 - o) ≥ 1
    needs an error rate of 100% or more: it could never alert. The message names the policy and the
    lowest objective that would work.
    """
    if not 0.0 < objective < 1.0:
        raise ObjectiveError(f"The {slo} objective must lie strictly between 0 and 1 (e.g. 0.995); got {objective}.")
    for policy in policies:
        needed = policy.factor * (1.0 - objective)
        if needed >= 1.0:
            lowest = 1.0 - 1.0 / policy.factor
            raise ObjectiveError(
                f"The {slo} objective {objective:.4%} is too loose for the policy "
                f"'{policy.describe()}': it would need an error rate of {needed:.0%}, so it could never fire. "
                f"Use an objective above {lowest:.4%}, or a longer period."
            )


@dataclass(frozen=True)
class WindowCounts:
    """Events and bad events in one trailing window."""

    events: int
    bad: int


@dataclass(frozen=True)
class PolicyResult:
    """One policy's verdict: the burn over its two windows and whether it fires."""

    policy: BurnPolicy
    long_burn: float | None
    short_burn: float | None
    long_events: int
    long_bad: int
    short_events: int
    fires: bool
    too_few_events: bool


def evaluate_policies(
    counts: Mapping[timedelta, WindowCounts],
    *,
    objective: float,
    policies: Sequence[BurnPolicy],
    min_events: int,
) -> list[PolicyResult]:
    """Return each policy's verdict from the counts of its windows (every window must be in ``counts``).

    Low-traffic guard: a policy does not fire while its long window holds fewer than ``min_events``
    events, however bad they are (three failures out of five requests are not an outage).
    """
    results = []
    for policy in policies:
        long, short = counts[policy.long_window], counts[policy.short_window]
        long_burn = burn_rate(long.bad, long.events, objective)
        short_burn = burn_rate(short.bad, short.events, objective)
        too_few = long.events < min_events
        fires = (
            not too_few
            and long_burn is not None
            and short_burn is not None
            and long_burn > policy.factor
            and short_burn > policy.factor
        )
        results.append(PolicyResult(policy, long_burn, short_burn, long.events, long.bad, short.events, fires, too_few))
    return results


def windows_of(policies: Iterable[BurnPolicy]) -> list[timedelta]:
    """Return every window the policies read, shortest first."""
    return sorted({w for p in policies for w in (p.long_window, p.short_window)})


@dataclass(frozen=True)
class Budget:
    """The error budget over the period: allowed bad events, spent ones, and the share remaining."""

    events: int
    bad: int
    allowed: float
    remaining: float | None  # 1.0 untouched, 0.0 exhausted, negative overspent; None without events

    @property
    def remaining_percent(self) -> float | None:
        return None if self.remaining is None else 100.0 * self.remaining


def error_budget(bad: int, events: int, objective: float) -> Budget:
    """Return the budget of a period with ``events`` events of which ``bad`` failed."""
    if not 0.0 < objective < 1.0:
        raise ObjectiveError(f"An objective lies strictly between 0 and 1; got {objective}.")
    allowed = (1.0 - objective) * events
    remaining = None if events <= 0 else 1.0 - bad / allowed
    return Budget(events=events, bad=bad, allowed=allowed, remaining=remaining)


def rolling_burn(events: Sequence[int], bad: Sequence[int], *, window: int, objective: float) -> list[float | None]:
    """Return the burn over the trailing ``window`` buckets ending at each bucket (prefix sums).

    Bucket i's value covers buckets i - window + 1 .. i; a window with no events is None.
    """
    if len(events) != len(bad):
        raise ValueError("events and bad must have the same length.")
    if window < 1:
        raise ValueError("A window holds at least one bucket.")
    pe, pb = [0], [0]
    for e, b in zip(events, bad, strict=True):
        pe.append(pe[-1] + e)
        pb.append(pb[-1] + b)
    out: list[float | None] = []
    for i in range(len(events)):
        lo = max(0, i + 1 - window)
        out.append(burn_rate(pb[i + 1] - pb[lo], pe[i + 1] - pe[lo], objective))
    return out

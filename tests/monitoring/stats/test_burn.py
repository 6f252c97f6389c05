"""Burn rates, the multiwindow policies, their scaling, the guards and the error budget (hand-computed)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitoring.stats.burn import (
    SRE_WORKBOOK_POLICIES,
    ObjectiveError,
    WindowCounts,
    burn_rate,
    check_objective,
    error_budget,
    evaluate_policies,
    rolling_burn,
    scaled_policies,
    windows_of,
)

H = timedelta(hours=1)
M = timedelta(minutes=1)
D = timedelta(days=1)


def test_burn_rate_is_the_error_rate_over_the_allowed_rate():
    assert burn_rate(10, 1000, 0.999) == pytest.approx(10.0)  # 1% errors, 0.1% allowed
    assert burn_rate(1000, 1000, 0.999) == pytest.approx(1000.0)  # full outage
    assert burn_rate(0, 500, 0.995) == 0.0
    assert burn_rate(0, 0, 0.995) is None  # no traffic: no burn, not zero burn
    with pytest.raises(ObjectiveError):
        burn_rate(1, 10, 1.0)


def test_workbook_policies_and_their_windows():
    assert [(p.severity, p.name, p.factor) for p in SRE_WORKBOOK_POLICIES] == [
        ("page", "1 h/5 min", 14.4),
        ("page", "6 h/30 min", 6.0),
        ("ticket", "1 d/2 h", 3.0),
        ("ticket", "3 d/6 h", 1.0),
    ]
    assert windows_of(SRE_WORKBOOK_POLICIES) == [5 * M, 30 * M, H, 2 * H, 6 * H, D, 3 * D]
    # The budget shares the factors stand for, over 30 days: 2%, 5%, 10%, 10%.
    shares = [p.budget_share(30 * D) for p in SRE_WORKBOOK_POLICIES]
    assert shares == pytest.approx([0.02, 0.05, 0.10, 0.10])


def test_scaling_to_a_seven_day_period_keeps_each_windows_budget_share():
    policies = scaled_policies(7 * D)
    # 14.4 * 7/30 = 3.36 and 6 * 7/30 = 1.4; 3 * 7/30 = 0.7 and 1 * 7/30 ≈ 0.233 are raised to 1.
    assert [p.factor for p in policies] == pytest.approx([3.36, 1.4, 1.0, 1.0])
    assert policies[0].budget_share(7 * D) == pytest.approx(0.02)
    assert policies[1].budget_share(7 * D) == pytest.approx(0.05)
    assert [p.long_window for p in policies] == [p.long_window for p in SRE_WORKBOOK_POLICIES]
    # A 30-day period changes nothing; 90 days triples the factors.
    assert [p.factor for p in scaled_policies(30 * D)] == [14.4, 6.0, 3.0, 1.0]
    assert [p.factor for p in scaled_policies(90 * D)] == pytest.approx([43.2, 18.0, 9.0, 3.0])


def test_an_objective_whose_page_can_never_fire_is_refused_naming_the_policy():
    # 14.4 * (1 - 0.93) = 1.008 ≥ 1: the 1 h page would need a 100.8% error rate.
    with pytest.raises(ObjectiveError, match=r"page when burn > 14.4 over 1 h and 5 min.*could never fire"):
        check_objective(0.93, SRE_WORKBOOK_POLICIES, slo="availability")
    check_objective(0.94, SRE_WORKBOOK_POLICIES)  # 14.4 * 0.06 = 0.864 < 1: accepted
    # Over 90 days the factor is 43.2, so 0.97 (43.2 * 0.03 = 1.296) can never page.
    with pytest.raises(ObjectiveError, match=r"above 97\.6852%"):
        check_objective(0.97, scaled_policies(90 * D), slo="latency")
    with pytest.raises(ObjectiveError, match="strictly between 0 and 1"):
        check_objective(1.0, SRE_WORKBOOK_POLICIES)


def _counts(rate_by_window: dict[timedelta, tuple[int, int]]) -> dict[timedelta, WindowCounts]:
    return {w: WindowCounts(events=e, bad=b) for w, (e, b) in rate_by_window.items()}


def test_page_needs_both_windows_over_the_factor():
    # 99.9%: the 14.4 page fires above 1.44% errors in both the hour and the last 5 minutes.
    base = {w: (100_000, 0) for w in windows_of(SRE_WORKBOOK_POLICIES)}
    hot = _counts({**base, H: (6000, 100), 5 * M: (500, 10)})  # 1.67% and 2%: burn 16.7 and 20
    first = evaluate_policies(hot, objective=0.999, policies=SRE_WORKBOOK_POLICIES, min_events=100)[0]
    assert (
        first.fires and first.long_burn == pytest.approx(16.6667, rel=1e-4) and first.short_burn == pytest.approx(20.0)
    )
    # The outage stopped: the 5-minute window is clean, so the page resets although the hour is still bad.
    cooled = _counts({**base, H: (6000, 100), 5 * M: (500, 0)})
    assert not evaluate_policies(cooled, objective=0.999, policies=SRE_WORKBOOK_POLICIES, min_events=100)[0].fires
    # Exactly at the factor does not fire (strictly greater).
    edge = _counts({**base, H: (10_000, 144), 5 * M: (1000, 50)})
    assert not evaluate_policies(edge, objective=0.999, policies=SRE_WORKBOOK_POLICIES, min_events=100)[0].fires


def test_low_traffic_guard_keeps_a_handful_of_failures_quiet():
    few = _counts({w: (40, 40) for w in windows_of(SRE_WORKBOOK_POLICIES)})  # 100% errors, 40 requests
    results = evaluate_policies(few, objective=0.999, policies=SRE_WORKBOOK_POLICIES, min_events=100)
    assert not any(r.fires for r in results)
    assert all(r.too_few_events for r in results)
    results = evaluate_policies(few, objective=0.999, policies=SRE_WORKBOOK_POLICIES, min_events=40)
    assert all(r.fires for r in results)


def test_empty_short_window_does_not_fire():
    counts = _counts({**{w: (1000, 1000) for w in windows_of(SRE_WORKBOOK_POLICIES)}, 5 * M: (0, 0)})
    first = evaluate_policies(counts, objective=0.999, policies=SRE_WORKBOOK_POLICIES, min_events=100)[0]
    assert first.short_burn is None and not first.fires


def test_error_budget_remaining():
    budget = error_budget(bad=25, events=10_000, objective=0.995)  # 50 allowed, 25 spent
    assert budget.allowed == pytest.approx(50.0) and budget.remaining == pytest.approx(0.5)
    assert error_budget(bad=100, events=10_000, objective=0.995).remaining == pytest.approx(-1.0)  # overspent
    assert error_budget(bad=0, events=0, objective=0.995).remaining is None


def test_rolling_burn_over_trailing_buckets():
    events = [100, 100, 100, 0, 100]
    bad = [0, 10, 0, 0, 20]
    # objective 0.9: allowed 10%.
    got = rolling_burn(events, bad, window=2, objective=0.9)
    assert got == pytest.approx([0.0, 0.5, 0.5, 0.0, 2.0])
    assert rolling_burn([0], [0], window=3, objective=0.9) == [None]
    with pytest.raises(ValueError):
        rolling_burn([1, 2], [0], window=1, objective=0.9)

"""Alert timing: when do the burn-rate alerts fire and resolve on a replayed incident?

    .venv/bin/python benchmarks/alert_timing.py [--rate 120] [--objective 0.999] [--pg postgres://postgres@127.0.0.1:5432]

Two scenarios against an availability SLO (default 99.9% over 30 days), each in a fresh database (SQLite
in a temporary folder, or with ``--pg`` a PostgreSQL database of its own, dropped at the end):

1. a full outage: every request fails (503) for ``--outage-minutes`` (default 30);
2. a degradation: ``--degraded-share`` (default 2%) of requests fail for ``--degraded-minutes`` (360).

Traffic is ``--rate`` requests a minute (one text each), evenly spaced. Three days of healthy history
come first, written as minute rollups (what the rollup job would have left); then the replay runs
tick by tick (``--tick-seconds``, default 20: the beat's fold interval) through the real code:
prediction-log and prediction-error rows are written for the tick that just passed, the rollup job's
``rollup_minutes`` folds them (watermark, re-fold window, the open minute so far) 0.5 s later (the log's
flush interval), and ``slo_evaluate`` (which the fold task enqueues) fires or resolves alerts through
``alerts_sync``. The incident starts ``--offset-seconds`` (default 17) into a minute, as a real one
would. The replay goes on after the incident until every alert has resolved (or ``--recovery-minutes``
have passed).

Printed per alert: when it fired, counted from the incident's start, and when it resolved, counted from
the incident's end (simulated time), with the last evidence it carried while firing; then the wall time
of each simulated tick's fold and evaluation.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SLUG = "bench-alerts"
MINUTE = timedelta(minutes=1)
HISTORY = timedelta(days=3)


@dataclass(frozen=True)
class Scenario:
    name: str
    failing_share: float
    minutes: int


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=120, help="requests per minute (default 120)")
    parser.add_argument("--objective", type=float, default=0.999, help="availability objective (default 0.999)")
    parser.add_argument("--outage-minutes", type=int, default=30)
    parser.add_argument("--degraded-minutes", type=int, default=360)
    parser.add_argument("--degraded-share", type=float, default=0.02)
    parser.add_argument("--recovery-minutes", type=int, default=480, help="the longest replay after an incident")
    parser.add_argument("--offset-seconds", type=int, default=17, help="the incident's start within its minute")
    parser.add_argument("--tick-seconds", type=int, default=20, help="fold + evaluation interval (default 20)")
    parser.add_argument(
        "--sweep-offsets",
        default="0,15,30,45",
        help="also start the outage at these seconds into a minute and report when the page fires (comma-separated)",
    )
    parser.add_argument("--pg", default="", help="PostgreSQL server URL (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    scenarios = [
        Scenario("full outage (100% of requests fail)", 1.0, args.outage_minutes),
        Scenario(
            f"degradation ({args.degraded_share:.0%} of requests fail)", args.degraded_share, args.degraded_minutes
        ),
    ]
    database = _database(args.pg)
    try:
        _setup_django(database)
        for scenario in scenarios:
            _run(scenario, args, offset=args.offset_seconds)
        sweep = [int(x) for x in args.sweep_offsets.split(",") if x.strip()]
        if sweep:
            print("\n== full outage: when the page fires, by where in the minute the outage starts ==")
            for offset in sweep:
                fired = _run(scenarios[0], args, offset=offset, until_page=True)
                print(f"outage starts {offset:>2} s into a minute: page fires {_minutes(fired) if fired else 'never'}")
    finally:
        from django.db import connections

        connections.close_all()
        if args.pg:
            _admin(args.pg, f"DROP DATABASE IF EXISTS {database.rsplit('/', 1)[1]}")
    print(f"\nload average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def _database(pg: str) -> str:
    if not pg:
        return f"sqlite:///{tempfile.mkdtemp(prefix='loopline-alert-timing-')}/db.sqlite3"
    name = f"loopline_bench_alerts_{os.getpid()}"
    _admin(pg, f"CREATE DATABASE {name}")
    return f"{pg}/{name}"


def _admin(base_url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{base_url}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def _setup_django(database_url: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "webapp.settings",
            "SECRET_KEY": "alert-timing-benchmark",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": "memory://",
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.setdefault("LOOPLINE_VAR_DIR", tempfile.mkdtemp(prefix="loopline-alert-timing-var-"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --- one scenario ------------------------------------------------------------------------------------


def _run(scenario: Scenario, args: argparse.Namespace, *, offset: int, until_page: bool = False) -> timedelta | None:
    """Replay the scenario; return how long after the incident's start the first page fired."""
    from monitoring.models import Alert, RollupWatermark, ServiceObjective
    from monitoring.services.rollups import rollup_minutes
    from monitoring.services.slo import slo_evaluate

    project = _fresh_project()
    ServiceObjective.objects.create(project=project, availability_target=args.objective)
    # The replay's clock: a fixed past day, so that every run is the same.
    replay_start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    _history(project, replay_start - HISTORY, replay_start, args.rate)
    RollupWatermark.objects.update_or_create(name="minute", defaults={"done_until": replay_start})

    warmup = 30
    incident_start = replay_start + warmup * MINUTE + timedelta(seconds=offset)
    incident_end = incident_start + scenario.minutes * MINUTE
    last_minute = warmup + scenario.minutes + args.recovery_minutes + 1
    timings: list[float] = []
    tick = timedelta(seconds=args.tick_seconds)
    for step in range(int(last_minute * MINUTE / tick)):
        tick_start = replay_start + step * tick
        _log_span(project, tick_start, tick, args.rate, scenario.failing_share, incident_start, incident_end)
        now = tick_start + tick + timedelta(seconds=0.5)
        started = time.perf_counter()
        rollup_minutes(now=now)
        slo_evaluate(project=project, now=now)
        timings.append(time.perf_counter() - started)
        page = Alert.objects.filter(project=project, severity="page").order_by("started_at").first()
        if until_page and page is not None:
            return page.started_at - incident_start
        if now > incident_end + 10 * MINUTE and not Alert.objects.filter(project=project, state="firing").exists():
            break
    if until_page:
        return None
    _report(scenario, args, project, incident_start, incident_end, timings)
    page = Alert.objects.filter(project=project, severity="page").order_by("started_at").first()
    return page.started_at - incident_start if page else None


def _fresh_project() -> Any:
    from labeling.models import Label, Project

    Project.objects.filter(slug=SLUG).delete()
    project = Project.objects.create(name="Alert timing", slug=SLUG, languages=["en"])
    for order, name in enumerate(("negative", "positive")):
        Label.objects.create(project=project, name=name, order=order, hotkey=str(order + 1))
    return project


def _history(project: Any, start: datetime, end: datetime, rate: int) -> None:
    """Healthy minutes as the rollup job writes them: `rate` predictions a minute, 40-ms latencies."""
    from monitoring.buckets import CONFIDENCE_BINS, LATENCY_EDGES_MS, latency_bucket
    from monitoring.models import MinuteRollup

    hist = [0] * (len(LATENCY_EDGES_MS) + 1)
    hist[latency_bucket(40.0)] = rate
    confidence = [0] * CONFIDENCE_BINS
    confidence[-1] = rate
    rows, t = [], start
    while t < end:
        rows.append(
            MinuteRollup(
                project=project,
                bucket_start=t,
                version_number=1,
                route="production",
                language="en",
                predictions=rate,
                latency_hist=hist,
                latency_sum_ms=40.0 * rate,
                label_counts={"positive": rate},
                confidence_hist=confidence,
                confidence_sum=0.95 * rate,
                chars_sum=80 * rate,
            )
        )
        t += MINUTE
    MinuteRollup.objects.bulk_create(rows, batch_size=2_000)


def _log_span(
    project: Any,
    start: datetime,
    span: timedelta,
    rate: int,
    failing_share: float,
    incident_start: datetime,
    incident_end: datetime,
) -> None:
    """Write ``span`` of requests at ``rate`` a minute: served ones to the log, failed ones as PredictionError.

    Inside the incident every request whose running count crosses a multiple of 1/share fails, so a 2%
    share fails exactly 1 request in 50 (no sampling noise in the timings).
    """
    from modeling.models import PredictionError, PredictionLog

    served, failed = [], []
    for i in range(round(rate * (span / MINUTE))):
        at = start + MINUTE * (i / rate)
        index = int((at - incident_start) / (MINUTE / rate))
        failing = incident_start <= at < incident_end and int((index + 1) * failing_share) > int(index * failing_share)
        if failing:
            failed.append(
                PredictionError(
                    project=project,
                    created_at=at,
                    kind="server_error",
                    status_code=503,
                    version_number=1,
                    route="production",
                    texts=1,
                    latency_ms=2.0,
                    language="en",
                )
            )
            continue
        served.append(
            PredictionLog(
                id=uuid.uuid4(),
                project=project,
                version_number=1,
                route="production",
                created_at=at,
                latency_ms=40.0,
                label="positive",
                confidence=0.95,
                probs={"negative": 0.05, "positive": 0.95},
                input_chars=80,
                language="en",
                text_sha256=hashlib.sha256(f"{at.isoformat()}-{i}".encode()).hexdigest(),
            )
        )
    PredictionLog.objects.bulk_create(served, batch_size=1_000)
    PredictionError.objects.bulk_create(failed, batch_size=1_000)


def _minutes(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    return f"{sign}{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"


def _report(
    scenario: Scenario,
    args: argparse.Namespace,
    project: Any,
    incident_start: datetime,
    incident_end: datetime,
    timings: list[float],
) -> None:
    from monitoring.models import Alert

    print(
        f"\n== {scenario.name} for {scenario.minutes} min, {args.rate} requests/min, "
        f"availability objective {args.objective:.3%} over 30 days =="
    )
    print(f"incident {incident_start:%H:%M:%S} to {incident_end:%H:%M:%S} (simulated clock)")
    print(
        f"{'alert':<32} {'fired (from start)':>19} {'resolved (from end)':>20}  last evidence: long-window burn, policy"
    )
    alerts = Alert.objects.filter(project=project).order_by("started_at", "key")
    for alert in alerts:
        resolved = _minutes(alert.resolved_at - incident_end) if alert.resolved_at else "still firing"
        burn = f"{alert.evidence.get('burn_long', 0):.1f} over {alert.evidence.get('policy', '?')}"
        print(f"{alert.key:<32} {_minutes(alert.started_at - incident_start):>19} {resolved:>20}  {burn}")
    if not alerts:
        print("(no alert fired)")
    timings_ms = sorted(t * 1000 for t in timings)
    print(
        f"per simulated tick (rollup fold + evaluation), {len(timings)} ticks: "
        f"median {statistics.median(timings_ms):.0f} ms, p95 {timings_ms[int(0.95 * (len(timings_ms) - 1))]:.0f} ms"
    )


if __name__ == "__main__":
    main()

"""Monitoring pages over a large prediction log: the rollup job's cost and each page's server time.

    .venv/bin/python benchmarks/monitoring_pages.py [--rows 10000000] [--requests 20] [--pg postgres://postgres@127.0.0.1:5432]

1. Creates a PostgreSQL database of its own (``loopline_bench_monitoring_<pid>``, dropped at the end) and
   migrates it. One project (3 labels, 3 languages) and an owner.
2. Seeds ``--rows`` logged predictions spread evenly over the last 30 days with one server-side
   ``INSERT ... SELECT ... FROM generate_series`` per million rows (nothing travels from the client):
   production (version 1, 90%) and canary (version 2, 10%) routes, exponential latencies around 40 ms
   with a slow tail, confidences in [0.34, 1], 1% marked for the audit sample (with a text); 0.5% as
   many failed requests (``PredictionError``: 429, 503, model errors); feedback for 0.2% of predictions.
3. Runs the real jobs: the minute fold over the whole 30 days (the catch-up a fresh deployment does),
   the hour fold, retention (minute rows past 14 days), then five steady-state minute runs (each re-folds
   the last few minutes); the audit sample (its first run takes the last day, capped at 200), gold labels
   for those items written as reviewers would, and the outcome fold.
4. Times every monitoring page whose URL resolves with only the project's slug (``monitoring:*``, so
   the other features' pages are measured too) and every monitoring API summary (``api-monitoring-*``)
   with Django's test client, in-process (server time: middleware, queries, rendering), ``--requests``
   times each for the 24h and 30d ranges, cold (the cache emptied before each request: the first view
   after a fold) and warm: p50 / p95 against the goal p95 <= 300 ms, and the web process's CPU time.
5. Baseline, same run: the Service summary's figures (counts per route, failures by kind, latency
   p50/p95/p99) computed from the raw log with SQL (``percentile_cont``) for the same windows, and the
   ratio of its time to the rollup-backed API's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SLUG = "bench-monitoring"
CHUNK_ROWS = 1_000_000
RANGES = ("24h", "30d")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="logged predictions to seed (default 10M)")
    parser.add_argument("--requests", type=int, default=20, help="requests per page and range (default 20)")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL")
    parser.add_argument("--keep", action="store_true", help="keep the seeded database (its name is printed)")
    parser.add_argument("--reuse", metavar="DATABASE", help="time the pages on a database an earlier --keep run left")
    parser.add_argument("--only", default="", help="time only the pages and APIs whose name contains this")
    args = parser.parse_args()
    name = args.reuse or f"loopline_bench_monitoring_{os.getpid()}"
    if not args.reuse:
        _admin(args.pg, f"CREATE DATABASE {name}")
    try:
        _setup_django(f"{args.pg}/{name}")
        _run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep or args.reuse:
            print(f"kept the database {name}: time again with --reuse {name}")
        else:
            _admin(args.pg, f"DROP DATABASE IF EXISTS {name}")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def _admin(base_url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{base_url}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def _setup_django(database_url: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "webapp.settings",
            "SECRET_KEY": "monitoring-pages-benchmark",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": "memory://",
            "ALLOWED_HOSTS": "testserver,localhost",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "LOG_LEVEL": "WARNING",
            "LOOPLINE_PREDICTION_LOG_RETENTION_DAYS": "31",  # keep the whole seeded month for the baseline
        }
    )
    os.environ.setdefault("LOOPLINE_VAR_DIR", f"/tmp/loopline-bench-monitoring-{os.getpid()}")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    # No collectstatic here: plain static URLs instead of the hashed-name manifest (as the tests do).
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"migrated a fresh database in {time.perf_counter() - started:.1f} s")


def _run(args: argparse.Namespace) -> None:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from labeling.models import Project

    if args.reuse:  # seeded and folded by the earlier run; its minutes since then are folded now
        from monitoring.services.rollups import rollup_hours, rollup_minutes

        project, owner = Project.objects.get(slug=SLUG), get_user_model().objects.get(username="bench-owner")
        rollup_minutes(now=timezone.now())
        rollup_hours(now=timezone.now())
    else:
        project, owner = _project()
        now = timezone.now()
        _seed(project, args.rows, now)
        _fold(now)
        _audit_and_outcomes(project)
    results = _time_pages(owner, args.requests, args.only)
    baseline = _baseline(project, args.requests)
    _report(results, baseline, args.requests)


# --- seeding -------------------------------------------------------------------------------------


def _project() -> tuple[Any, Any]:
    from django.contrib.auth import get_user_model

    from labeling.models import Label, Membership, Project, Role

    project = Project.objects.create(name="Monitoring benchmark", slug=SLUG, languages=["en", "ar", "es"])
    for order, label in enumerate(("negative", "neutral", "positive")):
        Label.objects.create(project=project, name=label, order=order, hotkey=str(order + 1))
    owner = get_user_model().objects.create_user("bench-owner", password="x")
    Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    return project, owner


LOG_INSERT = """
INSERT INTO {table} (id, project_id, version_number, route, caller, created_at, latency_ms, label, confidence,
                     probs, input_chars, language, text_sha256, text, script, audit)
SELECT gen_random_uuid(), %(project)s, CASE WHEN r.canary THEN 2 ELSE 1 END,
       CASE WHEN r.canary THEN 'canary' ELSE 'production' END, 'caller-' || (g %% 50),
       %(start)s::timestamptz + (g::bigint * %(spacing)s) * interval '1 microsecond',
       CASE WHEN r.slow THEN 300 + 2000 * random() ELSE 5 - 35 * ln(1 - random()) END,
       r.label, r.confidence, jsonb_build_object(r.label, r.confidence), 20 + (g %% 260), r.language,
       md5(g::text) || md5((g + 1)::text), CASE WHEN r.audit THEN 'audited text number ' || g END, 'Latn', r.audit
FROM generate_series(%(first)s, %(last)s) AS g,
LATERAL (SELECT random() < 0.1 AS canary, random() < 0.01 AS slow, random() < 0.01 AS audit,
                (ARRAY['negative', 'neutral', 'positive'])[1 + floor(random() * 3)::int] AS label,
                0.34 + 0.66 * sqrt(random()) AS confidence,
                (ARRAY['en', 'en', 'ar', 'es'])[1 + floor(random() * 4)::int] AS language
         WHERE g IS NOT NULL) AS r
"""

ERROR_INSERT = """
INSERT INTO {table} (project_id, created_at, kind, status_code, version_number, route, caller, texts, latency_ms,
                     language)
SELECT %(project)s, %(start)s::timestamptz + (g::bigint * %(spacing)s) * interval '1 microsecond', k.kind,
       CASE k.kind WHEN 'rate_limited' THEN 429 WHEN 'overloaded' THEN 503 ELSE 500 END,
       CASE k.kind WHEN 'rate_limited' THEN 0 ELSE 1 END,
       CASE k.kind WHEN 'rate_limited' THEN '' ELSE 'production' END, 'caller-1', 1 + (g %% 8), 3.0, ''
FROM generate_series(1, %(n)s) AS g,
LATERAL (SELECT (ARRAY['rate_limited', 'overloaded', 'model_error'])[1 + floor(random() * 3)::int] AS kind
         WHERE g IS NOT NULL) AS k
"""

FEEDBACK_INSERT = """
INSERT INTO {feedback} (prediction_id, project_id, label_id, user_id, created_at)
SELECT p.id, p.project_id,
       CASE WHEN random() < 0.8 THEN l.id ELSE (SELECT id FROM {labels} WHERE project_id = p.project_id
                                                ORDER BY random() LIMIT 1) END,
       NULL, p.created_at + interval '10 minutes'
FROM {log} AS p TABLESAMPLE BERNOULLI (0.2)
JOIN {labels} AS l ON l.project_id = p.project_id AND l.name = p.label
"""


def _seed(project: Any, rows: int, now: Any) -> None:
    from datetime import timedelta

    from django.db import connection

    from modeling.models import PredictionError, PredictionFeedback, PredictionLog

    start = now - timedelta(days=30)
    spacing = int(timedelta(days=30) / timedelta(microseconds=1) // max(rows, 1))
    table = connection.ops.quote_name(PredictionLog._meta.db_table)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for first in range(0, rows, CHUNK_ROWS):
            last = min(rows, first + CHUNK_ROWS) - 1
            params = {"project": project.pk, "start": start, "spacing": spacing, "first": first, "last": last}
            cursor.execute(LOG_INSERT.format(table=table), params)
            print(f"  seeded {last + 1:,} / {rows:,} predictions ({time.perf_counter() - started:.0f} s)", flush=True)
        errors = max(1, rows // 200)
        error_spacing = int(timedelta(days=30) / timedelta(microseconds=1) // errors)
        cursor.execute(
            ERROR_INSERT.format(table=connection.ops.quote_name(PredictionError._meta.db_table)),
            {"project": project.pk, "start": start, "spacing": error_spacing, "n": errors},
        )
        from labeling.models import Label

        cursor.execute(
            FEEDBACK_INSERT.format(
                feedback=connection.ops.quote_name(PredictionFeedback._meta.db_table),
                labels=connection.ops.quote_name(Label._meta.db_table),
                log=table,
            )
        )
        cursor.execute(f"ANALYZE {table}")
    feedback = PredictionFeedback.objects.count()
    print(
        f"seeded {rows:,} predictions over 30 days, {errors:,} failed requests, {feedback:,} feedback labels "
        f"in {time.perf_counter() - started:.1f} s"
    )


# --- the jobs ------------------------------------------------------------------------------------


def _fold(now: Any) -> None:
    from django.utils import timezone

    from monitoring.models import HourRollup, MinuteRollup
    from monitoring.services.rollups import rollup_hours, rollup_minutes, rollups_purge

    catch_up = rollup_minutes(now=now)
    per_minute_ms = 1000 * catch_up.seconds / max(catch_up.minutes, 1)
    print(
        f"rollup job, catch-up: {catch_up.minutes:,} minutes of traffic folded into {catch_up.rows:,} minute rows "
        f"in {catch_up.seconds:.1f} s = {per_minute_ms:.2f} ms per minute of traffic"
    )
    started = time.perf_counter()
    hours = rollup_hours(now=now)
    print(f"hour fold: {hours.rows:,} hour rows in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    purged = rollups_purge(now=now)
    print(
        f"retention: {purged.minute_rows:,} minute rows past 14 days deleted in {time.perf_counter() - started:.1f} s"
    )
    steady = []
    for _ in range(5):
        result = rollup_minutes(now=timezone.now())
        steady.append(result.seconds * 1000)
    print(
        f"rollup job, steady state (each run re-folds the last {result.minutes} minutes): "
        f"median {statistics.median(steady):.0f} ms per run, max {max(steady):.0f} ms"
    )
    print(f"rollup tables: {MinuteRollup.objects.count():,} minute rows, {HourRollup.objects.count():,} hour rows")


def _audit_and_outcomes(project: Any) -> None:
    import random

    from labeling.models import Item, Label
    from monitoring.models import OutcomeRollup
    from monitoring.services.audit import audit_sample
    from monitoring.services.outcomes import outcomes_fold

    started = time.perf_counter()
    audit = audit_sample()
    labels = {label.name: label for label in Label.objects.filter(project=project)}
    rng = random.Random(0)
    items = list(Item.objects.filter(project=project, queue_tag="audit"))
    for item in items:  # reviewers agree with the served label 85% of the time
        served = item.metadata["predicted_label"]
        truth = served if rng.random() < 0.85 else rng.choice([n for n in labels if n != served])
        item.status, item.gold_label, item.gold_source = Item.Status.GOLD, labels[truth], Item.GoldSource.SINGLE
    Item.objects.bulk_update(items, ["status", "gold_label", "gold_source"])
    outcomes = outcomes_fold()
    print(
        f"audit sample: {audit.created} queue items from {audit.hours} hours; outcome fold: {outcomes.feedback:,} "
        f"feedback labels, {OutcomeRollup.objects.count():,} outcome cells, in {time.perf_counter() - started:.1f} s"
    )


# --- timing --------------------------------------------------------------------------------------


def _page_urls() -> list[tuple[str, str]]:
    """(name, URL) of every monitoring page and API route that needs only the project's slug."""
    from django.urls import NoReverseMatch, reverse

    from monitoring import urls as page_urls
    from monitoring.api import urls as api_urls

    found = []
    for prefix, patterns in (("monitoring:", page_urls.urlpatterns), ("", api_urls.urlpatterns)):
        for pattern in patterns:
            name = getattr(pattern, "name", None)
            if not name:
                continue
            try:
                found.append((prefix + name, reverse(prefix + name, kwargs={"slug": SLUG})))
            except NoReverseMatch:
                print(f"  skipped {prefix + name}: its URL needs more than the project's slug")
    return found


def _timed(client: Any, url: str, key: str, requests: int, *, cold: bool) -> tuple[list[float], list[float]]:
    """Wall and web-CPU milliseconds of ``requests`` GETs; ``cold`` empties the cache before each one."""
    from django.core.cache import cache

    times, cpu = [], []
    for _ in range(requests):
        if cold:
            cache.clear()
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(url, {"range": key})
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return times, cpu


def _time_pages(owner: Any, requests: int, only: str = "") -> list[dict[str, Any]]:
    from django.test import Client

    client = Client()
    client.force_login(owner)
    results = []
    for name, url in _page_urls():
        if only not in name:
            continue
        for key in RANGES:
            first = client.get(url, {"range": key})  # warm: first-request imports and template compilation
            if first.status_code != 200:
                results.append({"name": name, "range": key, "status": first.status_code})
                continue
            cold, cold_cpu = _timed(client, url, key, requests, cold=True)
            warm, _ = _timed(client, url, key, requests, cold=False)
            results.append({"name": name, "range": key, "status": 200, "times": cold, "cpu": cold_cpu, "warm": warm})
    return results


BASELINE_SQL = """
SELECT route, count(*), percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms)
FROM {log} WHERE project_id = %(project)s AND created_at >= %(start)s AND created_at < %(end)s GROUP BY route
"""
BASELINE_ERRORS = """
SELECT kind, sum(texts) FROM {errors} WHERE project_id = %(project)s AND created_at >= %(start)s
AND created_at < %(end)s GROUP BY kind
"""


def _baseline(project: Any, requests: int) -> dict[str, list[float]]:
    """Seconds to compute the Service summary's figures from the raw log, per range."""
    from django.db import connection
    from django.utils import timezone

    from modeling.models import PredictionError, PredictionLog
    from monitoring.timerange import parse_time_range

    log = connection.ops.quote_name(PredictionLog._meta.db_table)
    errors = connection.ops.quote_name(PredictionError._meta.db_table)
    out = {}
    for key in RANGES:
        window = parse_time_range({"range": key}, now=timezone.now())
        params = {"project": project.pk, "start": window.start, "end": window.end}
        times = []
        for _ in range(max(3, requests // 4)):
            started = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(BASELINE_SQL.format(log=log), params)
                cursor.fetchall()
                cursor.execute(BASELINE_ERRORS.format(errors=errors), params)
                cursor.fetchall()
            times.append((time.perf_counter() - started) * 1000)
        out[key] = times
    return out


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _report(results: list[dict[str, Any]], baseline: dict[str, list[float]], requests: int) -> None:
    print(f"\nserver time per request, Django test client, {requests} requests each (goal: p95 <= 300 ms)")
    print("cold: the cache emptied before every request (the first view after each minute's fold); warm: not")
    print("web CPU: this process's CPU time per cold request (what does not wait for a core or the database)")
    print(f"{'page / API':<30} {'range':>5} {'cold p50':>9} {'cold p95':>9} {'web CPU':>8} {'warm p50':>9} "
          f"{'warm p95':>9}  goal (cold p95)")  # fmt: skip
    traffic_p50 = {}
    for r in results:
        if r["status"] != 200:
            print(f"{r['name']:<30} {r['range']:>5}   HTTP {r['status']} (not timed)")
            continue
        p50, p95 = statistics.median(r["times"]), _p(r["times"], 0.95)
        cpu = statistics.median(r["cpu"])
        warm50, warm95 = statistics.median(r["warm"]), _p(r["warm"], 0.95)
        verdict = "ok" if p95 <= 300 else "MISSED"
        print(f"{r['name']:<30} {r['range']:>5} {p50:>9.1f} {p95:>9.1f} {cpu:>8.1f} {warm50:>9.1f} {warm95:>9.1f}  "
              f"{verdict}")  # fmt: skip
        if r["name"] == "api-monitoring-traffic":
            traffic_p50[r["range"]] = p50
    print("\nbaseline: the traffic summary's figures straight from the raw log (SQL percentile_cont), same run")
    for key, times in baseline.items():
        raw = statistics.median(times)
        ratio = f", {raw / traffic_p50[key]:.2f}x the rollup-backed API's cold p50" if key in traffic_p50 else ""
        print(f"  {key:>4}: median {raw:.0f} ms over {len(times)} runs{ratio}")


if __name__ == "__main__":
    main()

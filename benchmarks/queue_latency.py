"""Labeling-queue latency on PostgreSQL: 32 reviewers doing next → submit against a 1,000,000-item pool.

Creates a throwaway database (``loopline_queue_bench`` by default) on the server named by
``DATABASE_URL``, migrates it, and seeds one project with ``--items`` pool items by ``COPY``, written
queued the way ``queue_refresh`` → ``queue_set_priorities`` would leave them (a distinct priority per
item, overlap targets from ``overlap_target_for``, 5% random-audit picks) in that same ``COPY``:
updating a million rows afterwards would rewrite every index entry, the trigram index's included. By
default the whole pool is queued, the longest queue the next-item query can face.

Reviewers are separate **processes**, each with its own database connection, forked after Django is
set up: threads would share one interpreter lock, so the Python side of 32 reviewers would run on one
core and the benchmark would measure the GIL, not the queue (a web deployment runs separate worker
processes too). Each reviewer loops ``queue_next`` → (``--think-ms`` pause) → ``annotation_submit``
through the real services, timing each call, until ``--seconds`` have passed; a cycle in progress is
finished. Figures are service-level latencies (no HTTP).

Two loads: with no think time (the default) the 32 reviewers submit as fast as the machine lets them, a
stress test whose latency on 2 cores is CPU queueing (32 processes; on 2026-11-22 ~10 ms of the reviewer's
Python per cycle, next ~4 and submit ~6, and 64 cycles/s on 2 cores: ~31 ms of CPU per cycle in all);
with ``--think-ms 2000`` they work at a fast human pace (about 2 s per item: 1,800 items an hour each,
57,600 an hour for the team), the load a labeling team puts on the queue.

In the same run, the same reviewers then run each baseline for ``--baseline-seconds``, continuing on the
same pool: ``plain-lock`` (the same services, ``FOR UPDATE`` without ``SKIP LOCKED``: reviewers queue
behind each other's row locks) and ``random`` (``ORDER BY random()`` with ``SKIP LOCKED``: a scan and
sort of the queue per call). Ratios are printed against the main phase.

After the run, SQL checks every lease and annotation row: no two reviewers held overlapping leases on
an overlap-1 item (and never more than ``overlap_target`` on an overlap item), every submit that
returned an annotation has its row (and no row exists that no submit returned), and every touched
item's status and gold label are what its annotations and leases imply; the project's counters equal
a recount. Any failed check exits non-zero.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/queue_latency.py
    … --seconds 20 --items 100000      # a quick run
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a plain script from anywhere: make the repository root importable.
sys.path.insert(0, str(ROOT))

from benchmarks._postgres import bench_url, recreate_database, setup_django  # noqa: E402

LANGUAGES = ("en", "de", "fr", "sw")
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima")
COPY_ROWS = 100_000
BASELINES = ("plain-lock", "random")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="pool items (default 1,000,000)")
    parser.add_argument("--queued", type=int, default=None, help="items queued with a priority (default: all)")
    parser.add_argument("--reviewers", type=int, default=32, help="concurrent reviewer processes (default 32)")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the main phase (default 120)")
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0.0,
        help="mean pause between next and submit, the time a reviewer reads and decides (default 0: none). Each "
        "pause is drawn uniformly from 0.5x to 1.5x of it and each reviewer starts after a random part of one, "
        "as people do: with one fixed pause all reviewers would stay in step and arrive in bursts of 32",
    )
    parser.add_argument("--baseline-seconds", type=float, default=20.0, help="length of each baseline phase")
    parser.add_argument(
        "--baselines", default=",".join(BASELINES), help=f"comma-separated subset of {', '.join(BASELINES)}, or ''"
    )
    parser.add_argument("--overlap", type=float, default=0.10, help="the project's overlap fraction (default 0.1)")
    parser.add_argument("--database", default="loopline_queue_bench", help="name of the throwaway database")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    args.queued = args.items if args.queued is None else min(args.queued, args.items)
    args.baselines = [name for name in args.baselines.split(",") if name]
    unknown = set(args.baselines) - set(BASELINES)
    if unknown:
        parser.error(f"unknown baseline(s): {', '.join(sorted(unknown))}")
    return args


# --- seeding --------------------------------------------------------------------------------


def make_project(reviewers: int, overlap: float) -> tuple[Any, list[int]]:
    from django.contrib.auth import get_user_model

    from labeling.models import Membership, Role
    from labeling.services.projects import LabelSpec, ProjectSpec, project_create

    users = get_user_model().objects
    owner = users.create(username="bench-owner")
    labels = [LabelSpec("negative"), LabelSpec("neutral"), LabelSpec("positive")]
    spec = ProjectSpec(
        name="Queue bench", slug="queue-bench", base_checkpoint="xlm-roberta-base", labels=labels,
        languages=list(LANGUAGES),
    )  # fmt: skip
    project = project_create(spec=spec, user=owner)
    project.overlap_fraction = overlap
    project.save(update_fields=["overlap_fraction"])
    reviewer_ids = []
    for index in range(reviewers):
        user = users.create(username=f"reviewer-{index:02d}")
        Membership.objects.create(project=project, user=user, role=Role.REVIEWER)
        reviewer_ids.append(user.pk)
    return project, reviewer_ids


def _copy(cursor: Any, statement: str, lines: list[str]) -> None:
    with cursor.copy(statement) as copy:
        copy.write("".join(lines).encode("utf-8"))


def seed_queue(project: Any, count: int, queued: int, *, seed: int = 0) -> None:
    """COPY ``count`` short multilingual pool texts, ``queued`` of them queued as ``queue_set_priorities`` would.

    Priorities are distinct (``queue_refresh`` gives the batch's first pick the highest) and land on
    items in no relation to their ids; overlap targets come from ``overlap_target_for`` on each id, so
    the ids are reserved from the table's sequence first and written explicitly.
    """
    from django.db import connection, transaction

    from labeling.models import Item
    from labeling.services.queue import overlap_target_for

    table = Item._meta.db_table
    rng = random.Random(seed)
    ranks = dict(zip(rng.sample(range(count), queued), range(queued), strict=True))
    audit = set(rng.sample(range(queued), round(queued * project.random_fraction)))
    created = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    columns = (
        "id, project_id, text, content_hash, language, split, metadata, status, gold_source, priority,"
        " overlap_target, is_random_pick, ranked_by_version, created_at"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        sequence = cursor.fetchone()[0]
        cursor.execute("SELECT setval(%s, nextval(%s) + %s - 1)", [sequence, sequence, count])
        first = cursor.fetchone()[0] - count + 1
        for start in range(0, count, COPY_ROWS):
            lines = []
            for i in range(start, min(start + COPY_ROWS, count)):
                item_id, rank = first + i, ranks.get(i)
                words = " ".join(WORDS[(i >> shift) % len(WORDS)] for shift in (0, 4, 8, 12, 16))
                text = f"{words} review number {i}"
                queue = (
                    "unlabeled\t\t\\N\t1\tf\t\\N"
                    if rank is None
                    else f"queued\t\t{float(queued - rank)}\t{overlap_target_for(item_id, project.overlap_fraction)}"
                    f"\t{'t' if rank in audit else 'f'}\t1"
                )
                lines.append(
                    f"{item_id}\t{project.pk}\t{text}\t{hashlib.sha256(text.encode()).hexdigest()}\t"
                    f"{LANGUAGES[i % len(LANGUAGES)]}\tpool\t{{}}\t{queue}\t{created}\n"
                )
            _copy(cursor.cursor, f"COPY {table} ({columns}) FROM STDIN", lines)


def vacuum_analyze() -> None:
    """Clear the bulk UPDATE's dead rows and refresh statistics (autovacuum may be off on the server)."""
    from django.db import connection

    from labeling.models import Item

    connection.ensure_connection()
    previous = connection.connection.autocommit
    connection.connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {Item._meta.db_table}")
            cursor.execute("ANALYZE")
    finally:
        connection.connection.autocommit = previous


# --- the reviewers --------------------------------------------------------------------------


@dataclass
class ReviewerResult:
    user_id: int
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    submitted: list[tuple[int, int, str]] = field(default_factory=list)  # (annotation id, item id, lease id)
    empty: int = 0
    errors: list[str] = field(default_factory=list)


def _use_baseline(name: str) -> None:
    """Swap the next-item statement for a baseline's, in this reviewer process only.

    The statement is ``rows``' prepared candidate SQL (built once per process and cached), edited here:
    ``plain-lock`` drops ``SKIP LOCKED``, ``random`` orders by ``random()``. Each edit must apply, so a
    change to that SQL cannot silently turn a baseline into the main phase again.
    """
    from django.db import connection

    from labeling.services.queue import rows

    shapes = rows._shapes(connection.vendor)
    edits = {
        "plain-lock": (" SKIP LOCKED", ""),
        "random": ("ORDER BY it.priority DESC, it.id ASC", "ORDER BY random()"),
    }
    old, new = edits[name]
    if old not in shapes["candidate"]:
        raise RuntimeError(f"the {name} baseline cannot edit the candidate statement: {old!r} is not in it")
    shapes["candidate"] = shapes["candidate"].replace(old, new)


def reviewer(
    index: int, user_id: int, project_id: int, phase: str, seconds: float, think_ms: float, start: Any, out: Any
) -> None:
    """One reviewer: next → submit until the phase ends; put a ReviewerResult on ``out``."""
    from django.contrib.auth import get_user_model
    from django.db import connections

    from labeling.models import Project
    from labeling.services.queue import annotation_submit, queue_next

    connections.close_all()  # never reuse a socket inherited from the parent
    if phase != "skip-locked":
        _use_baseline(phase)
    project = Project.objects.get(pk=project_id)
    user = get_user_model().objects.get(pk=user_id)
    labels = list(project.labels.values_list("pk", flat=True))
    rng = random.Random(index)
    result = ReviewerResult(user_id=user_id)
    start.wait()
    deadline = time.monotonic() + seconds
    if think_ms:
        time.sleep(rng.uniform(0, think_ms / 1000))
    try:
        while time.monotonic() < deadline:
            began = time.perf_counter()
            lease = queue_next(project=project, user=user)
            result.next_ms.append((time.perf_counter() - began) * 1000)
            if lease is None:
                result.empty += 1
                time.sleep(0.05)
                continue
            pause = rng.uniform(0.5, 1.5) * think_ms / 1000
            time.sleep(pause)
            began = time.perf_counter()
            annotation = annotation_submit(  # by item id, as the API view calls it
                project=project, user=user, item=lease.item_id, label=rng.choice(labels), lease_id=lease.pk,
                seconds_spent=pause, client_key=uuid.uuid4().hex,
            )  # fmt: skip
            result.submit_ms.append((time.perf_counter() - began) * 1000)
            result.submitted.append((annotation.pk, annotation.item_id, str(lease.pk)))
    except Exception as exc:  # reported by the parent, which then fails the run
        result.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        connections.close_all()
    out.put(result)


WAITS = """
SELECT state, wait_event_type, wait_event, query FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""
STATEMENT_TABLE = re.compile(r'^\s*(?:UPDATE|INSERT INTO|SELECT .*? FROM|DELETE FROM)\s+"?(\w+)', re.S | re.I)


class WaitSampler(threading.Thread):
    """Sample what the reviewers' server backends are doing every 50 ms, on a connection of its own."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: Counter[str] = Counter()
        self.done = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(os.environ["DATABASE_URL"].replace("pgsql://", "postgresql://"), autocommit=True) as conn:
            while not self.done.wait(0.05):
                for state, kind, event, query in conn.execute(WAITS).fetchall():
                    self.samples[self._classify(state, kind, event, query)] += 1

    @staticmethod
    def _classify(state: str, kind: str | None, event: str | None, query: str) -> str:
        if state == "idle":
            return "idle: between transactions (the reviewer process runs Python)"
        if state == "idle in transaction":
            return "idle in transaction: waiting for its reviewer process to send the next statement"
        if kind is None:
            return "active: running on the server"
        table = STATEMENT_TABLE.match(query)
        where = f" in a statement on {table.group(1)}" if kind == "Lock" and table else ""
        return f"active: waiting on {kind}:{event}{where}"

    def report(self) -> None:
        total = sum(self.samples.values()) or 1
        print("  where the reviewers' server backends were (share of samples every 50 ms):")
        for name, n in self.samples.most_common(8):
            print(f"    {n / total:6.1%}  {name}")


@dataclass
class Phase:
    name: str
    seconds: float
    wall: float
    results: list[ReviewerResult]
    waits: WaitSampler

    @property
    def next_ms(self) -> list[float]:
        return [ms for r in self.results for ms in r.next_ms]

    @property
    def submit_ms(self) -> list[float]:
        return [ms for r in self.results for ms in r.submit_ms]

    @property
    def annotations(self) -> int:
        return sum(len(r.submitted) for r in self.results)


def run_phase(name: str, project_id: int, user_ids: list[int], seconds: float, think_ms: float) -> Phase:
    from django.db import connections

    connections.close_all()  # the children must not inherit an open connection
    context = mp.get_context("fork")
    start, out = context.Barrier(len(user_ids) + 1), context.Queue()
    processes = [
        context.Process(target=reviewer, args=(i, uid, project_id, name, seconds, think_ms, start, out))
        for i, uid in enumerate(user_ids)
    ]
    for process in processes:
        process.start()
    start.wait()
    began = time.monotonic()
    waits = WaitSampler()
    waits.start()
    results = [out.get() for _ in processes]  # drain before join: a full pipe would block the children
    wall = time.monotonic() - began
    waits.done.set()
    waits.join()
    for process in processes:
        process.join()
    return Phase(name, seconds, wall, results, waits)


# --- the report -----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def describe(phase: Phase) -> dict[str, float]:
    nxt, sub = phase.next_ms, phase.submit_ms
    figures = {
        "next_p50": percentile(nxt, 50),
        "next_p95": percentile(nxt, 95),
        "next_p99": percentile(nxt, 99),
        "next_max": max(nxt, default=float("nan")),
        "submit_p50": percentile(sub, 50),
        "submit_p95": percentile(sub, 95),
        "submit_p99": percentile(sub, 99),
        "throughput": phase.annotations / phase.wall,
    }
    empties = sum(r.empty for r in phase.results)
    active = sum(1 for r in phase.results if r.submitted)
    print(
        f"[{phase.name}] {phase.wall:.1f} s, {len(phase.results)} reviewers ({active} submitted at least once): "
        f"{len(nxt):,} next calls ({empties} empty), {phase.annotations:,} annotations"
    )
    print(
        f"  next   p50 {figures['next_p50']:7.1f} ms  p95 {figures['next_p95']:7.1f} ms  "
        f"p99 {figures['next_p99']:7.1f} ms  max {figures['next_max']:7.1f} ms  "
        f"mean {statistics.fmean(nxt or [0]):.1f} ms"
    )
    print(
        f"  submit p50 {figures['submit_p50']:7.1f} ms  p95 {figures['submit_p95']:7.1f} ms  "
        f"p99 {figures['submit_p99']:7.1f} ms"
    )
    print(f"  throughput {figures['throughput']:.1f} annotations/s")
    phase.waits.report()
    return figures


def explain_next(project_id: int, user_id: int) -> str:
    """EXPLAIN ANALYZE the next-item query (rolled back, so its row lock is never kept)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from labeling.models import Project
    from labeling.services.queue import rows

    project, user = Project.objects.get(pk=project_id), get_user_model().objects.get(pk=user_id)
    with transaction.atomic():
        plan = rows.explain_candidate(project.pk, user.pk, timezone.now(), analyze=True)
        transaction.set_rollback(True)
    return plan


def explain_expiry(project_id: int) -> str:
    """EXPLAIN ANALYZE the lazy expiry probe that every next-item call makes first."""
    from django.utils import timezone

    from labeling.models import Lease

    expired = Lease.objects.filter(project_id=project_id, released_at__isnull=True, expires_at__lte=timezone.now())
    return expired.order_by("expires_at").values_list("id", "item_id", "project_id")[:20].explain(analyze=True)


# --- the checks -----------------------------------------------------------------------------

# Leases of one overlap-1 item held by two reviewers at once: both started before the other ended.
# A lease ends at its release or its expiry, whichever comes first.
DOUBLE_LEASES = """
SELECT count(*) FROM labeling_lease a
JOIN labeling_lease b ON b.item_id = a.item_id AND b.user_id <> a.user_id AND a.id < b.id
JOIN labeling_item i ON i.id = a.item_id
WHERE a.project_id = %(p)s AND i.overlap_target = 1
  AND a.created_at < LEAST(COALESCE(b.released_at, 'infinity'), b.expires_at)
  AND b.created_at < LEAST(COALESCE(a.released_at, 'infinity'), a.expires_at)
"""
# Any item held by more reviewers at once than its overlap target: count the leases live when each starts.
OVER_TARGET = """
SELECT count(*) FROM (
  SELECT a.id FROM labeling_lease a
  JOIN labeling_lease b ON b.item_id = a.item_id
       AND b.created_at <= a.created_at AND a.created_at < LEAST(COALESCE(b.released_at, 'infinity'), b.expires_at)
  JOIN labeling_item i ON i.id = a.item_id
  WHERE a.project_id = %(p)s
  GROUP BY a.id, i.overlap_target HAVING count(DISTINCT b.user_id) > i.overlap_target
) AS over
"""
OVER_ANNOTATED = """
SELECT count(*) FROM (
  SELECT n.item_id FROM labeling_annotation n JOIN labeling_item i ON i.id = n.item_id
  WHERE n.project_id = %(p)s AND n.kind = 'label'
  GROUP BY n.item_id, i.overlap_target HAVING count(DISTINCT n.user_id) > i.overlap_target
) AS over
"""
RETURNED_ROWS = """
SELECT count(*) FROM unnest(%(ids)s::bigint[], %(items)s::bigint[], %(leases)s::uuid[]) AS s(id, item_id, lease_id)
JOIN labeling_annotation n ON n.id = s.id AND n.item_id = s.item_id AND n.lease_id = s.lease_id AND n.kind = 'label'
"""
# Every item with an annotation or a lease, or not in its seeded status: its status as the gold rules derive it.
STATUS_MISMATCHES = """
WITH a AS (
  SELECT item_id, count(DISTINCT user_id) AS reviewers, count(DISTINCT label_id) AS labels, min(label_id) AS label
  FROM labeling_annotation WHERE project_id = %(p)s AND kind = 'label' GROUP BY item_id
), l AS (
  SELECT item_id, count(*) AS held FROM labeling_lease
  WHERE project_id = %(p)s AND released_at IS NULL AND expires_at > now() GROUP BY item_id
), derived AS (
  SELECT i.status, i.gold_label_id, i.gold_source, a.label, a.labels, i.overlap_target,
    CASE
      WHEN a.reviewers IS NULL THEN CASE WHEN l.held > 0 THEN 'leased'
                                         WHEN i.priority IS NULL THEN 'unlabeled' ELSE 'queued' END
      WHEN a.reviewers < i.overlap_target THEN CASE WHEN l.held > 0 THEN 'leased' ELSE 'labeled' END
      WHEN a.labels > 1 THEN 'in_review'
      ELSE 'gold'
    END AS expected
  FROM labeling_item i LEFT JOIN a ON a.item_id = i.id LEFT JOIN l ON l.item_id = i.id
  WHERE i.project_id = %(p)s AND (a.item_id IS NOT NULL OR l.item_id IS NOT NULL
                                  OR i.status <> CASE WHEN i.priority IS NULL THEN 'unlabeled' ELSE 'queued' END)
)
SELECT
  count(*) FILTER (WHERE status <> expected),
  count(*) FILTER (WHERE expected = 'gold' AND (gold_label_id IS DISTINCT FROM label
                   OR gold_source <> CASE WHEN overlap_target = 1 THEN 'single' ELSE 'agreement' END)),
  count(*) FILTER (WHERE expected <> 'gold' AND gold_label_id IS NOT NULL),
  count(*)
FROM derived
"""


def verify(project_id: int, phases: list[Phase]) -> bool:
    """Run the SQL checks; print each; return whether all passed."""
    from django.db import connection

    from labeling.models import ProjectCounts

    returned = [row for phase in phases for r in phase.results for row in r.submitted]
    params = {
        "p": project_id,
        "ids": [row[0] for row in returned],
        "items": [row[1] for row in returned],
        "leases": [row[2] for row in returned],
    }
    with connection.cursor() as cursor:

        def one(sql: str) -> Any:
            cursor.execute(sql, params)
            return cursor.fetchone()

        double = one(DOUBLE_LEASES)[0]
        over_target = one(OVER_TARGET)[0]
        over_annotated = one(OVER_ANNOTATED)[0]
        found = one(RETURNED_ROWS)[0]
        stored = one("SELECT count(*) FROM labeling_annotation WHERE project_id = %(p)s AND kind = 'label'")[0]
        leases = one("SELECT count(*) FROM labeling_lease WHERE project_id = %(p)s")[0]
        mismatched, bad_gold, stray_gold, touched = one(STATUS_MISMATCHES)
        cursor.execute("SELECT status, count(*) FROM labeling_item WHERE project_id = %s GROUP BY status", [project_id])
        actual = dict(cursor.fetchall())
    counts = ProjectCounts.objects.get(project_id=project_id)
    kept = {status: getattr(counts, status) for status in actual}
    checks = [
        (f"double leases on overlap-1 items (of {leases:,} leases)", double, 0),
        ("moments an item was held by more reviewers than its overlap target", over_target, 0),
        ("items annotated by more reviewers than their overlap target", over_annotated, 0),
        ("annotations returned by a submit and found in the table", found, len(returned)),
        ("label annotations stored", stored, len(returned)),
        (f"items whose status differs from what their rows imply (of {touched:,} touched)", mismatched, 0),
        ("gold items with the wrong gold label or source", bad_gold, 0),
        ("non-gold items carrying a gold label", stray_gold, 0),
        ("kept counters by status == recount", kept, actual),
        ("items left in the project", counts.items, sum(actual.values())),
    ]
    ok = True
    print("checks:")
    for name, value, expected in checks:
        passed = value == expected
        ok = ok and passed
        print(f"  {'ok  ' if passed else 'FAIL'} {name}: {value}" + ("" if passed else f" (expected {expected})"))
    return ok


def load() -> str:
    """The 1/5/15-minute load averages: the cores may be shared with other work, which the figures then include."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores (shared with any other work on this machine)"


def main() -> None:
    args = parse_args()
    url, maintenance = bench_url(args.database)
    print(f"load average at start: {load()}")
    sys.path.insert(0, str(ROOT))
    from benchmarks._machine import speed_line

    print(speed_line())
    recreate_database(maintenance, args.database)
    try:
        with tempfile.TemporaryDirectory(prefix="loopline-queue-bench-") as tmp:
            setup_django(url, tmp)
            run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            recreate_database(maintenance, args.database, drop_only=True)
        print(f"load average at end: {load()}")


def run(args: argparse.Namespace) -> None:
    from labeling.services.counts import project_recount

    started = time.monotonic()
    project, user_ids = make_project(args.reviewers, args.overlap)
    seed_queue(project, args.items, args.queued)
    project_recount(project=project)
    vacuum_analyze()
    print(
        f"database {args.database}: {args.items:,} pool items, {args.queued:,} queued, overlap {args.overlap:.0%}; "
        f"seeded in {time.monotonic() - started:.0f} s"
    )
    pace = f"think time {args.think_ms:g} ms (each 0.5-1.5x, starts staggered)" if args.think_ms else "no think time"
    print(f"{args.reviewers} reviewer processes, {pace}, main phase {args.seconds:g} s")
    phases = [run_phase("skip-locked", project.pk, user_ids, args.seconds, args.think_ms)]
    main_figures = describe(phases[0])
    for name in args.baselines:
        phases.append(run_phase(name, project.pk, user_ids, args.baseline_seconds, args.think_ms))
        figures = describe(phases[-1])
        print(
            f"  {name} / skip-locked: next p50 {figures['next_p50'] / main_figures['next_p50']:.2f}x, "
            f"next p95 {figures['next_p95'] / main_figures['next_p95']:.2f}x, "
            f"throughput {figures['throughput'] / main_figures['throughput']:.2f}x"
        )
    errors = [error for phase in phases for r in phase.results for error in r.errors]
    for error in errors[:10]:
        print(f"reviewer error: {error}")
    print("next-item query plan after the run (EXPLAIN ANALYZE):")
    print("\n".join(f"  {line}" for line in explain_next(project.pk, user_ids[0]).splitlines()))
    print("lazy expiry probe plan after the run (EXPLAIN ANALYZE):")
    print("\n".join(f"  {line}" for line in explain_expiry(project.pk).splitlines()))
    if not verify(project.pk, phases) or errors:
        sys.exit(1)


if __name__ == "__main__":
    main()

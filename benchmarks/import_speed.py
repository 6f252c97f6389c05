"""Import speed on PostgreSQL: the background import path against naive per-row ORM inserts.

Creates a fresh database (``loopline_bench`` by default) on the server named by ``DATABASE_URL``,
migrates it, writes N short synthetic texts to a CSV file, and times ``import_upload`` end to end
(spool, sniff, then the job body: parse, validate, COPY) with Celery running the job eagerly in
this process. In the same run it times ``Item.objects.create`` per row on a 10,000-row sample and
prints the ratio. The database is dropped afterwards.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/import_speed.py --rows 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a plain script from anywhere: make the repository root importable.
sys.path.insert(0, str(ROOT))

from benchmarks._postgres import bench_url, recreate_database, setup_django  # noqa: E402

WORDS = tuple(
    [
        "alpha",
        "bravo",
        "charlie",
        "delta",
        "echo",
        "foxtrot",
        "golf",
        "hotel",
        "india",
        "juliet",
        "kilo",
        "lima",
        "mike",
        "november",
        "oscar",
        "papa",
    ]
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to import (default 1,000,000)")
    parser.add_argument("--baseline-rows", type=int, default=10_000, help="rows for the per-row ORM baseline")
    parser.add_argument("--database", default="loopline_bench", help="name of the throwaway database")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return parser.parse_args()


def write_csv(path: Path, rows: int) -> None:
    """Short texts (~40 characters), every tenth with a gold label, every other with an id."""
    labels = ("negative", "neutral", "positive")
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("id,text,label,language,split\n")
        for i in range(rows):
            words = " ".join(WORDS[(i >> shift) % len(WORDS)] for shift in (0, 4, 8, 12, 16))
            label = labels[i % 3] if i % 10 == 0 else ""
            external_id = f"row-{i}" if i % 2 == 0 else ""
            out.write(f"{external_id},{words} number {i},{label},en,pool\n")


def make_project(slug: str):
    from django.contrib.auth import get_user_model

    from labeling.services.projects import LabelSpec, ProjectSpec, project_create

    user, _ = get_user_model().objects.get_or_create(username="bench")
    labels = [LabelSpec("negative"), LabelSpec("neutral"), LabelSpec("positive")]
    spec = ProjectSpec(name=slug, slug=slug, base_checkpoint="roberta-base", labels=labels)
    return project_create(spec=spec, user=user), user


def time_import(csv_path: Path) -> tuple[float, object]:
    from labeling.services.imports import import_upload

    project, user = make_project("bench-copy")
    started = time.perf_counter()
    with csv_path.open("rb") as handle:
        outcome = import_upload(project=project, user=user, fileobj=handle, filename=csv_path.name)
    seconds = time.perf_counter() - started
    return seconds, outcome


def time_naive(rows: int) -> float:
    from labeling.models import Item

    project, _ = make_project("bench-naive")
    started = time.perf_counter()
    for i in range(rows):
        text = f"naive baseline text number {i}"
        Item.objects.create(project=project, text=text, content_hash=hashlib.sha256(text.encode()).hexdigest())
    return time.perf_counter() - started


def report(rows: int, seconds: float, outcome: object, baseline_rows: int, baseline_seconds: float) -> None:
    from webapp.models import Job

    job = outcome.job
    if job is not None:
        job = Job.objects.get(pk=job.pk)
        if job.status != Job.Status.SUCCEEDED:
            sys.exit(f"import job ended {job.status}: {job.error}")
        print(f"job: {job.result}; job body {job.duration_seconds:.1f} s")
    fast, naive = rows / seconds, baseline_rows / baseline_seconds
    print(f"import_upload ({rows:,} rows, end to end): {seconds:.1f} s = {fast:,.0f} rows/s")
    print(f"naive per-row Item.objects.create ({baseline_rows:,} rows): {baseline_seconds:.1f} s = {naive:,.0f} rows/s")
    print(f"ratio: {fast / naive:.1f}x faster")


def main() -> None:
    args = parse_args()
    url, maintenance = bench_url(args.database)
    recreate_database(maintenance, args.database)
    try:
        with tempfile.TemporaryDirectory(prefix="loopline-bench-") as tmp:
            setup_django(url, tmp, eager_tasks=True)
            csv_path = Path(tmp) / "synthetic.csv"
            write_csv(csv_path, args.rows)
            print(f"database {args.database}; {args.rows:,} rows, {csv_path.stat().st_size / 1e6:.1f} MB CSV")
            seconds, outcome = time_import(csv_path)
            baseline_seconds = time_naive(args.baseline_rows)
            report(args.rows, seconds, outcome, args.baseline_rows, baseline_seconds)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            recreate_database(maintenance, args.database, drop_only=True)


if __name__ == "__main__":
    main()

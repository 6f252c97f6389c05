"""Agreement figures on PostgreSQL: computed from scratch vs answered from the cache, at ~110k annotations.

Creates a throwaway database (``loopline_agreement_bench`` by default) on the server named by
``DATABASE_URL``, migrates it, and writes one project with ``--items`` gold items labeled once each
by one of ``--reviewers`` reviewers and an ``--overlap`` share labeled by a second reviewer too (about
one in four of those disagreeing), in bulk. Then it times, each ``--repeat`` times: the figures computed
from scratch (``project_agreement``), the cache key alone (its two reads), and the cached answer after
a first call (``project_agreement_cached``); then adds one annotation and times the first answer after
it (a recomputation) and checks that it changed.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/agreement_latency.py
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from queue_latency import load

from benchmarks._postgres import bench_url, recreate_database, setup_django


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="labeled items (default 100,000)")
    parser.add_argument("--overlap", type=float, default=0.10, help="share labeled twice (default 0.1)")
    parser.add_argument("--reviewers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", default="loopline_agreement_bench")
    return parser.parse_args()


def seed(items: int, overlap: float, reviewers: int) -> tuple[object, list[object]]:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from labeling.models import Annotation, Item, Membership, Role
    from labeling.services.counts import project_recount
    from labeling.services.projects import LabelSpec, ProjectSpec, project_create

    users = get_user_model().objects
    owner = users.create(username="bench-owner")
    spec = ProjectSpec(
        name="Agreement bench", slug="agreement-bench", base_checkpoint="xlm-roberta-base",
        labels=[LabelSpec("negative"), LabelSpec("neutral"), LabelSpec("positive")],
    )  # fmt: skip
    project = project_create(spec=spec, user=owner)
    team = [users.create(username=f"reviewer-{i:02d}") for i in range(reviewers)]
    Membership.objects.bulk_create([Membership(project=project, user=u, role=Role.REVIEWER) for u in team])
    labels = list(project.labels.values_list("pk", flat=True))
    rng, now = random.Random(0), timezone.now()
    # Each item's ratings first, so items are written once with their final status (no bulk update after).
    plans = []
    for _ in range(items):
        first, label = rng.choice(team), rng.choice(labels)
        ratings = [(first, label)]
        if rng.random() < overlap:
            other = label if rng.random() < 0.75 else rng.choice(labels)
            ratings.append((rng.choice([u for u in team if u != first]), other))
        plans.append(ratings)
    rows = []
    for i, ratings in enumerate(plans):
        agreed = len({label for _, label in ratings}) == 1
        source = "single" if len(ratings) == 1 else "agreement"
        rows.append(
            Item(
                project=project, text=f"text {i}", content_hash=f"{i:064x}", overlap_target=len(ratings),
                status="gold" if agreed else "in_review", gold_label_id=ratings[0][1] if agreed else None,
                gold_source=source if agreed else "",
            )
        )  # fmt: skip
    created = Item.objects.bulk_create(rows, batch_size=5_000)
    annotations = [
        Annotation(project=project, item=item, user=user, label_id=label, created_at=now)
        for item, ratings in zip(created, plans, strict=True)
        for user, label in ratings
    ]
    Annotation.objects.bulk_create(annotations, batch_size=5_000)
    project_recount(project=project)
    return project, team


def timed(call, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return times


def show(name: str, times: list[float]) -> None:
    print(f"  {name:<42} median {statistics.median(times):9.1f} ms   min {min(times):9.1f} ms   (n={len(times)})")


def run(args: argparse.Namespace) -> None:
    from django.db import connection

    from labeling.models import Annotation, Item
    from labeling.services.agreement import agreement_cache_key, project_agreement, project_agreement_cached

    began = time.monotonic()
    project, team = seed(args.items, args.overlap, args.reviewers)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # Django runs outside a transaction here (autocommit)
    n = Annotation.objects.filter(project=project).count()
    seeded = time.monotonic() - began
    print(f"{args.items:,} items, {n:,} annotations, {args.reviewers} reviewers; seeded in {seeded:.0f} s")
    scratch = timed(lambda: project_agreement(project=project), args.repeat)
    key = timed(lambda: agreement_cache_key(project=project), args.repeat)
    figures = project_agreement_cached(project=project)
    cached = timed(lambda: project_agreement_cached(project=project), args.repeat)
    item = Item.objects.filter(project=project, overlap_target=1).exclude(annotations__user=team[-1]).first()
    Annotation.objects.create(project=project, item=item, user=team[-1], label=item.gold_label)
    recomputed = timed(lambda: project_agreement_cached(project=project), 1)
    after = project_agreement_cached(project=project)
    show("computed from scratch (project_agreement)", scratch)
    show("cache key alone (count + newest id, labels)", key)
    show("cached answer (project_agreement_cached)", cached)
    show("first answer after a new annotation", recomputed)
    changed = (after.n_annotations, after.n_overlap_items) == (figures.n_annotations + 1, figures.n_overlap_items + 1)
    print(f"  the new annotation changed the answer: {'ok' if changed else 'FAIL'}")
    if not changed:
        sys.exit(1)


def main() -> None:
    args = parse_args()
    url, maintenance = bench_url(args.database)
    print(f"load average at start: {load()}")
    recreate_database(maintenance, args.database)
    try:
        with tempfile.TemporaryDirectory(prefix="loopline-agreement-bench-") as tmp:
            setup_django(url, tmp)
            run(args)
    finally:
        from django.db import connections

        connections.close_all()
        recreate_database(maintenance, args.database, drop_only=True)
        print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()

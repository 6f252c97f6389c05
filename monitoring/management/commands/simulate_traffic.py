"""``manage.py simulate_traffic <slug> --minutes N --rate R [--drift]``: demo traffic for the monitoring pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from labeling.models import Project
from monitoring.demo import TrafficSpec, traffic_simulate


class Command(BaseCommand):
    help = (
        "Write a realistic stream of production predictions (several languages, label mix, latencies, a few "
        "errors, some feedback) for a project into the prediction log, covering the last N minutes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="The project's slug.")
        parser.add_argument("--minutes", type=int, default=60, help="How many minutes of traffic, up to now.")
        parser.add_argument("--rate", type=float, default=30.0, help="Requests per minute (Poisson arrivals).")
        parser.add_argument(
            "--drift", action="store_true", help="Make the last third drifted: other languages, labels, lower quality."
        )
        parser.add_argument("--seed", type=int, default=0, help="Random seed (the same seed writes the same stream).")
        parser.add_argument("--end", help="ISO 8601 end of the stream (default: now).")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["slug"]).first()
        if project is None:
            raise CommandError(f"No project with the slug {options['slug']!r}.")
        try:
            spec = TrafficSpec(
                minutes=options["minutes"],
                rate=options["rate"],
                drift=options["drift"],
                seed=options["seed"],
                end=_end(options["end"]),
            )
            summary = traffic_simulate(project=project, spec=spec)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        routes = ", ".join(f"{route} {n}" for route, n in sorted(summary.routes.items())) or "none"
        languages = ", ".join(f"{code} {n}" for code, n in summary.languages.most_common())
        self.stdout.write(
            f"{summary.requests} requests from {summary.start:%Y-%m-%d %H:%M} to {summary.end:%H:%M} UTC: "
            f"{summary.written} predictions logged ({routes}; {languages}), {summary.errors} errors, "
            f"{summary.feedback} feedback labels"
            + (f"; drifted from {summary.drift_start:%H:%M}" if summary.drift_start else "")
            + "."
        )


def _end(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        raise CommandError(
            f"--end must be an ISO 8601 date and time with a zone, e.g. 2026-11-21T14:00:00Z; got {value!r}."
        )
    return parsed

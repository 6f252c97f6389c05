"""Rebuild every project's item counters from the items table."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from labeling.models import Project
from labeling.services.counts import project_recount


class Command(BaseCommand):
    help = "Recount items per status for every project (or the given slugs) and repair the stored counters."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slugs", nargs="*", help="Project slugs; all projects when omitted.")

    def handle(self, *args: Any, slugs: list[str], **options: Any) -> None:
        projects = Project.objects.filter(slug__in=slugs) if slugs else Project.objects.all()
        for project in projects:
            counts = project_recount(project=project)
            self.stdout.write(f"{project.slug}: {counts.items} items, {counts.gold} gold, {counts.unlabeled} unlabeled")

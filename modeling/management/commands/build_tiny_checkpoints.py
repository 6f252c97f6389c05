"""``manage.py build_tiny_checkpoints OUT_DIR``: tiny random RoBERTa and XLM-R checkpoints for tests and demos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Write tiny random-weight RoBERTa and XLM-R checkpoints (tokenizers trained offline) into OUT_DIR."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out_dir", type=Path)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, out_dir: Path, seed: int, **options: Any) -> None:
        # Imported here: management commands are loaded by every manage.py call, torch only by this one.
        from modeling.ml.tiny import build_tiny_roberta, build_tiny_xlmr

        for name, build in (("tiny-roberta", build_tiny_roberta), ("tiny-xlmr", build_tiny_xlmr)):
            path = build(out_dir / name, seed=seed)
            self.stdout.write(f"{name}: {path}")

"""A throwaway PostgreSQL database for a benchmark, and Django set up on it.

The benchmarks that need PostgreSQL itself (SKIP LOCKED, COPY, a million rows) take the server from
DATABASE_URL, create their own database beside it, migrate it and drop it afterwards.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def bench_url(database: str) -> tuple[str, str]:
    """Return (URL of the bench database, URL of the server's maintenance database)."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://", "pgsql://")):
        sys.exit("Set DATABASE_URL to a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{database}")), urlunsplit(parts._replace(path="/postgres"))


def recreate_database(maintenance_url: str, database: str, *, drop_only: bool = False) -> None:
    """Drop `database` (closing its sessions) and, unless `drop_only`, create it empty."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(maintenance_url.replace("pgsql://", "postgresql://"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def setup_django(url: str, var_dir: str, *, eager_tasks: bool = False) -> None:
    """Point Django at `url` (DEBUG off, warnings only), set it up and migrate; `eager_tasks` runs Celery inline."""
    os.environ["DATABASE_URL"] = url
    os.environ["LOOPLINE_VAR_DIR"] = var_dir
    if eager_tasks:
        os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(40))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "webapp.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

"""Fixtures for the cross-cutting tests: a real Celery worker process."""

from __future__ import annotations

import pytest

from tests.worker_harness import running_worker


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """A real ``celery -A webapp worker -Q default,gpu`` process sharing this test's database and broker."""
    with running_worker(tmp_path) as worker:
        yield worker

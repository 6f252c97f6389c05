"""The web process and a worker's parent process never import torch (nor initialise CUDA)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.worker_harness import REPO_ROOT, worker_environment

HEAVY = ("torch", "transformers")

WEB_PROCESS = textwrap.dedent(
    """
    import json, sys
    from webapp.wsgi import application
    from django.urls import get_resolver, URLResolver

    def walk(patterns):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns)
            else:
                yield entry.callback

    callbacks = list(walk(get_resolver().url_patterns))
    get_resolver().reverse_dict  # builds every route, importing every view module
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
    print(json.dumps({"callbacks": len(callbacks), "heavy": heavy}))
    """
).replace("HEAVY", repr(HEAVY))

WORKER_PARENT = textwrap.dedent(
    """
    import json, sys
    from webapp.celery import app
    app.loader.import_default_modules()  # what `celery worker` imports before forking: every tasks module
    print(json.dumps({"tasks": sorted(t for t in app.tasks if not t.startswith("celery.")),
                      "heavy": sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)}))
    """
).replace("HEAVY", repr(HEAVY))


def _run_python(code: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=worker_environment(), capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def _maps_mention_torch(pid: int) -> bool:
    text = Path(f"/proc/{pid}/maps").read_text()
    return "/torch/" in text


@pytest.mark.django_db
def test_importing_the_wsgi_app_and_resolving_every_url_never_imports_torch():
    result = _run_python(WEB_PROCESS)
    assert result["callbacks"] > 10
    assert result["heavy"] == []


@pytest.mark.django_db
def test_a_worker_parent_importing_every_task_module_never_imports_torch():
    result = _run_python(WORKER_PARENT)
    assert "webapp.tasks.reap_stale_jobs" in result["tasks"]
    assert result["heavy"] == []


def test_the_torch_detector_sees_a_process_that_imported_torch():
    """Control for the check below: a process that imports torch has it in its memory map."""
    code = "import torch, sys, time; print('ready', flush=True); time.sleep(30)"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
        assert _maps_mention_torch(process.pid)
    finally:
        process.kill()
        process.wait()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_running_worker_parent_process_has_not_loaded_torch(celery_worker_process):
    time.sleep(1)  # the pool's children are forked by now; the parent must still be torch-free
    assert not _maps_mention_torch(celery_worker_process.pid)

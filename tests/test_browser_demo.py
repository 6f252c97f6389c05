"""End to end: the app started the way `make run` starts it, driven by a real headless Chromium.

Runs migrate and seed_demo, starts the Procfile.dev processes with honcho on a free port, waits for
/healthz, logs in as the demo reviewer and finds the demo project and its counts.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, NEEDS_CHROMIUM

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PASSWORD = "browser-demo-password"
# A whole app started from scratch: Chromium's own first-run and component updates stay off too.
DEMO_CHROMIUM_ARGS = [*CHROMIUM_ARGS, "--disable-component-update", "--no-first-run"]

pytestmark = [pytest.mark.browser, pytest.mark.integration, NEEDS_CHROMIUM]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_health(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"honcho exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
        finally:
            connection.close()
    raise AssertionError(f"/healthz on port {port} never answered:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def running_app(tmp_path_factory):
    """The embedded stack (web, workers, beat) on a free port with its own var dir and database."""
    var_dir = tmp_path_factory.mktemp("var")
    port = _free_port()
    env = dict(os.environ)
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY"):  # embedded defaults, like `make run`
        env.pop(name, None)
    env.update(DEBUG="1", LOOPLINE_VAR_DIR=str(var_dir), DEMO_PASSWORD=PASSWORD, PYTHONUNBUFFERED="1")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    for command in (["migrate", "--noinput"], ["seed_demo"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)
    log = var_dir / "honcho.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "honcho"), "--procfile", "Procfile.dev", "--app-root", str(ROOT), "start", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_health(port, process, log)
        yield f"http://127.0.0.1:{port}", log
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in `make run` sends
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=DEMO_CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_reviewer_logs_in_and_sees_the_demo_project_with_its_counts(running_app, browser):
    base_url, _ = running_app
    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{base_url}/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/projects/")
    link = page.get_by_role("link", name="Tweet sentiment")
    assert link.is_visible()
    link.click()
    page.wait_for_url(f"{base_url}/projects/tweet-sentiment/")
    assert page.locator("h1").first.inner_text().strip() == "Tweet sentiment"
    body = page.inner_text("body")
    assert "1,300" in body or "1300" in body, body[:2000]  # the gold-labeled train + eval items
    assert "Items" in body
    page.close()


def test_the_workers_and_beat_started_with_the_web_server(running_app):
    _, log = running_app
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if text.count(" ready.") >= 2 and "beat: Starting" in text:
            return
        time.sleep(0.5)
    raise AssertionError(f"workers or beat did not start:\n{text[-4000:]}")

"""What the headless-Chromium tests share: Debian's chromium, their marks, a tab on the live server, logging in.

Chromium is Debian's, launched by path with ``--no-sandbox`` (``playwright install`` cannot download here).
Each test module sets ``pytestmark = LIVE_MARKS`` and takes the ``chromium_page`` fixture (tests/conftest.py)
or, for another window size, opens its own with ``live_tab``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's

NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)
# A test that drives the live server (pytest-django's, in a thread) from Chromium: the server reads what the
# test wrote, so the database is committed, not rolled back per test.
LIVE_MARKS = [pytest.mark.browser, pytest.mark.django_db(transaction=True), NEEDS_CHROMIUM]


@contextmanager
def live_tab(base_url: str, *, height: int = 1000) -> Iterator[tuple[Any, str]]:
    """Yield a Chromium tab 1280 x `height` (20 s timeouts) and `base_url`; close the browser afterwards.

    The caller sets DJANGO_ALLOW_ASYNC_UNSAFE: Playwright's sync API runs an event loop in this thread, and
    the ORM calls the test makes while the tab is open are plain blocking calls all the same.
    """
    from django.db import connections
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": height})
            tab.set_default_timeout(20_000)
            yield tab, base_url
        finally:
            # Under Playwright's running event loop the ORM keeps its connection in a separate context from
            # the rest of the test; close it here, or PostgreSQL refuses to drop the test database.
            connections.close_all()
            browser.close()


def login(tab: Any, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form and wait for the project list."""
    tab.goto(f"{base_url}/accounts/login/")
    tab.fill("#id_username", username)
    tab.fill("#id_password", password)
    tab.click("main button[type=submit]")
    tab.wait_for_url(f"{base_url}/projects/")

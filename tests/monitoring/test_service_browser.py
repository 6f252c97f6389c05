"""The Service and Quality pages in a real headless Chromium: every chart with data is drawn by plotly, an
empty range says "no data" instead of an empty axis."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from labeling.models import Role
from monitoring.models import OutcomeRollup
from monitoring.services.rollups import floor_hour, floor_minute, rollup_minutes
from tests.browser import LIVE_MARKS, login
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.monitoring.traffic import error_row, log_row, save_logs

pytestmark = LIVE_MARKS

RENDERED = """(name) => {
  const el = document.querySelector('[data-figure="' + name + '"]');
  const drawn = el && el.dataset.rendered === '1' && el.querySelectorAll('.main-svg').length > 0;
  return drawn ? Number(el.dataset.points) : null;
}"""


def _project(slug: str):
    project = ProjectFactory(slug=slug)
    user = UserFactory(username=f"owner-{slug}")
    MembershipFactory(project=project, user=user, role=Role.OWNER)
    return project, user


def _traffic(project) -> None:
    now = timezone.now()
    start = floor_minute(now) - timedelta(minutes=20)
    rows = []
    for minute in range(15):
        at = start + timedelta(minutes=minute, seconds=3)
        rows += [
            log_row(project, at, latency_ms=30.0 + minute, confidence=0.9, text=f"text {minute}-{i}") for i in range(4)
        ]
        rows.append(
            log_row(project, at, version=2, route="canary", latency_ms=250.0, label="negative", confidence=0.55)
        )
    save_logs(rows)
    error_row(project, start + timedelta(minutes=2), kind="overloaded", texts=3, version_number=1, route="production")
    rollup_minutes(now=now)
    hour = floor_hour(now) - timedelta(hours=1)
    for true, predicted, count in (
        ("positive", "positive", 30),
        ("negative", "positive", 6),
        ("negative", "negative", 9),
    ):
        OutcomeRollup.objects.create(
            project=project,
            bucket_start=hour,
            version_number=1,
            language="en",
            source="audit",
            true_label=true,
            predicted_label=predicted,
            count=count,
            confidence_sum=0.8 * count,
        )


def test_service_and_quality_draw_their_charts(chromium_page):
    tab, base_url = chromium_page
    project, user = _project("watched")
    _traffic(project)
    login(tab, base_url, user.username)
    tab.goto(f"{base_url}/projects/watched/monitoring/service/?range=1h")
    for name in ("volume", "latency", "errors", "routes"):
        tab.wait_for_function(f"() => ({RENDERED})('{name}') !== null")
        assert tab.evaluate(RENDERED, name) > 0, name
    assert "No model server reporting" in tab.inner_text("#model-servers")
    tab.goto(f"{base_url}/projects/watched/monitoring/quality/?range=6h")
    for name in ("accuracy", "languages", "versions", "classes", "confusion"):
        tab.wait_for_function(f"() => ({RENDERED})('{name}') !== null")
        assert tab.evaluate(RENDERED, name) > 0, name
    assert "text " in tab.inner_text("#lowest-confidence")  # the stored texts of the last hour


def test_an_empty_project_says_no_data(chromium_page):
    tab, base_url = chromium_page
    _, user = _project("quiet")
    login(tab, base_url, user.username)
    for page in ("service", "quality"):
        tab.goto(f"{base_url}/projects/quiet/monitoring/{page}/")
        assert tab.locator("[data-figure]").count() == 0
        assert tab.locator(".chart-empty").count() >= 3

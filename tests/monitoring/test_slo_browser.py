"""The SLO and alert pages in a real headless Chromium: plotly draws the burn charts with their thresholds
after an outage, the alert list shows the page alert, and the send-test button reports a delivery."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from labeling.models import Role
from monitoring.buckets import LATENCY_EDGES_MS
from monitoring.models import MinuteRollup, NotificationChannel, ServiceObjective
from monitoring.services.slo import slo_evaluate
from tests.browser import LIVE_MARKS, login
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.monitoring.test_notifications import Receiver

pytestmark = LIVE_MARKS

DRAWN = """(name) => {
  const el = document.querySelector('[data-figure="' + name + '"]');
  return el && el.data ? [el.data.length, el.querySelectorAll('.main-svg').length > 0] : null;
}"""


def test_burn_charts_alert_list_and_send_test(chromium_page):
    tab, base_url = chromium_page
    project = ProjectFactory(slug="burning", labels=["a", "b"])
    user = UserFactory(username="slo-owner")
    MembershipFactory(project=project, user=user, role=Role.OWNER)
    ServiceObjective.objects.create(project=project, availability_target=0.999)
    end = timezone.now().replace(second=0, microsecond=0)
    hist = [0] * (len(LATENCY_EDGES_MS) + 1)
    hist[2] = 100
    MinuteRollup.objects.bulk_create(
        [
            MinuteRollup(
                project=project,
                bucket_start=end - timedelta(minutes=i),
                version_number=1,
                route="production",
                predictions=0 if i <= 3 else 100,
                error_count=100 if i <= 3 else 0,
                latency_hist=[0] * len(hist) if i <= 3 else hist,
            )
            for i in range(1, 240)
        ]
    )
    slo_evaluate(project=project)

    login(tab, base_url, user.username)
    tab.goto(f"{base_url}/projects/burning/monitoring/slo/?range=6h")
    tab.wait_for_function(f"() => ({DRAWN})('burn_availability') && ({DRAWN})('burn_latency')")
    assert tab.evaluate(DRAWN, "burn_availability") == [4, True]
    assert tab.locator('[data-figure="burn_availability"] .shapelayer path').count() == 4  # the thresholds
    assert "firing" in tab.inner_text('table.policy-table[data-slo="availability"]')

    with Receiver([]) as receiver:
        channel = NotificationChannel.objects.create(project=project, kind="webhook", name="hook", target=receiver.url)
        tab.goto(f"{base_url}/projects/burning/monitoring/alerts/")
        assert tab.locator('tr[data-alert="burn:availability:page:v1"][data-state="firing"]').count() == 1
        tab.locator(f'tr[data-channel="{channel.pk}"] button', has_text="Send test").click()
        tab.wait_for_selector(".messages")
        assert "Test notification delivered to 'hook'." in tab.inner_text(".messages")
        assert receiver.bodies[-1]["json"]["event"] == "test"

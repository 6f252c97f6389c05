"""Notifications: webhook delivery with retries against a real local HTTP server, e-mail through Django's
mail (locmem outbox), the send-test button and API, and channel validation."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail
from django.urls import reverse

from monitoring.models import Alert, Notification, NotificationChannel
from monitoring.services.alerts import alert_fire, alert_resolve
from monitoring.services.notifications import (
    BACKOFF_BASE_SECONDS,
    NOTIFICATION_MAX_ATTEMPTS,
    alert_message,
    backoff_seconds,
)
from monitoring.tasks.alerts import deliver_notification

pytestmark = pytest.mark.django_db


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers the scripted statuses in turn, then 200."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(
                    {"json": json.loads(self.rfile.read(length)), "type": self.headers["Content-Type"]}
                )
                code = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok" if code == 200 else b"try later")

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver([500]) as r:  # the first attempt fails, the second succeeds
        yield r


def _page(project):
    return alert_fire(
        project=project,
        key="burn:availability:page:v1",
        kind="burn",
        severity="page",
        title="Availability error budget burning fast on v1",
        evidence={"burn_long": 16.7, "links": [{"label": "SLO burn chart", "url": "/x/"}]},
        version_number=1,
    )


def test_webhook_delivery_retries_after_a_failure_and_records_the_attempts(project, receiver):
    channel = NotificationChannel.objects.create(project=project, kind="webhook", name="slack", target=receiver.url)
    alert = _page(project)
    notification = Notification.objects.get(alert=alert, channel=channel)
    assert notification.status == "pending" and notification.attempts == 0

    # Run the real task eagerly: Celery runs its retry eagerly too (countdown skipped).
    deliver_notification.apply(args=[notification.pk])
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("delivered", 2)
    assert "HTTP Error 500" in notification.last_error  # the failed first attempt stays on record
    assert len(receiver.bodies) == 2
    body = receiver.bodies[-1]
    assert body["type"] == "application/json"
    assert body["json"]["text"] == "[acme-sentiment] FIRING page: Availability error budget burning fast on v1 (v1)"
    assert body["json"]["alert"]["key"] == "burn:availability:page:v1"
    assert body["json"]["alert"]["evidence"]["burn_long"] == 16.7
    assert body["json"]["alert"]["url"] == "/projects/acme-sentiment/monitoring/slo/"
    assert "body" not in body["json"]

    # A redelivered message (acks_late) finds it delivered and sends nothing.
    deliver_notification.apply(args=[notification.pk])
    assert len(receiver.bodies) == 2


def test_a_webhook_that_keeps_failing_is_marked_failed_after_the_last_attempt(project):
    with Receiver([503] * 10) as receiver:
        NotificationChannel.objects.create(project=project, kind="webhook", name="down", target=receiver.url)
        notification = Notification.objects.get(alert=_page(project))
        deliver_notification.apply(args=[notification.pk])
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("failed", NOTIFICATION_MAX_ATTEMPTS)
    assert "HTTP Error 503" in notification.last_error
    assert len(receiver.bodies) == NOTIFICATION_MAX_ATTEMPTS


def test_backoff_is_exponential():
    assert [backoff_seconds(n) for n in (1, 2, 3, 4)] == [BACKOFF_BASE_SECONDS * f for f in (1, 2, 4, 8)]


def test_email_channel_delivers_fired_and_resolved_through_django_mail(project, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    NotificationChannel.objects.create(
        project=project, kind="email", name="oncall", target="a@example.com, b@example.com"
    )
    alert = _page(project)
    alert_resolve(project=project, key=alert.key)
    for notification in Notification.objects.filter(alert=alert).order_by("pk"):
        deliver_notification.apply(args=[notification.pk])
    assert [m.subject for m in mail.outbox] == [
        "[acme-sentiment] FIRING page: Availability error budget burning fast on v1 (v1)",
        "[acme-sentiment] RESOLVED page: Availability error budget burning fast on v1 (v1)",
    ]
    assert mail.outbox[0].to == ["a@example.com", "b@example.com"]
    assert "burn_long: 16.7" in mail.outbox[0].body
    assert "/projects/acme-sentiment/monitoring/slo/" in mail.outbox[0].body
    assert set(Notification.objects.values_list("status", flat=True)) == {"delivered"}


def test_send_test_button_delivers_now_and_says_so(project, owner, client_for, receiver):
    channel = NotificationChannel.objects.create(project=project, kind="webhook", name="hook", target=receiver.url)
    client = client_for(owner)
    url = reverse("monitoring:channel-test", kwargs={"slug": project.slug, "channel_id": channel.pk})
    first = client.post(url, follow=True)  # the receiver fails the first request
    assert "failed: HTTPError: HTTP Error 500" in first.content.decode()
    second = client.post(url, follow=True)
    assert "Test notification delivered to &#x27;hook&#x27;." in second.content.decode()
    assert receiver.bodies[-1]["json"]["event"] == "test"
    assert receiver.bodies[-1]["json"]["text"] == "[acme-sentiment] Test notification from Loopline"
    assert list(Notification.objects.filter(channel=channel).order_by("pk").values_list("status", "attempts")) == [
        ("failed", 1),
        ("delivered", 1),
    ]


def test_send_test_api_reports_an_unreachable_webhook(project, owner, api_client_for):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    channel = NotificationChannel.objects.create(
        project=project, kind="webhook", name="nowhere", target=f"http://127.0.0.1:{port}/"
    )
    response = api_client_for(owner).post(
        reverse("api-alert-channel-test", kwargs={"slug": project.slug, "channel_id": channel.pk})
    )
    assert response.status_code == 200
    assert response.json()["status"] == "failed" and "Connection refused" in response.json()["last_error"]


def test_send_test_api_emails_the_channel(project, owner, api_client_for, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client = api_client_for(owner)
    created = client.post(
        reverse("api-alert-channels", kwargs={"slug": project.slug}),
        {"kind": "email", "name": "team", "target": "team@example.com", "min_severity": "page"},
        format="json",
    )
    assert created.status_code == 201, created.content
    response = client.post(
        reverse("api-alert-channel-test", kwargs={"slug": project.slug, "channel_id": created.json()["id"]})
    )
    assert response.json()["status"] == "delivered"
    assert mail.outbox[0].subject == "[acme-sentiment] Test notification from Loopline"
    assert mail.outbox[0].to == ["team@example.com"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "webhook", "name": "x", "target": "file:///etc/passwd"}, "must start with http:// or https://"),
        ({"kind": "webhook", "name": "x", "target": "javascript:alert(1)"}, "must start with http:// or https://"),
        ({"kind": "webhook", "name": "x", "target": "https://"}, "name a host"),
        ({"kind": "email", "name": "x", "target": "ops@example.com, not-an-address"}, "is not an e-mail address"),
        ({"kind": "email", "name": " ", "target": "ops@example.com"}, "name"),
    ],
)
def test_bad_channels_are_refused_and_nothing_is_created(project, owner, api_client_for, body, message):
    response = api_client_for(owner).post(
        reverse("api-alert-channels", kwargs={"slug": project.slug}), body, format="json"
    )
    assert response.status_code == 400
    assert message in json.dumps(response.json())
    assert not NotificationChannel.objects.exists()


def test_channel_page_add_and_remove(project, owner, client_for):
    client = client_for(owner)
    alerts_url = reverse("monitoring:alerts", kwargs={"slug": project.slug})
    response = client.post(
        reverse("monitoring:channel-add", kwargs={"slug": project.slug}),
        {"kind": "webhook", "name": "ops", "target": "ftp://example.com/", "min_severity": "page"},
    )
    assert response.status_code == 400 and "must start with http:// or https://" in response.content.decode()
    assert not NotificationChannel.objects.exists()
    response = client.post(
        reverse("monitoring:channel-add", kwargs={"slug": project.slug}),
        {"kind": "webhook", "name": "ops", "target": "https://hooks.example.com/T1", "min_severity": "page"},
    )
    assert response.status_code == 302 and response["Location"] == alerts_url
    channel = NotificationChannel.objects.get()
    assert (channel.kind, channel.min_severity, channel.created_by) == ("webhook", "page", owner)
    page = client.get(alerts_url).content.decode()
    assert "https://hooks.example.com/T1" in page and "pages only" in page
    client.post(reverse("monitoring:channel-remove", kwargs={"slug": project.slug, "channel_id": channel.pk}))
    assert not NotificationChannel.objects.exists()


def test_reviewers_see_alerts_but_not_channel_targets(project, reviewer, client_for):
    NotificationChannel.objects.create(project=project, kind="webhook", name="s", target="https://secret.example/T")
    _page(project)
    page = client_for(reviewer).get(reverse("monitoring:alerts", kwargs={"slug": project.slug})).content.decode()
    assert "Availability error budget burning fast" in page
    assert "secret.example" not in page and "Add a channel" not in page
    assert Alert.objects.count() == 1


def test_alert_links_are_absolute_under_the_public_base_url(project, settings):
    settings.PUBLIC_BASE_URL = "https://loopline.example.com"
    alert = _page(project)
    message = alert_message(alert=alert, event="fired")
    assert message.payload["alert"]["url"] == "https://loopline.example.com/projects/acme-sentiment/monitoring/slo/"
    assert "Details: https://loopline.example.com/projects/acme-sentiment/monitoring/slo/" in message.text

"""The alert lifecycle: fire once per key, update while firing, upgrade, resolve, sync; race safety."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from monitoring.models import Alert, Notification, NotificationChannel
from monitoring.services.alerts import AlertSpec, alert_fire, alert_resolve, alerts_sync
from tests.conftest import requires_postgres
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def _fire(project, key="burn:availability:page:v1", severity="page", now=None, **extra):
    return alert_fire(
        project=project,
        key=key,
        kind="burn",
        severity=severity,
        title="Availability budget burning",
        evidence={"burn_1h": 20.0, **extra},
        version_number=1,
        now=now,
    )


@pytest.fixture
def channels(project):
    return {
        "all": NotificationChannel.objects.create(project=project, kind="email", name="all", target="a@example.com"),
        "pages": NotificationChannel.objects.create(
            project=project, kind="email", name="pages", target="p@example.com", min_severity="page"
        ),
        "off": NotificationChannel.objects.create(
            project=project, kind="email", name="off", target="o@example.com", enabled=False
        ),
    }


def test_firing_twice_keeps_one_alert_and_notifies_once(project, channels):
    t0 = timezone.now()
    first = _fire(project, now=t0)
    second = _fire(project, now=t0 + timedelta(minutes=1), burn_1h=30.0)
    assert first.pk == second.pk
    assert Alert.objects.filter(project=project).count() == 1
    second.refresh_from_db()
    assert second.last_seen_at == t0 + timedelta(minutes=1)
    assert second.started_at == t0
    assert second.evidence["burn_1h"] == 30.0
    sent = Notification.objects.filter(alert=first)
    assert sorted(n.channel.name for n in sent) == ["all", "pages"]  # the disabled channel gets nothing
    assert {n.event for n in sent} == {"fired"}


def test_ticket_reaches_only_channels_that_take_tickets_and_an_upgrade_notifies_again(project, channels):
    alert = _fire(project, key="drift:v1", severity="ticket")
    assert [n.channel.name for n in Notification.objects.filter(alert=alert)] == ["all"]
    upgraded = _fire(project, key="drift:v1", severity="page")
    assert upgraded.pk == alert.pk and upgraded.severity == "page"
    assert Notification.objects.filter(alert=alert).count() == 3  # all (ticket), all + pages (upgrade)
    # Easing back to ticket level keeps the incident a page and notifies nobody.
    eased = _fire(project, key="drift:v1", severity="ticket")
    assert eased.severity == "page"
    assert Notification.objects.filter(alert=alert).count() == 3


def test_resolve_closes_the_alert_notifies_and_a_new_incident_gets_a_new_row(project, channels):
    alert = _fire(project)
    resolved = alert_resolve(project=project, key=alert.key)
    assert resolved is not None and resolved.state == "resolved" and resolved.resolved_at is not None
    assert Notification.objects.filter(alert=alert, event="resolved").count() == 2
    assert alert_resolve(project=project, key=alert.key) is None  # nothing firing any more
    again = _fire(project)
    assert again.pk != alert.pk and again.state == "firing"
    assert Alert.objects.filter(project=project, key=alert.key).count() == 2


def test_sync_fires_the_given_keys_and_resolves_the_rest_of_its_kind_and_prefix(project):
    other = ProjectFactory(slug="other-one")
    spec = AlertSpec(severity="page", title="t", evidence={}, version_number=1)
    alerts_sync(project=project, kind="burn", firing={"burn:a": spec, "burn:b": spec})
    alert_fire(project=project, key="drift:x", kind="drift", severity="ticket", title="d", evidence={})
    alert_fire(project=other, key="burn:a", kind="burn", severity="page", title="t", evidence={})
    alert_fire(project=project, key="slo:quality:v1", kind="accuracy", severity="page", title="q", evidence={})
    alert_fire(project=project, key="accuracy:v1", kind="accuracy", severity="page", title="a", evidence={})

    alerts_sync(project=project, kind="burn", firing={"burn:b": spec})
    firing = set(Alert.objects.filter(state="firing").values_list("project__slug", "key"))
    assert firing == {
        ("acme-sentiment", "burn:b"),
        ("acme-sentiment", "drift:x"),  # another kind
        ("other-one", "burn:a"),  # another project
        ("acme-sentiment", "slo:quality:v1"),
        ("acme-sentiment", "accuracy:v1"),
    }
    # The quality SLO owns only its prefix: the accuracy monitor's own alert stays firing.
    alerts_sync(project=project, kind="accuracy", firing={}, key_prefix="slo:quality:")
    assert not Alert.objects.filter(key="slo:quality:v1", state="firing").exists()
    assert Alert.objects.filter(key="accuracy:v1", state="firing").exists()
    with pytest.raises(ValueError, match="prefix"):
        alerts_sync(project=project, kind="accuracy", firing={"accuracy:v2": spec}, key_prefix="slo:quality:")


def test_unknown_kind_or_severity_is_refused(project):
    with pytest.raises(ValueError, match="kind"):
        alert_fire(project=project, key="k", kind="weather", severity="page", title="t", evidence={})
    with pytest.raises(ValueError, match="severity"):
        alert_fire(project=project, key="k", kind="burn", severity="urgent", title="t", evidence={})
    assert not Alert.objects.exists()


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_evaluators_firing_at_once_create_one_alert():
    project = ProjectFactory(slug="race")
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def evaluator() -> None:
        try:
            barrier.wait()
            for _ in range(5):
                _fire(project, key="burn:race")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection; free it for teardown

    threads = [threading.Thread(target=evaluator) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Alert.objects.filter(project=project, key="burn:race").count() == 1

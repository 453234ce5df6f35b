"""The send task reads what it renders for its whole batch at once: its statements do not grow with
the number of messages in it, and each message is the one its row would get rendered alone (the
tenant's own wording and brand, the alert's newest evidence, the event a per-event notice tells,
the alerts a coalesced message tells of)."""

import re

import pytest
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from alerts.models import Alert, Notification, OutboxMessage
from alerts.notifications import content
from alerts.notifications.content import message_render
from alerts.notifications.models import State
from alerts.notifications.services import notifications_send
from alerts.notifications.template_services import message_settings_save, notification_template_save
from alerts.notifications.tests.helpers import T0, account, backends, feed

pytestmark = pytest.mark.django_db

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
CHANNELS = {"email": True, "sms": True}
LINK = re.compile(r"/r/[^/\s]+/")


@pytest.fixture
def tenants(tenant_a, tenant_b, monkeypatch):
    """Tenant A with its own SMS wording of a password change; tenant B speaking from Paris. Alerts
    say what their 2 newest events tell (20 in production), so a third event is an older one."""
    monkeypatch.setattr(content, "EVIDENCE_READ", 2)
    notification_template_save(
        tenant=tenant_a, actor=None, alert_type="password", channel="sms", locale="en", subject="",
        body="{tenant} says: password changed {when}. Not you? {link} We never ask for a code or password.",
    )  # fmt: skip
    message_settings_save(tenant=tenant_b, actor=None, display_name="Bank B", time_zone="Europe/Paris")
    return tenant_a, tenant_b


def _scene(tenants, units: int, prefix: str = "") -> None:
    """`units` times, alternating tenants: a password change (with device and place), a coalesced
    login (a new device and a new network: one message for two alerts), and a recovery told three
    times (each event its own message; the first is older than the 2 newest)."""
    for i in range(units):  # the devices and places these customers are known on
        feed(tenants[i % 2], "login.succeeded", account_=account(f"{prefix}l{i}", channels=CHANNELS), ip="8.8.8.8",
             device_id="d1")  # fmt: skip
    Notification.objects.all().delete()
    Alert.objects.all().delete()
    for i in range(units):
        tenant = tenants[i % 2]
        feed(tenant, "password.changed", minutes=1, account_=account(f"{prefix}p{i}", channels=CHANNELS),
             user_agent=CHROME, geo={"country": "FR", "city": "Lyon"}, initiated_by="user")  # fmt: skip
        feed(tenant, "login.succeeded", minutes=600, account_=account(f"{prefix}l{i}", channels=CHANNELS),
             ip="81.2.69.160", device_id="d2")  # fmt: skip
        for minutes in (20, 30, 40):
            feed(tenant, "recovery.requested", minutes=minutes, account_=account(f"{prefix}r{i}", channels=CHANNELS))


def _send_all() -> tuple[int, int]:
    ids = list(Notification.objects.filter(state=State.QUEUED).values_list("pk", flat=True))
    with TestCase.captureOnCommitCallbacks(execute=True), CaptureQueriesContext(connection) as statements:
        report = notifications_send(notification_ids=ids)
    assert report.handed == len(ids) and report.failed == 0
    return len(ids), len(statements)


def test_the_statements_of_a_send_do_not_grow_with_its_messages(tenants):
    with backends():
        _scene(tenants, 1)
        few, few_statements = _send_all()
        Notification.objects.update(state=State.DELIVERED)  # the next send has only the new rows
        _scene(tenants, 4, "again-")
        many, many_statements = _send_all()
    assert many >= 4 * few > 0
    assert many_statements == few_statements <= 12, (few_statements, many_statements)


def test_each_message_of_a_batch_is_the_one_its_row_gets_alone(tenants):
    with backends():
        _scene(tenants, 2)
        sent, _ = _send_all()
        assert OutboxMessage.objects.count() == sent
        rows = Notification.objects.select_related("tenant", "alert", "customer")
        for message in OutboxMessage.objects.select_related("notification"):
            alone = message_render(notification=rows.get(pk=message.notification_id))
            assert (message.subject, LINK.sub("/r/-/", message.body)) == (alone.subject, LINK.sub("/r/-/", alone.body))

    # And what they say is each one's own: the tenant's wording, brand and zone, the event told.
    def body(tenant, rule, channel, **more):
        return OutboxMessage.objects.get(
            notification__tenant=tenant, notification__alert__rule=rule, notification__channel=channel,
            notification__alert__customer__external_id__startswith=more.pop("customer", ""), **more,
        ).body  # fmt: skip

    tenant_a, tenant_b = tenants
    assert body(tenant_a, "password_change", "sms").startswith("Tenant A says: password changed")
    assert not body(tenant_b, "password_change", "sms").startswith("Bank B says")
    assert "Bank B" in body(tenant_b, "password_change", "sms")
    assert "Chrome on Windows" in body(tenant_a, "password_change", "email") and "Lyon" in body(
        tenant_a, "password_change", "email"
    )
    recovery = Alert.objects.get(tenant=tenant_a, rule="recovery")
    first = recovery.evidence.order_by("occurred_at").first()
    told_first = body(tenant_a, "recovery", "email", notification__event_ref=first.pk)
    assert f"{first.occurred_at:%H:%M} UTC" in told_first  # the older event, not the newest
    assert f"{T0:%d}" in told_first
    coalesced = OutboxMessage.objects.filter(notification__tenant=tenant_b, channel="email",
                                             notification__bundle__isnull=False).get()  # fmt: skip
    assert "a device not seen before and a sign-in from a place not seen before" in coalesced.body


def test_a_row_that_cannot_be_rendered_fails_alone_not_its_batch(tenants):
    with backends():
        _scene(tenants, 1)
        broken = Notification.objects.filter(state=State.QUEUED, alert__rule="password_change").first()
        Notification.objects.filter(pk=broken.pk).update(alert=None)  # written around the services
        ids = list(Notification.objects.filter(state=State.QUEUED).values_list("pk", flat=True))
        with TestCase.captureOnCommitCallbacks(execute=True):
            report = notifications_send(notification_ids=ids)
    assert (report.handed, report.failed) == (len(ids), 1)
    broken.refresh_from_db()
    assert (broken.state, broken.error) == (State.FAILED, "render_ValueError")
    assert OutboxMessage.objects.count() == len(ids) - 1

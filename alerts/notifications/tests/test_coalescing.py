"""One login raising two alerts (a new device and a new network) tells the customer once per channel:
each alert keeps its rows (the desk sees both), one message says both, and its answer is each
alert's (a "No" escalates both and opens the case with both; a "Yes" resolves both)."""

from datetime import timedelta

import pytest
from django.test import TestCase

from alerts.models import Alert, AlertStatus, Notification, OutboxMessage, Severity
from alerts.notifications.answers import alerts_escalate_unanswered, notification_answer
from alerts.notifications.models import State
from alerts.notifications.tests.helpers import account, answer_link_of, backends, feed, send_all
from alerts.signals import alert_disowned

pytestmark = pytest.mark.django_db

CHANNELS = {"email": True, "sms": True}


def _two_alerts(tenant):
    """A customer known on one device in the US, then a login on another device from the UK."""
    feed(tenant, "login.succeeded", account_=account(channels=CHANNELS), ip="8.8.8.8", device_id="d1")
    Notification.objects.all().delete()
    Alert.objects.all().delete()
    feed(tenant, "login.succeeded", minutes=600, account_=account(channels=CHANNELS), ip="81.2.69.160", device_id="d2")
    alerts = {a.rule: a for a in Alert.objects.all()}
    assert set(alerts) == {"new_device", "new_location"}
    return alerts


def test_each_channel_gets_one_message_and_each_alert_keeps_its_rows(tenant_a):
    alerts = _two_alerts(tenant_a)
    rows = list(Notification.objects.order_by("channel", "alert_id"))
    assert {r.alert_id for r in rows} == {a.pk for a in alerts.values()}
    by_channel: dict[str, list] = {}
    for row in rows:
        by_channel.setdefault(row.channel, []).append((row.state, row.error))
    assert by_channel == {c: [(State.QUEUED, ""), (State.SKIPPED, "coalesced")] for c in ("email", "sms")} or (
        by_channel == {c: [(State.SKIPPED, "coalesced"), (State.QUEUED, "")] for c in ("email", "sms")}
    )
    assert len({r.bundle for r in rows}) == 1 and rows[0].bundle is not None
    queued = [r for r in rows if r.state == State.QUEUED]
    assert len({r.alert_id for r in queued}) == 1  # the same alert leads on every channel
    with backends():
        send_all()
    assert OutboxMessage.objects.count() == 2  # one e-mail, one SMS: not four
    email = OutboxMessage.objects.get(channel="email")
    assert "a sign-in from a device not seen before and a sign-in from a place not seen before" in email.body
    assert answer_link_of(email.body).alert_id in {a.pk for a in alerts.values()}


def test_a_no_to_the_one_message_is_each_alerts_no(tenant_a):
    alerts = _two_alerts(tenant_a)
    with backends():
        send_all()
    sent = Notification.objects.get(channel="sms", state__in=[State.DELIVERED, State.SENT])
    disowned = []

    def receiver(sender, *, alert_id, **kwargs):
        disowned.append(alert_id)

    alert_disowned.connect(receiver, dispatch_uid="test-coalesced-no")
    try:
        with TestCase.captureOnCommitCallbacks(execute=True):
            notification_answer(notification_id=sent.pk, answer="no", via="sms")
    finally:
        alert_disowned.disconnect(dispatch_uid="test-coalesced-no")
    assert sorted(disowned) == sorted(a.pk for a in alerts.values())
    for alert in alerts.values():
        alert.refresh_from_db()
        assert alert.severity == Severity.CRITICAL
    assert not Notification.objects.filter(answered_at__isnull=True).exists()  # every link of both closed


def test_a_yes_resolves_both(tenant_a):
    alerts = _two_alerts(tenant_a)
    with backends():
        send_all()
    sent = Notification.objects.get(channel="email", state=State.DELIVERED)
    notification_answer(notification_id=sent.pk, answer="yes", via="link")
    assert {a.status for a in Alert.objects.filter(pk__in=[a.pk for a in alerts.values()])} == {AlertStatus.RESOLVED}


def test_no_answer_escalates_the_alert_told_by_the_other_ones_message(tenant_a):
    alerts = _two_alerts(tenant_a)
    with backends():
        send_all()
    Notification.objects.filter(sent_at__isnull=False).update(
        sent_at=Notification.objects.filter(sent_at__isnull=False).first().sent_at - timedelta(hours=2)
    )
    raised = alerts_escalate_unanswered()
    assert sorted(raised) == sorted(a.pk for a in alerts.values())


def test_alerts_of_different_customers_are_not_coalesced(tenant_a):
    feed(tenant_a, "mfa.disabled", account_=account("alice", channels={"email": True}))
    feed(tenant_a, "mfa.disabled", account_=account("bob", channels={"email": True}))
    assert set(Notification.objects.values_list("state", "bundle")) == {(State.QUEUED, None)}


def test_a_fold_that_repeats_a_message_never_silences_a_new_alert(tenant_a):
    """A critical alert folding again in the chunk would be told nothing new (its rows exist): its
    rows are not coalesced, so the new alert beside it is told."""
    from datetime import UTC, datetime

    from alerts.detection import events_process
    from alerts.services import events_ingest
    from alerts.validation import validate_event

    feed(tenant_a, "mfa.disabled", account_=account(channels={"email": True}))
    raws = [
        {"id": "fold-1", "type": "mfa.disabled", "occurred_at": "2026-11-20T09:05:00+00:00",
         "account": account(channels={"email": True}), "context": {}},
        {"id": "new-1", "type": "password.changed", "occurred_at": "2026-11-20T09:06:00+00:00",
         "account": account(channels={"email": True}), "context": {}},
    ]  # fmt: skip
    now = datetime(2026, 11, 21, tzinfo=UTC)
    _, _, ids = events_ingest(tenant=tenant_a, events=[validate_event(r, now=now) for r in raws])
    events_process(event_ids=ids)
    password = Notification.objects.get(alert__type="password", channel="email")
    assert (password.state, password.bundle) == (State.QUEUED, None)
    assert Notification.objects.filter(alert__type="two_factor", channel="email").count() == 1

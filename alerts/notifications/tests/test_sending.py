"""Sending: exactly once to the backend, retries with backoff, fallback, rows in doubt, the relay,
the global rate limit, and the delivery window."""

from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from alerts.models import Notification, NotificationSettings, OutboxMessage
from alerts.notifications import services
from alerts.notifications.channels import PermanentFailure, TemporaryFailure
from alerts.notifications.models import State
from alerts.notifications.tests.backends import ScriptedBackend
from alerts.notifications.tests.helpers import OUTBOX, account, answer_link_of, backends, feed, send_all

pytestmark = pytest.mark.django_db
TESTS = "alerts.notifications.tests.backends"


@pytest.fixture(autouse=True)
def _fresh_script():
    ScriptedBackend.script, ScriptedBackend.calls = [], []


class TestOutbox:
    def test_each_message_reaches_the_outbox_once_and_is_delivered(self, tenant_a):
        feed(tenant_a, "password.changed", account_=account(channels={"email": True, "sms": True}))
        report = send_all()
        assert report.handed == 2
        email = OutboxMessage.objects.get(channel="email")
        row = email.notification
        assert (email.recipient, email.idempotency_key) == ("jane.doe@example.com", row.idempotency_key)
        assert answer_link_of(email.body) == row and "never ask" in email.body
        assert (row.state, row.provider, row.attempts) == (State.DELIVERED, "outbox", 1)
        assert row.handed_at == row.sent_at == row.delivered_at is not None
        assert send_all().handed == 0  # again: nothing more
        assert OutboxMessage.objects.count() == 2

    def test_a_row_waiting_for_quiet_hours_is_not_sent_yet(self, tenant_a):
        feed(tenant_a, "password.changed", account_=account(channels={"email": True}))
        Notification.objects.update(not_before=timezone.now() + timedelta(hours=1))
        assert send_all().handed == 0
        Notification.objects.update(not_before=timezone.now() - timedelta(seconds=1))
        assert send_all().handed == 1

    def test_a_claimed_row_is_never_handed_again(self, tenant_a):
        feed(tenant_a, "password.changed", account_=account(channels={"email": True}))
        Notification.objects.update(handed_at=timezone.now())
        assert send_all().handed == 0 and OutboxMessage.objects.count() == 0

    def test_a_message_that_cannot_be_rendered_fails_its_row_only(self, tenant_a, monkeypatch, no_tasks):
        from alerts.notifications import content

        feed(tenant_a, "password.changed", account_=account(channels={"email": True, "sms": True}))
        real = content.message_render

        def render(*, notification, **kwargs):
            if notification.channel == "sms":
                raise KeyError("template")
            return real(notification=notification, **kwargs)

        monkeypatch.setattr(services, "message_render", render)
        send_all()
        assert dict(Notification.objects.values_list("channel", "state")) == {"email": "delivered", "sms": "failed"}
        assert Notification.objects.get(channel="sms").error == "render_KeyError"


class TestRetries:
    def test_a_temporary_failure_is_retried_later_with_the_same_key(self, tenant_a, no_tasks):
        with backends(email=f"{TESTS}.ScriptedBackend"):
            feed(tenant_a, "password.changed", account_=account(channels={"email": True}))
            ScriptedBackend.script = [TemporaryFailure("http_503")]
            report = send_all()
            row = Notification.objects.get()
            assert (row.state, row.handed_at, row.attempts, row.error) == (State.QUEUED, None, 1, "http_503")
            assert timezone.now() < row.next_attempt_at <= timezone.now() + timedelta(seconds=3)
            assert list(report.deferred) == [row.pk] and no_tasks == [[row.pk]]
            assert send_all().handed == 0  # not due yet
            Notification.objects.update(next_attempt_at=timezone.now())
            send_all()
        row.refresh_from_db()
        assert (row.state, row.attempts, row.provider_message_id) == (State.SENT, 2, f"SM{row.pk}")
        keys = [key for _, key, _ in ScriptedBackend.calls]
        assert keys == [row.idempotency_key, row.idempotency_key]

    def test_backoff_grows_with_jitter_and_is_capped(self):
        waits = [services.backoff_seconds(n) for n in range(1, 12) for _ in range(20)]
        assert all(0.5 <= w <= services.BACKOFF_MAX for w in waits)
        assert max(services.backoff_seconds(2) for _ in range(50)) <= 4
        assert len({round(w, 3) for w in waits}) > 100  # jittered

    def test_after_the_last_attempt_the_row_fails_and_the_next_channel_is_tried(self, tenant_a, no_tasks):
        with backends(sms=f"{TESTS}.ScriptedBackend"):
            feed(tenant_a, "password.changed", account_=account(channels={"sms": True, "email": True}))
            ScriptedBackend.script = [TemporaryFailure("http_503")] * services.MAX_ATTEMPTS
            for _ in range(services.MAX_ATTEMPTS):
                Notification.objects.update(next_attempt_at=None)
                send_all()
        sms = Notification.objects.get(channel="sms", fallback_of__isnull=True)
        assert (sms.state, sms.attempts, sms.error) == (State.FAILED, services.MAX_ATTEMPTS, "http_503")
        assert len(ScriptedBackend.calls) == services.MAX_ATTEMPTS


class TestFallback:
    def test_a_permanent_failure_tries_the_next_channel_in_the_tenants_order(self, tenant_a, no_tasks):
        NotificationSettings.objects.create(tenant=tenant_a, channel_order=["sms", "voice", "email", "push"])
        with backends(sms=f"{TESTS}.ScriptedBackend"):
            feed(tenant_a, "password.changed", account_=account(channels={"sms": True}))
            ScriptedBackend.script = [PermanentFailure("twilio_21211")]
            send_all()
        sms = Notification.objects.get(channel="sms")
        fallback = Notification.objects.get(fallback_of=sms)
        assert (sms.state, sms.error) == (State.FAILED, "twilio_21211")
        assert (fallback.channel, fallback.state, fallback.purpose) == ("voice", State.QUEUED, "alert")
        assert fallback.recipient == "+14155550100" and no_tasks[-1] == [fallback.pk]

    def test_a_channel_the_customer_turned_off_is_not_a_fallback_unless_critical(self, tenant_a, no_tasks):
        with backends(email=f"{TESTS}.ScriptedBackend"):
            channels = {"email": True, "sms": False, "voice": False, "push": False}
            feed(tenant_a, "password.changed", account_=account(channels=channels))
            ScriptedBackend.script = [PermanentFailure("smtp_recipient_refused")]
            send_all()
        assert Notification.objects.count() == 1

    def test_no_fallback_once_a_message_of_the_alert_was_delivered(self, tenant_a, no_tasks):
        with backends(sms=f"{TESTS}.ScriptedBackend"):
            feed(tenant_a, "password.changed", account_=account(channels={"sms": True, "email": True}))
            ScriptedBackend.script = [PermanentFailure("twilio_21211")]
            send_all()
        assert Notification.objects.filter(fallback_of__isnull=False).count() == 0

    def test_a_row_falls_back_once(self, tenant_a, no_tasks):
        feed(tenant_a, "password.changed", account_=account(channels={"sms": True}))
        row = Notification.objects.get()
        Notification.objects.update(state=State.FAILED)
        assert services.notification_fall_back(notification_id=row.pk) is not None
        assert services.notification_fall_back(notification_id=row.pk) is None

    def test_not_delivered_within_the_window_tries_the_next_channel(self, tenant_a, no_tasks):
        NotificationSettings.objects.create(tenant=tenant_a, delivery_window_minutes=5)
        with backends(sms=f"{TESTS}.IdempotentBackend"):
            feed(tenant_a, "password.changed", account_=account(channels={"sms": True}))
            send_all()
        sms = Notification.objects.get()
        assert (sms.state, sms.receipt_expected) == (State.SENT, True)
        now = timezone.now()
        assert services.notifications_fall_back_undelivered(now=now + timedelta(minutes=4)) == 0
        assert services.notifications_fall_back_undelivered(now=now + timedelta(minutes=6)) == 1
        services.notifications_fall_back_undelivered(now=now + timedelta(minutes=7))
        assert Notification.objects.get(fallback_of=sms).channel == "email"  # once

    def test_sent_to_a_provider_that_tells_no_delivery_does_not_fall_back(self, tenant_a, no_tasks):
        with backends(email=f"{TESTS}.NotIdempotentBackend"):
            feed(tenant_a, "password.changed", account_=account(channels={"email": True}))
            send_all()
        assert Notification.objects.get().state == State.SENT
        assert services.notifications_fall_back_undelivered(now=timezone.now() + timedelta(hours=1)) == 0


class TestInDoubtAndRelay:
    def test_a_lost_task_is_queued_again_by_the_relay(self, tenant_a, no_tasks):
        feed(tenant_a, "password.changed", account_=account(channels={"email": True}))
        row = Notification.objects.get()
        assert services.notifications_relay(now=timezone.now()) == (0, 0)  # too young: its task may run
        assert services.notifications_relay(now=timezone.now() + timedelta(minutes=2)) == (1, 0)
        assert no_tasks == [[row.pk]]

    def test_an_unknown_error_from_a_provider_without_idempotency_fails_in_doubt(self, tenant_a, no_tasks):
        with backends(email=f"{TESTS}.NotIdempotentBackend"):
            feed(tenant_a, "password.changed", account_=account(channels={"email": True}))
            ScriptedBackend.script = [TimeoutError()]
            send_all()
        row = Notification.objects.get(fallback_of__isnull=True)
        assert (row.state, row.error) == (State.FAILED, "in_doubt_TimeoutError")
        assert Notification.objects.get(fallback_of=row).channel == "sms"  # the next channel on file

    def test_an_unknown_error_from_an_idempotent_provider_is_retried(self, tenant_a, no_tasks):
        with backends(sms=f"{TESTS}.IdempotentBackend"):
            feed(tenant_a, "password.changed", account_=account(channels={"sms": True}))
            ScriptedBackend.script = [TimeoutError()]
            send_all()
        row = Notification.objects.get()
        assert (row.state, row.handed_at, row.error) == (State.QUEUED, None, "error_TimeoutError")

    @pytest.mark.parametrize(
        ("backend", "state"), [("IdempotentBackend", "queued"), ("NotIdempotentBackend", "failed")]
    )
    def test_a_row_handed_without_an_answer_is_settled_by_the_relay(self, tenant_a, no_tasks, backend, state):
        with backends(sms=f"{TESTS}.{backend}"):
            feed(tenant_a, "password.changed", account_=account(channels={"sms": True}))
            handed = timezone.now() - timedelta(minutes=10)  # the worker died mid-send
            Notification.objects.update(handed_at=handed, attempts=1)
            with TestCase.captureOnCommitCallbacks(execute=True):
                assert services.notifications_relay(now=timezone.now()) == (0, 1)
        row = Notification.objects.get(fallback_of__isnull=True)
        assert row.state == state
        if state == "queued":  # handed again with the same key: the provider drops a repeat
            assert row.handed_at is None and no_tasks == [[row.pk]]
        else:
            assert row.error == "in_doubt" and Notification.objects.filter(fallback_of=row).exists()


class TestRateLimit:
    def test_rows_over_the_global_limit_are_rescheduled_not_dropped(self, tenant_a, no_tasks):
        from alerts.notifications.ratelimit import buckets

        buckets().reset("outbox:email")  # Redis outlives a test
        limited = {"BACKEND": OUTBOX, "OPTIONS": {"RATE_PER_SECOND": 2, "BURST": 2}}
        with backends(email=limited):
            for n in range(5):
                feed(tenant_a, "password.changed", account_=account(f"c{n}", channels={"email": True}))
            report = send_all()
            assert report.handed == 2 and len(report.deferred) == 3
            held = Notification.objects.filter(state=State.QUEUED)
            assert held.count() == 3 and all(r.next_attempt_at > timezone.now() for r in held)
            assert no_tasks == [sorted(report.deferred)]

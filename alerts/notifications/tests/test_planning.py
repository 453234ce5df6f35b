"""Planning: which alerts are told, to whom, on which channels: preferences, the critical
override, notices to previous addresses, quiet hours, and the cost per chunk."""

from datetime import UTC, datetime, time, timedelta

import pytest

from alerts.models import Alert, CustomerContactChange, MessageSettings, Notification, NotificationSettings
from alerts.notifications.models import Purpose, State
from alerts.notifications.planning import quiet_hours_end
from alerts.notifications.tests.helpers import account, feed

pytestmark = pytest.mark.django_db


def planned(**filters):
    return sorted(
        (n.channel, n.purpose, n.state)
        for n in Notification.objects.filter(**filters).only("channel", "purpose", "state")
    )


class TestPreferences:
    def test_an_alert_goes_to_the_opted_in_channels_only(self, tenant_a):
        channels = {"email": True, "sms": True, "push": False, "voice": False}
        feed(tenant_a, "password.changed", account_=account(channels=channels))  # medium: not critical
        assert planned() == [("email", "alert", "queued"), ("sms", "alert", "queued")]
        email = Notification.objects.get(channel="email")
        alert = Alert.objects.get()
        assert (email.alert, email.customer_id, email.tenant_id) == (alert, alert.customer_id, tenant_a.pk)
        assert email.recipient == "jane.doe@example.com" and email.recipient_masked == "j***@e***"
        assert email.critical is False and email.answer_nonce and email.idempotency_key

    def test_the_address_is_kept_as_it_was_when_planned(self, tenant_a):
        feed(tenant_a, "password.changed", account_=account(channels={"email": True}))
        feed(tenant_a, "login.succeeded", minutes=5, account_=account(email="new@example.com"), device_id="d1")
        assert Notification.objects.get(channel="email").recipient == "jane.doe@example.com"

    def test_no_channel_opted_in_means_no_notification(self, tenant_a):
        feed(tenant_a, "password.changed", account_=account(channels={}))
        assert planned() == []

    def test_an_opted_in_channel_without_an_address_is_skipped_with_a_reason(self, tenant_a):
        feed(tenant_a, "password.changed", account_=account(channels={"sms": True}, phone=None))
        (row,) = Notification.objects.all()
        assert (row.channel, row.state, row.error, row.recipient) == ("sms", State.SKIPPED, "no_address", "")

    def test_types_the_tenant_does_not_notify_and_low_severities_are_not_told(self, tenant_a):
        NotificationSettings.objects.create(tenant=tenant_a, notify_types=["login"], min_severity=3)
        feed(tenant_a, "password.changed", account_=account(channels={"email": True}))  # not a notified type
        feed(tenant_a, "third_party.authorized", account_=account("bob", channels={"email": True}), app_name="X")
        assert planned() == []

    def test_an_alert_about_a_source_tells_nobody(self, tenant_a):
        for n in range(10):  # credential stuffing: one source, ten accounts
            feed(tenant_a, "login.failed", minutes=n, account_=account(f"a{n}", channels={}), ip="198.51.100.7")
        assert Alert.objects.filter(rule="credential_stuffing", customer__isnull=True).exists()
        assert planned() == []


class TestCritical:
    def test_mfa_disabled_goes_to_every_channel_on_file_whatever_the_opt_outs(self, tenant_a):
        channels = {"email": True, "sms": False, "push": False, "voice": False}
        feed(tenant_a, "mfa.disabled", account_=account(channels=channels))
        assert planned() == [
            ("email", "alert", "queued"), ("push", "alert", "queued"),
            ("sms", "alert", "queued"), ("voice", "alert", "queued"),
        ]  # fmt: skip
        assert set(Notification.objects.values_list("critical", flat=True)) == {True}

    def test_a_factor_added_is_not_critical_but_mfa_disabled_is(self, tenant_a):
        feed(tenant_a, "mfa.enrolled", account_=account(channels={"email": True}))
        assert planned() == [("email", "alert", "queued")]

    def test_push_is_on_file_only_when_the_client_told_us_about_it(self, tenant_a):
        feed(tenant_a, "mfa.disabled", account_=account(channels={"email": True}, phone=None))
        assert planned() == [("email", "alert", "queued")]

    def test_the_tenant_chooses_what_is_critical(self, tenant_a):
        NotificationSettings.objects.create(tenant=tenant_a, critical=["type:password"])
        feed(tenant_a, "password.changed", account_=account(channels={"email": True}))
        feed(tenant_a, "mfa.disabled", account_=account("bob", channels={"email": True}))
        password = Alert.objects.get(type="password")
        assert len(planned(alert=password)) == 3  # email, sms, voice: every channel on file
        assert planned(alert=Alert.objects.get(type="two_factor")) == [("email", "alert", "queued")]

    def test_a_fold_that_makes_the_alert_critical_reaches_the_channels_not_used_yet(self, tenant_a):
        feed(tenant_a, "mfa.enrolled", account_=account(channels={"email": True}))
        feed(tenant_a, "mfa.disabled", minutes=5, account_=account(channels={"email": True}))
        assert Alert.objects.count() == 1  # one rule, one subject: the alert folded
        assert planned() == [("email", "alert", "queued"), ("sms", "alert", "queued"), ("voice", "alert", "queued")]

    def test_an_ordinary_fold_tells_nobody_again(self, tenant_a):
        feed(tenant_a, "mfa.enrolled", account_=account(channels={"email": True}))
        feed(tenant_a, "mfa.enrolled", minutes=5, account_=account(channels={"email": True}))
        assert Notification.objects.count() == 1


class TestPreviousContacts:
    def test_a_contact_change_keeps_the_previous_address_encrypted(self, tenant_a):
        feed(tenant_a, "login.succeeded", account_=account(channels={"email": True}), device_id="d")
        feed(tenant_a, "profile.changed", minutes=1, account_=account(email="mallory@evil.example"), fields=["email"])
        (change,) = CustomerContactChange.objects.all()
        assert (change.field, change.old_value, change.old_masked) == ("email", "jane.doe@example.com", "j***@e***")
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT old_value FROM alerts_customercontactchange")
            assert "jane" not in cursor.fetchone()[0]

    def test_a_recovery_after_an_email_change_tells_the_previous_address_and_every_address_on_file(self, tenant_a):
        feed(tenant_a, "login.succeeded", account_=account(channels={"email": True}), device_id="d")
        feed(tenant_a, "profile.changed", minutes=1, account_=account(email="mallory@evil.example"), fields=["email"])
        feed(tenant_a, "recovery.requested", minutes=2, account_=account(email="mallory@evil.example"))
        recovery = Alert.objects.get(rule="recovery")
        assert planned(alert=recovery) == [
            ("email", "alert", "queued"), ("email", "previous_contact", "queued"),
            ("sms", "alert", "queued"), ("voice", "alert", "queued"),
        ]  # fmt: skip
        previous = Notification.objects.get(alert=recovery, purpose=Purpose.PREVIOUS_CONTACT)
        current = Notification.objects.get(alert=recovery, purpose=Purpose.ALERT, channel="email")
        assert (previous.recipient, current.recipient) == ("jane.doe@example.com", "mallory@evil.example")
        assert previous.critical is True

    def test_each_replaced_address_hears_once_and_one_changed_back_is_the_current_one(self, tenant_a):
        emails = ["a@example.com", "b@example.com", "a@example.com", "c@example.com"]
        feed(tenant_a, "login.succeeded", account_=account(channels={}), device_id="d")  # Jane's, at first
        for n, email in enumerate(emails, start=1):
            feed(tenant_a, "profile.changed", minutes=n, account_=account(email=email, channels={}), fields=["email"])
        feed(tenant_a, "recovery.completed", minutes=10, account_=account(email="c@example.com", channels={}))
        previous = Notification.objects.filter(purpose=Purpose.PREVIOUS_CONTACT, alert__rule="recovery")
        assert sorted(previous.values_list("recipient", flat=True)) == [
            "a@example.com", "b@example.com", "jane.doe@example.com"
        ]  # fmt: skip

    def test_a_phone_replaced_long_ago_is_not_told(self, tenant_a):
        feed(tenant_a, "profile.changed", account_=account(phone="+14155550199", channels={}), fields=["phone"])
        CustomerContactChange.objects.update(changed_at=datetime.now(UTC) - timedelta(days=31))
        feed(tenant_a, "recovery.completed", minutes=10, account_=account(phone="+14155550199", channels={}))
        assert not Notification.objects.filter(purpose=Purpose.PREVIOUS_CONTACT).exists()

    def test_email_and_phone_changed_together_tells_both_previous_addresses(self, tenant_a):
        feed(tenant_a, "login.succeeded", account_=account(channels={}), device_id="d")
        new = account(email="m@evil.example", phone="+14155550666", channels={})
        feed(tenant_a, "profile.changed", minutes=1, account_=new, fields=["email", "phone"])
        assert sorted(Alert.objects.values_list("rule", flat=True)) == ["contact_change", "rapid_profile_change"]
        for rule in ("contact_change", "rapid_profile_change"):
            assert sorted(
                Notification.objects.filter(purpose=Purpose.PREVIOUS_CONTACT, alert__rule=rule).values_list(
                    "channel", "recipient"
                )
            ) == [("email", "jane.doe@example.com"), ("sms", "+14155550100")]


class TestQuietHours:
    def test_a_non_critical_alert_waits_for_the_end_of_quiet_hours(self, tenant_a):
        NotificationSettings.objects.create(tenant=tenant_a, quiet_start=time(22), quiet_end=time(7))
        # Local time is the tenant's message-settings time zone, the one the messages show.
        MessageSettings.objects.create(tenant=tenant_a, time_zone="Europe/Paris")
        at_night = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)  # 00:30 in Paris
        feed(tenant_a, "password.changed", account_=account(channels={"email": True}), now=at_night)
        feed(tenant_a, "mfa.disabled", account_=account("bob", channels={"email": True}), now=at_night)
        waiting = Notification.objects.get(alert__type="password")
        assert waiting.not_before == datetime(2026, 11, 21, 6, 0, tzinfo=UTC)  # 07:00 in Paris
        assert set(Notification.objects.filter(alert__type="two_factor").values_list("not_before", flat=True)) == {None}

    @pytest.mark.parametrize(
        ("start", "end", "now", "until"),
        [
            (time(22), time(7), datetime(2026, 1, 5, 21, 59, tzinfo=UTC), None),
            (time(22), time(7), datetime(2026, 1, 5, 22, 0, tzinfo=UTC), datetime(2026, 1, 6, 7, tzinfo=UTC)),
            (time(22), time(7), datetime(2026, 1, 6, 6, 59, tzinfo=UTC), datetime(2026, 1, 6, 7, tzinfo=UTC)),
            (time(22), time(7), datetime(2026, 1, 6, 7, 0, tzinfo=UTC), None),
            (time(12), time(14), datetime(2026, 1, 6, 13, 0, tzinfo=UTC), datetime(2026, 1, 6, 14, tzinfo=UTC)),
            (None, time(7), datetime(2026, 1, 6, 3, 0, tzinfo=UTC), None),
        ],
    )
    def test_quiet_hours_end(self, start, end, now, until):
        settings = NotificationSettings(quiet_start=start, quiet_end=end)
        assert quiet_hours_end(settings, now) == until


class TestCost:
    def test_a_burst_of_alerts_is_planned_in_a_fixed_number_of_statements(
        self, tenant_a, django_assert_max_num_queries
    ):
        from alerts.detection import events_process
        from alerts.services import events_ingest
        from alerts.validation import validate_event

        raws = []
        for n in range(50):
            raws.append(
                {"id": f"burst-{n}", "type": "mfa.disabled", "occurred_at": "2026-11-20T09:00:00+00:00",
                 "account": account(f"victim-{n}", channels={"email": True, "push": True}), "context": {}}
            )  # fmt: skip
        now = datetime(2026, 12, 1, tzinfo=UTC)
        _, _, ids = events_ingest(tenant=tenant_a, events=[validate_event(r, now=now) for r in raws])
        # Detection's own (see alerts/tests/test_detection.py) + settings, contacts, one insert.
        with django_assert_max_num_queries(13 + 6 + 3):
            events_process(event_ids=ids)
        assert Notification.objects.count() == 50 * 4


class TestReplies:
    def test_an_sms_planned_by_detection_takes_the_customers_no_by_reply(self, tenant_a):
        """The answer module matches a reply by the digest kept on the row: detection's rows carry it."""
        from alerts.notifications.answers import answer_sms_receive
        from alerts.notifications.tests.helpers import send_all

        feed(tenant_a, "password.changed", account_=account(channels={"sms": True}))
        send_all()
        sms = Notification.objects.get(channel="sms")
        assert sms.recipient_digest and sms.sent_at is not None
        assert answer_sms_receive(from_number="+14155550199", body="NO") is not None  # another number: nothing
        sms.refresh_from_db()
        assert sms.answered_at is None
        answer_sms_receive(from_number="+14155550100", body="NO")
        sms.refresh_from_db()
        assert sms.answer == "no" and Alert.objects.get().severity == 4


class TestContactChanges:
    """Issue 10: a change of contact details notifies the previous address and every address on
    file, exactly once, whatever the opt-outs, with what changed (masked), when, and the link."""

    def _change(self, tenant, *, minutes=1, channels=None, **contacts):
        return feed(
            tenant, "profile.changed", minutes=minutes, fields=sorted(contacts),
            account_=account(channels=channels, **contacts),
        )  # fmt: skip

    def test_one_email_change_raises_an_alert_the_desk_sees(self, tenant_a):
        feed(tenant_a, "login.succeeded", account_=account(channels={"email": True}), device_id="d")
        self._change(tenant_a, email="mallory@evil.example")
        (alert,) = Alert.objects.filter(rule="contact_change")
        assert (alert.type, alert.severity, alert.status) == ("suspicious", 2, "open")
        assert alert.reason == "The account's email address changed."

    def test_the_old_address_and_every_address_on_file_are_told(self, tenant_a):
        feed(tenant_a, "login.succeeded", account_=account(channels={"email": True}), device_id="d")
        event = self._change(tenant_a, email="mallory@evil.example")
        alert = Alert.objects.get(rule="contact_change")
        assert planned(alert=alert) == [
            ("email", "alert", "queued"), ("email", "previous_contact", "queued"),
            ("sms", "alert", "queued"), ("voice", "alert", "queued"),
        ]  # fmt: skip
        rows = {(n.channel, n.purpose): n for n in Notification.objects.filter(alert=alert)}
        assert rows[("email", "previous_contact")].recipient == "jane.doe@example.com"
        assert rows[("email", "alert")].recipient == "mallory@evil.example"
        assert rows[("sms", "alert")].recipient == "+14155550100"
        assert {n.critical for n in rows.values()} == {True} and {n.event_ref for n in rows.values()} == {event.pk}
        assert {n.not_before for n in rows.values()} == {None}

    def test_opt_outs_quiet_hours_and_the_tenants_types_do_not_silence_it(self, tenant_a):
        NotificationSettings.objects.create(
            tenant=tenant_a,
            notify_types=["login"],
            min_severity=4,
            critical=[],
            quiet_start=time(0),
            quiet_end=time(23, 59),
        )
        off = {"email": False, "sms": False, "push": False, "voice": False}
        feed(tenant_a, "login.succeeded", account_=account(channels=off), device_id="d")
        self._change(tenant_a, phone="+14155550666", channels=off)
        alert = Alert.objects.get(rule="contact_change")
        assert planned(alert=alert) == [
            ("email", "alert", "queued"), ("push", "alert", "queued"), ("sms", "alert", "queued"),
            ("sms", "previous_contact", "queued"), ("voice", "alert", "queued"),
        ]  # fmt: skip
        previous = Notification.objects.filter(alert=alert, purpose=Purpose.PREVIOUS_CONTACT)
        assert set(previous.values_list("recipient", flat=True)) == {"+14155550100"}
        assert set(Notification.objects.filter(alert=alert).values_list("not_before", flat=True)) == {None}

    def test_the_same_event_redelivered_or_reprocessed_is_told_once(self, tenant_a):
        from alerts.detection import events_process
        from alerts.services import events_ingest
        from alerts.validation import validate_event

        feed(tenant_a, "login.succeeded", account_=account(channels={"email": True}), device_id="d")
        raw = {"id": "change-1", "type": "profile.changed", "occurred_at": "2026-11-20T09:01:00+00:00",
               "account": account(email="mallory@evil.example"), "context": {"fields": ["email"]}}  # fmt: skip
        now = datetime(2026, 11, 21, tzinfo=UTC)
        _, _, ids = events_ingest(tenant=tenant_a, events=[validate_event(raw, now=now)])
        events_process(event_ids=ids)
        before = planned()
        accepted, duplicates, again = events_ingest(tenant=tenant_a, events=[validate_event(raw, now=now)])
        assert (accepted, duplicates, again) == (0, 1, [])
        from alerts.models import AccountEvent

        AccountEvent.objects.filter(pk__in=ids).update(processed_at=None)
        events_process(event_ids=ids)  # a reprocessed event folds; its notices exist already
        assert planned() == before and len(before) == 4
        assert Alert.objects.get(rule="contact_change").count == 2

    def test_every_change_is_told_also_when_it_folds_into_the_active_alert(self, tenant_a):
        feed(tenant_a, "login.succeeded", account_=account(channels={"email": True}), device_id="d")
        first = self._change(tenant_a, email="b@example.com")
        second = self._change(tenant_a, minutes=90, email="c@example.com")
        (alert,) = Alert.objects.filter(rule="contact_change")
        assert alert.count == 2
        told = Notification.objects.filter(alert=alert, channel="email")
        assert sorted(told.values_list("event_ref", "purpose", "recipient")) == sorted([
            (first.pk, "alert", "b@example.com"), (first.pk, "previous_contact", "jane.doe@example.com"),
            (second.pk, "alert", "c@example.com"), (second.pk, "previous_contact", "jane.doe@example.com"),
            (second.pk, "previous_contact", "b@example.com"),
        ])  # fmt: skip

    def test_every_recovery_event_is_told(self, tenant_a):
        feed(tenant_a, "recovery.requested", account_=account(channels={"email": True}))
        completed = feed(tenant_a, "recovery.completed", minutes=5, account_=account(channels={"email": True}))
        (alert,) = Alert.objects.filter(rule="recovery")
        assert Notification.objects.filter(alert=alert, channel="email").count() == 2
        assert Notification.objects.filter(alert=alert, event_ref=completed.pk).count() == 3  # email, SMS, voice

    def test_the_messages_say_what_changed_masked_when_and_carry_the_link(self, tenant_a):
        from alerts.models import OutboxMessage
        from alerts.notifications.tests.helpers import answer_link_of, backends, send_all

        feed(tenant_a, "login.succeeded", account_=account(channels={"email": True}), device_id="d")
        self._change(tenant_a, email="mallory@evil.example")
        with backends():
            send_all()
        alert = Alert.objects.get(rule="contact_change")
        to_new = OutboxMessage.objects.get(notification__alert=alert, notification__purpose="alert", channel="email")
        to_old = OutboxMessage.objects.get(notification__purpose="previous_contact", channel="email")
        for message in (to_new, to_old):
            assert "a change of the email address on your account, now m***@e***" in message.body
            assert "20 November 2026, 09:01" in message.body
            assert "mallory@evil.example" not in message.body and "jane.doe" not in message.body
            assert answer_link_of(message.body).alert_id == alert.pk
        assert "was on your" in to_old.body and "was on your" not in to_new.body
        voice = OutboxMessage.objects.get(notification__alert=alert, channel="voice")
        assert "a change of the email address on your account." in voice.body.replace(",", ".")
        assert "***" not in voice.body

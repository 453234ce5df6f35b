"""Issue 11: a contact-detail change is told to the contacts on file BEFORE the webhook goes out, waits
the tenant's hold unless a supervisor sends it sooner, and the customer's "No" puts it on hold
(audited, supervisors told live). Issue 10: a customer's "No, it wasn't me" asks the tenant's systems
for the account actions the tenant enabled, through the same signed webhook."""

import json
import re
from datetime import timedelta
from html import unescape

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.models import Notification, OutboxMessage
from alerts.notifications.answers import notification_answer
from alerts.notifications.models import Purpose
from alerts.notifications.tests.helpers import account, answer_link_of, feed
from audit.models import AuditEvent
from desk.action_services import action_release_due, action_settings_update, actions_release_due
from desk.models import AccountAction, ActionSettings, ActionState, Case, SecurityConcern
from desk.tests.factories import account_actions_make
from desk.tests.test_actions import _post, _url, _verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_supervisor(tenant_a):
    return make_staff("supervisor2", role=Role.SUPERVISOR, tenants=[tenant_a])


def _approved_change(case, agent, supervisor, capture):
    """An agent asks for a phone change of the verified customer; a supervisor approves it."""
    _verify(case)
    asked = _post(verified_client(agent), _url(case), {"action": "change_contact", "params": {"field": "phone"}})
    assert asked.json()["state"] == "pending_approval"
    with capture(execute=True):
        approved = _post(
            verified_client(supervisor),
            _url(case, f"actions/{asked.json()['id']}/approve/"),
            {"reason": "strong code to the SMS on file"},
        )
    assert approved.status_code == 200
    return AccountAction.objects.get(uuid=asked.json()["id"])


class TestToldBeforeItTakesEffect:
    def test_the_contacts_on_file_are_told_and_the_webhook_waits_for_the_hold(
        self, case_a, agent, supervisor, stub, django_capture_on_commit_callbacks
    ):
        before = timezone.now()
        action = _approved_change(case_a, agent, supervisor, django_capture_on_commit_callbacks)
        assert action.state == ActionState.WAITING and stub.received == []
        assert before + timedelta(minutes=10) <= action.hold_until <= timezone.now() + timedelta(minutes=10)
        told = Notification.objects.filter(reference=action.uuid, purpose=Purpose.ACTION_NOTICE)
        assert sorted(told.values_list("channel", flat=True)) == ["email", "sms", "voice"]
        assert {n.critical for n in told} == {True} and {n.customer_id for n in told} == {case_a.customer_id}
        email = OutboxMessage.objects.get(notification__reference=action.uuid, channel="email")
        # It says which contact is changing (the agent asked for the phone), never a value.
        assert {n.notice_field for n in told} == {"phone"}
        assert "a change of the phone number on your account" in email.body
        assert "a change of the phone number on your account" in email.subject
        assert "+33612345678" not in email.body and "alice@" not in email.body
        assert answer_link_of(email.body).reference == action.uuid
        recorded = AuditEvent.objects.get(metadata__event="action_customer_told")
        assert recorded.changes == {"state": {"before": "requested", "after": "waiting"}}
        assert sorted(recorded.metadata["notifications"]) == sorted(told.values_list("pk", flat=True))
        # Not before the hold ends (the countdown task ran early: nothing happens) ...
        assert action_release_due(action_id=action.pk) is False and stub.received == []
        # ... then it goes, once, signed, after the customer was told.
        with django_capture_on_commit_callbacks(execute=True):
            assert actions_release_due(now=action.hold_until + timedelta(seconds=1)) == 1
        action.refresh_from_db()
        assert action.state == ActionState.CONFIRMED and len(stub.received) == 1
        assert stub.signature_ok(stub.received[0], stub.secret)
        assert min(n.created_at for n in told) < action.sent_at
        assert AuditEvent.objects.filter(metadata__event="action_hold_ended", actor__isnull=True).count() == 1

    def test_the_customers_no_puts_it_on_hold_and_supervisors_hear_of_it(
        self, case_a, agent, supervisor, stub, django_capture_on_commit_callbacks, monkeypatch
    ):
        raised = []
        monkeypatch.setattr("config.push.concern_raised", lambda **kw: raised.append(kw))
        action = _approved_change(case_a, agent, supervisor, django_capture_on_commit_callbacks)
        sms = Notification.objects.get(reference=action.uuid, channel="sms")
        with django_capture_on_commit_callbacks(execute=True):
            result = notification_answer(notification_id=sms.pk, answer="no", via="link")
        assert result.alert is None and result.answer == "no"
        action.refresh_from_db()
        assert action.state == ActionState.ON_HOLD
        held = AuditEvent.objects.get(metadata__event="action_put_on_hold")
        assert held.changes == {"state": {"before": "waiting", "after": "on_hold"}} and held.actor is None
        assert held.metadata["notification"] == sms.pk
        concern = SecurityConcern.objects.get(case=case_a, raised_by__isnull=True)
        assert "on hold" in concern.note
        assert raised == [{"tenant_id": case_a.tenant_id, "concern_id": concern.pk, "case_id": case_a.pk,
                           "kind": "social_engineering"}]  # fmt: skip
        # Every other link of the notice is closed; the hold never ends by itself.
        assert set(Notification.objects.filter(reference=action.uuid).values_list("answered_at", flat=True)) != {None}
        assert Notification.objects.filter(reference=action.uuid, answered_at__isnull=True).count() == 0
        with django_capture_on_commit_callbacks(execute=True):
            assert actions_release_due(now=action.hold_until + timedelta(hours=1)) == 0
        assert stub.received == []

    def test_an_sms_reply_no_puts_it_on_hold_too(self, case_a, agent, supervisor, django_capture_on_commit_callbacks):
        from alerts.notifications.answers import answer_sms_receive
        from desk.tests.conftest import PHONE

        action = _approved_change(case_a, agent, supervisor, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            reply = answer_sms_receive(from_number=PHONE, body="No", message_sid="SM1")
        assert "security is on it" in reply
        action.refresh_from_db()
        assert action.state == ActionState.ON_HOLD

    def test_a_yes_changes_nothing_but_is_recorded(self, case_a, agent, supervisor, django_capture_on_commit_callbacks):
        action = _approved_change(case_a, agent, supervisor, django_capture_on_commit_callbacks)
        email = Notification.objects.get(reference=action.uuid, channel="email")
        notification_answer(notification_id=email.pk, answer="yes", via="link")
        action.refresh_from_db()
        assert action.state == ActionState.WAITING  # whoever holds one channel cannot hurry it
        assert AuditEvent.objects.filter(metadata__event="customer_answered", metadata__answer="yes").count() == 1

    def test_the_answer_page_says_what_was_asked_for(self, case_a, agent, supervisor, client,
                                                     django_capture_on_commit_callbacks):  # fmt: skip
        action = _approved_change(case_a, agent, supervisor, django_capture_on_commit_callbacks)
        email = OutboxMessage.objects.get(notification__reference=action.uuid, channel="email")
        link = email.body[email.body.index("/r/") :].split()[0]
        page = client.get(link)
        assert page.status_code == 200
        assert "change the phone number on your account" in page.content.decode()

    def test_an_email_change_is_told_as_such_on_every_channel(
        self, case_a, agent, supervisor, django_capture_on_commit_callbacks
    ):
        _verify(case_a)
        asked = _post(verified_client(agent), _url(case_a), {"action": "change_contact", "params": {"field": "email"}})
        with django_capture_on_commit_callbacks(execute=True):
            _post(verified_client(supervisor), _url(case_a, f"actions/{asked.json()['id']}/approve/"), {"reason": "ok"})
        sent = OutboxMessage.objects.filter(notification__reference=asked.json()["id"])
        assert sorted(m.channel for m in sent) == ["email", "sms", "voice"]
        for message in sent:
            assert "the email address on your account" in message.body, message.channel
            assert "change of the phone number" not in message.body
            assert "alice" not in message.body and "+33612345678" not in message.body
        told = AuditEvent.objects.get(metadata__event="action_customer_told")
        assert told.metadata["notice_field"] == "email"
        html = verified_client(supervisor).get(f"/cases/{case_a.pk}/").content.decode()
        assert "the notice names the email address" in html  # the timeline says what the customer was told
        row = html[html.index('data-testid="action-row-change_contact"') :]
        assert "Allow a contact-detail change: the email address" in row[: row.index("</li>")]


class TestTheHold:
    def test_a_supervisor_sends_it_sooner_with_a_reason(
        self, case_a, agent, supervisor, second_supervisor, stub, django_capture_on_commit_callbacks
    ):
        action = _approved_change(case_a, agent, supervisor, django_capture_on_commit_callbacks)
        release = _url(case_a, f"actions/{action.uuid}/release/")
        assert _post(verified_client(agent), release, {"reason": "customer waiting"}).status_code == 403
        assert _post(verified_client(second_supervisor), release, {}).status_code == 400
        assert stub.received == []
        with django_capture_on_commit_callbacks(execute=True):
            done = _post(verified_client(second_supervisor), release, {"reason": "customer on the line, confirmed"})
        assert done.status_code == 200 and len(stub.received) == 1
        assert AuditEvent.objects.get(metadata__event="action_hold_overridden").reason.startswith("customer on")

    def test_one_on_hold_cannot_be_sent_sooner(self, case_a, agent, supervisor, django_capture_on_commit_callbacks):
        action = _approved_change(case_a, agent, supervisor, django_capture_on_commit_callbacks)
        email = Notification.objects.get(reference=action.uuid, channel="email")
        notification_answer(notification_id=email.pk, answer="no", via="link")
        release = _url(case_a, f"actions/{action.uuid}/release/")
        response = _post(verified_client(supervisor), release, {"reason": "sure"})
        assert response.status_code == 409 and "on hold" in response.json()["detail"]

    def test_another_tenants_supervisor_gets_404(self, case_a, agent, supervisor, tenant_b,
                                                 django_capture_on_commit_callbacks):  # fmt: skip
        action = _approved_change(case_a, agent, supervisor, django_capture_on_commit_callbacks)
        other = make_staff("sup-b", role=Role.SUPERVISOR, tenants=[tenant_b])
        release = _url(case_a, f"actions/{action.uuid}/release/")
        assert _post(verified_client(other), release, {"reason": "x"}).status_code == 404

    def test_the_hold_is_a_tenant_setting_checked_and_audited(self, tenant_a, supervisor):
        settings = action_settings_update(tenant=tenant_a, actor=supervisor, notice_hold_minutes=30)
        assert settings.notice_hold_minutes == 30
        assert AuditEvent.objects.filter(metadata__event="action_settings_set").count() == 1
        for bad in (-1, 7 * 24 * 60 + 1, "5", 2.5, True):
            with pytest.raises(ValidationError):
                action_settings_update(tenant=tenant_a, notice_hold_minutes=bad)
        assert ActionSettings.objects.get(tenant=tenant_a).notice_hold_minutes == 30


class TestCustomerNo:
    """Issue 10: "No, it wasn't me" asks the tenant's systems for what the tenant enabled."""

    def _disown(self, tenant, capture, external_id="acme-cust"):
        feed(tenant, "password.changed", account_=account(external_id, channels={"email": True}))
        row = Notification.objects.filter(customer__external_id=external_id, channel="email").latest("id")
        with capture(execute=True):
            notification_answer(notification_id=row.pk, answer="no", via="link")
        return row

    def test_where_enabled_the_actions_are_sent_signed_through_the_webhook(
        self, tenant_a, stub, django_capture_on_commit_callbacks
    ):
        action_settings_update(tenant=tenant_a, customer_no_actions=["revoke_sessions", "reset_password"])
        row = self._disown(tenant_a, django_capture_on_commit_callbacks)
        case = Case.objects.get(customer_id=row.customer_id)
        actions = AccountAction.objects.filter(case=case).order_by("id")
        assert [(a.action, a.state, a.requested_by, a.requested_via) for a in actions] == [
            ("revoke_sessions", "confirmed", None, "customer_answer"),
            ("reset_password", "confirmed", None, "customer_answer"),
        ]
        assert len(stub.received) == 2 and all(stub.signature_ok(r, stub.secret) for r in stub.received)
        sent = json.loads(stub.received[0]["body"])
        assert sent["requested_by"] == "customer" and sent["account"] == {"external_id": "acme-cust"}
        recorded = AuditEvent.objects.filter(
            metadata__event="action_requested", metadata__allowed_as="customer's answer"
        )
        assert recorded.count() == 2 and {r.metadata["notification"] for r in recorded} == {row.pk}

    def test_not_enabled_nothing_is_asked(self, tenant_a, stub, django_capture_on_commit_callbacks):
        self._disown(tenant_a, django_capture_on_commit_callbacks)
        assert not AccountAction.objects.exists() and stub.received == []

    def test_a_second_no_of_the_same_case_asks_nothing_more(self, tenant_a, stub, django_capture_on_commit_callbacks):
        action_settings_update(tenant=tenant_a, customer_no_actions=["revoke_sessions"])
        self._disown(tenant_a, django_capture_on_commit_callbacks)
        feed(tenant_a, "mfa.enrolled", minutes=3, account_=account("acme-cust", channels={"email": True}))
        row = Notification.objects.filter(alert__type="two_factor", channel="email").get()
        with django_capture_on_commit_callbacks(execute=True):
            notification_answer(notification_id=row.pk, answer="no", via="link")
        assert AccountAction.objects.count() == 1 and len(stub.received) == 1

    @pytest.mark.parametrize("bad", [["change_contact"], ["reset_mfa"], ["format_disk"], "revoke_sessions"])
    def test_only_low_risk_actions_can_be_enabled(self, tenant_a, bad):
        with pytest.raises(ValidationError):
            action_settings_update(tenant=tenant_a, customer_no_actions=bad)
        assert [s.customer_no_actions for s in ActionSettings.objects.filter(tenant=tenant_a)] in ([], [[]])


class TestCasePage:
    def test_the_page_shows_the_hold_and_a_supervisor_sends_it_from_there(
        self, case_a, agent, supervisor, second_supervisor, stub, django_capture_on_commit_callbacks
    ):
        action = _approved_change(case_a, agent, supervisor, django_capture_on_commit_callbacks)
        page = verified_client(second_supervisor).get(f"/cases/{case_a.pk}/")
        text = page.content.decode()
        assert "Customer told; waiting for the hold period" in text and "Send now" in text
        assert "Send now" not in verified_client(agent).get(f"/cases/{case_a.pk}/").content.decode()
        form = {"action_id": str(action.uuid), "reason": "customer in branch with ID"}
        refused = verified_client(agent).post(f"/cases/{case_a.pk}/actions/release/", form)
        assert refused.status_code in (403, 404) and stub.received == []
        with django_capture_on_commit_callbacks(execute=True):
            sent = verified_client(second_supervisor).post(f"/cases/{case_a.pk}/actions/release/", form)
        assert sent.status_code == 302 and len(stub.received) == 1
        action.refresh_from_db()
        assert action.state == ActionState.CONFIRMED


class TestCommand:
    def test_tenant_actions_sets_and_prints_the_settings(self, tenant_a, capsys):
        from django.core.management import call_command
        from django.core.management.base import CommandError

        call_command("tenant_actions", tenant_a.slug, "--hold-minutes", "5", "--on-customer-no", "revoke_sessions")
        out = capsys.readouterr().out
        assert "5 minutes" in out and "asks for: revoke_sessions" in out
        call_command("tenant_actions", tenant_a.slug, "--on-customer-no", "none")
        assert "asks for: nothing" in capsys.readouterr().out
        for bad in (
            ["nope"],
            [tenant_a.slug, "--on-customer-no", "change_contact"],
            [tenant_a.slug, "--hold-minutes", "-3"],
        ):
            with pytest.raises(CommandError):
                call_command("tenant_actions", *bad)
        assert ActionSettings.objects.get(tenant=tenant_a).notice_hold_minutes == 5

    def test_the_timeline_says_the_customer_was_told_and_put_it_on_hold(
        self, case_a, agent, supervisor, django_capture_on_commit_callbacks
    ):
        action = _approved_change(case_a, agent, supervisor, django_capture_on_commit_callbacks)
        email = Notification.objects.get(reference=action.uuid, channel="email")
        notification_answer(notification_id=email.pk, answer="no", via="link")
        text = verified_client(supervisor).get(f"/cases/{case_a.pk}/").content.decode()
        assert "Allow a contact-detail change: the contacts on file told first; it goes when the hold ends" in text
        assert "Allow a contact-detail change: on hold: the customer answered “No” to the notice" in text
        assert "On hold: the customer said it was not them" in text


class TestResolvedWithActionsPending:
    """Resolving a case cancels its actions that have not gone out (waiting for approval, for the
    hold, or on hold): recorded on the case with the reason, never sent afterwards by the task that
    releases held actions, nor its beat relay. What is on its way already still goes."""

    def _resolve(self, case, who):
        response = verified_client(who).post(f"/cases/{case.pk}/resolve/", {"outcome": "account_secured"})
        assert response.status_code == 302
        return response

    def test_a_waiting_action_is_cancelled_recorded_and_never_released(
        self, case_a, agent, supervisor, second_supervisor, stub, django_capture_on_commit_callbacks
    ):
        from desk.tasks import account_action_release_task, account_actions_release_due_task

        action = _approved_change(case_a, agent, supervisor, django_capture_on_commit_callbacks)
        assert action.state == ActionState.WAITING
        with django_capture_on_commit_callbacks(execute=True):
            self._resolve(case_a, agent)
        action.refresh_from_db()
        assert action.state == ActionState.CANCELLED
        event = AuditEvent.objects.get(metadata__event="action_cancelled")
        assert event.actor == agent and event.reason == "The case was resolved before it went out."
        assert event.changes == {"state": {"before": "waiting", "after": "cancelled"}}
        assert event.metadata["account_action"] == str(action.uuid) and event.target_id == str(case_a.pk)
        # The hold ends: neither the action's own countdown task nor the beat relay sends it.
        AccountAction.objects.filter(pk=action.pk).update(hold_until=timezone.now() - timedelta(minutes=1))
        with django_capture_on_commit_callbacks(execute=True):
            assert account_action_release_task(action.pk) is False
            assert account_actions_release_due_task() == 0
        # Nor a supervisor's "send now" (409), nor a redelivered send task.
        release = _url(case_a, f"actions/{action.uuid}/release/")
        assert _post(verified_client(second_supervisor), release, {"reason": "now"}).status_code == 409
        from desk.tasks import account_action_send_task

        assert account_action_send_task(action.pk) == "done"
        action.refresh_from_db()
        assert action.state == ActionState.CANCELLED and action.sent_at is None and stub.received == []
        html = verified_client(supervisor).get(f"/cases/{case_a.pk}/").content.decode()
        assert "Allow a contact-detail change: cancelled, never sent" in html
        assert "The case was resolved before it went out." in html
        assert "Cancelled: the case was resolved before it went out" in html  # the action's own row

    def test_pending_approval_and_on_hold_are_cancelled_and_what_is_on_its_way_still_goes(
        self, case_a, agent, supervisor, stub, django_capture_on_commit_callbacks
    ):
        held = _approved_change(case_a, agent, supervisor, django_capture_on_commit_callbacks)
        email = Notification.objects.get(reference=held.uuid, channel="email")
        notification_answer(notification_id=email.pk, answer="no", via="link")
        held.refresh_from_db()
        assert held.state == ActionState.ON_HOLD
        asked = _post(verified_client(agent), _url(case_a), {"action": "reset_mfa"})  # waits for a supervisor
        assert asked.json()["state"] == "pending_approval"
        lock = _post(verified_client(agent), _url(case_a), {"action": "lock"})  # its send task not run yet
        assert lock.json()["state"] == "requested" and stub.received == []
        self._resolve(case_a, agent)
        states = dict(AccountAction.objects.values_list("action", "state"))
        assert states == {"change_contact": "cancelled", "reset_mfa": "cancelled", "lock": "requested"}
        cancelled = AuditEvent.objects.filter(metadata__event="action_cancelled")
        assert sorted(e.changes["state"]["before"] for e in cancelled) == ["on_hold", "pending_approval"]
        from desk.tasks import account_action_send_task

        # The lock was asked for before the case was resolved: it goes.
        assert account_action_send_task(AccountAction.objects.get(action="lock").pk) == "confirmed"
        assert AccountAction.objects.get(action="lock").state == ActionState.CONFIRMED
        assert [json.loads(r["body"])["action"] for r in stub.received] == ["lock"]
        approve = _url(case_a, f"actions/{asked.json()['id']}/approve/")
        second = make_staff("supervisor3", role=Role.SUPERVISOR, tenants=[case_a.tenant])
        assert _post(verified_client(second), approve, {"reason": "ok"}).status_code == 409

    def test_a_case_without_pending_actions_resolves_as_before(self, case_a, agent):
        self._resolve(case_a, agent)
        assert not AuditEvent.objects.filter(metadata__event="action_cancelled").exists()
        assert Case.objects.get(pk=case_a.pk).status == "resolved"

    def test_the_customers_no_after_it_was_cancelled_is_recorded_and_raised(
        self, case_a, agent, supervisor, stub, django_capture_on_commit_callbacks
    ):
        action = _approved_change(case_a, agent, supervisor, django_capture_on_commit_callbacks)
        self._resolve(case_a, agent)
        sms = Notification.objects.get(reference=action.uuid, channel="sms")
        with django_capture_on_commit_callbacks(execute=True):
            notification_answer(notification_id=sms.pk, answer="no", via="link")
        action.refresh_from_db()
        assert action.state == ActionState.CANCELLED and stub.received == []
        event = AuditEvent.objects.get(metadata__event="action_disowned_cancelled")
        assert event.actor is None and event.changes == {}
        concern = SecurityConcern.objects.get(case=case_a, raised_by__isnull=True)
        assert "cancelled when the case was resolved" in concern.note
        html = verified_client(supervisor).get(f"/cases/{case_a.pk}/").content.decode()
        assert "it had been cancelled, never sent" in html


class TestTheResolveWarningListsEverything:
    """The warning above Resolve counts every action resolving would cancel, however many and however
    old (it once showed only those among the ten newest actions), grouped by kind and state; the
    actions list shows every pending one up to CASE_PENDING_SHOWN beside the ten newest."""

    @staticmethod
    def _warning(html):
        warning = html[html.index('data-testid="resolve-cancels"') :]
        return warning[: warning.index("</div>")]

    def test_old_pending_actions_behind_ten_newer_ones_are_counted_and_listed(self, case_a, agent, supervisor):
        account_actions_make(case_a, agent, ActionState.PENDING_APPROVAL, 1, action="reset_mfa", minutes_ago=90)
        account_actions_make(case_a, agent, ActionState.ON_HOLD, 1, action="change_contact", params={"field": "phone"},
                   minutes_ago=80)  # fmt: skip
        account_actions_make(case_a, agent, ActionState.WAITING, 2, action="change_contact", params={"field": "email"},
                   minutes_ago=70)  # fmt: skip
        account_actions_make(case_a, agent, ActionState.CONFIRMED, 12, minutes_ago=10)  # newer, gone out
        html = verified_client(agent).get(f"/cases/{case_a.pk}/").content.decode()
        warning = self._warning(html)
        assert "Resolving cancels 4 account actions</strong> that have not gone out" in warning
        items = re.findall(r'data-testid="resolve-cancels-item">(.*?)</li>', warning)
        assert [unescape(re.sub(r"<[^>]+>", "", i)) for i in items] == [
            "Allow a contact-detail change: the email address ×2: Customer told; waiting for the hold period",
            "Allow a contact-detail change: the phone number: On hold: the customer said it was not them",
            "Reset multi-factor authentication: Waiting for a supervisor's approval",
        ]
        assert 'href="#actions"' in warning
        # The list shows the ten newest and every pending one, older as they are; a supervisor can
        # still approve the old one from there.
        assert html.count('class="action-row ') == 10 + 4
        assert 'data-testid="actions-pending-hidden"' not in html
        boss = verified_client(supervisor).get(f"/cases/{case_a.pk}/").content.decode()
        row = boss[boss.index('data-testid="action-row-reset_mfa"') :]
        assert "Approve" in row[: row.index("</li>")]

    def test_very_many_are_counted_in_full_listed_up_to_the_cap_at_a_constant_cost(
        self, case_a, agent, django_assert_max_num_queries
    ):
        from desk.selectors import CASE_ACTIONS_SHOWN, CASE_PENDING_SHOWN

        client = verified_client(agent)
        account_actions_make(case_a, agent, ActionState.PENDING_APPROVAL, 2, action="reset_mfa", minutes_ago=60)
        client.get(f"/cases/{case_a.pk}/")  # warm the session
        with django_assert_max_num_queries(60) as few:
            client.get(f"/cases/{case_a.pk}/")
        account_actions_make(case_a, agent, ActionState.PENDING_APPROVAL, 70, action="reset_mfa", minutes_ago=50)
        account_actions_make(case_a, agent, ActionState.ON_HOLD, 8, action="change_contact", params={"field": "phone"},
                   minutes_ago=40)  # fmt: skip
        account_actions_make(case_a, agent, ActionState.CONFIRMED, 4, minutes_ago=5)  # the newest: gone out
        with django_assert_max_num_queries(len(few)):
            html = client.get(f"/cases/{case_a.pk}/").content.decode()
        warning = self._warning(html)
        assert "Resolving cancels 80 account actions</strong>" in warning
        assert 'Reset multi-factor authentication <span class="resolve-count">×72</span>' in warning
        assert 'the phone number <span class="resolve-count">×8</span>' in warning
        # The newest pending ones first, then the newest of all (4 gone out, 6 pending counted already).
        assert html.count('class="action-row ') == CASE_PENDING_SHOWN + 4
        rows = re.findall(r'class="action-row action-(\w+)"', html)
        assert rows == ["on_hold"] * 8 + ["pending_approval"] * (CASE_PENDING_SHOWN - 8) + ["confirmed"] * 4
        assert CASE_ACTIONS_SHOWN == 10
        hidden = re.search(r'data-testid="actions-pending-hidden">(.*?)</p>', html).group(1)
        assert hidden.startswith(f"And {80 - CASE_PENDING_SHOWN} older actions not gone out yet")
        # Resolving cancels every one of them, each recorded.
        assert client.post(f"/cases/{case_a.pk}/resolve/", {"outcome": "account_secured"}).status_code == 302
        assert AccountAction.objects.filter(case=case_a, state=ActionState.CANCELLED).count() == 80
        assert AuditEvent.objects.filter(metadata__event="action_cancelled").count() == 80

    def test_a_case_with_nothing_pending_shows_no_warning_and_asks_nothing_more(
        self, case_a, agent, django_assert_max_num_queries
    ):
        client = verified_client(agent)
        account_actions_make(case_a, agent, ActionState.CONFIRMED, 3)
        client.get(f"/cases/{case_a.pk}/")
        with django_assert_max_num_queries(60) as settled:
            html = client.get(f"/cases/{case_a.pk}/").content.decode()
        assert 'data-testid="resolve-cancels"' not in html
        account_actions_make(case_a, agent, ActionState.WAITING, 1, action="change_contact", params={"field": "email"})
        with django_assert_max_num_queries(len(settled) + 1):  # the count of what resolving cancels
            html = client.get(f"/cases/{case_a.pk}/").content.decode()
        assert "Resolving cancels 1 account action</strong> that has not gone out" in html

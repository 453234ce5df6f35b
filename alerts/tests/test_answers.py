"""The customer's "Was this you?" answer: the signed link and every way it can be bad, the public
page (no login, no script, CSRF, headers, what it shows), both answers and what they do to the
alert, answers racing each other, SMS replies through Twilio's signed webhook, the escalation of
alerts nobody answered, the rate limits, and that no personal data reaches the page or the logs."""

import itertools
import logging
import random
import re
from datetime import timedelta
from unittest import mock

import pytest
from django.core import signing
from django.db import connection
from django.test import Client
from django.utils import timezone

from alerts.models import AlertStatus, AlertType, EventType, MessageSettings, Severity
from alerts.notifications import answers
from alerts.notifications.answers import AnswerTokenInvalid, notification_answer, notification_get_by_answer_token
from alerts.notifications.models import (
    ANSWER_SALT,
    Channel,
    NoAnswerAction,
    Notification,
    NotificationSettings,
    Purpose,
    State,
)
from alerts.services import alert_claim, alert_dismiss, contact_digest
from alerts.signals import alert_disowned
from alerts.sla import sla_due_times
from alerts.tests.factories import T0, AccountEventFactory, AlertFactory, CustomerFactory
from audit.masking import mask
from audit.models import Action, AuditEvent
from config.testing import race

EMAIL, PHONE, NAME = "alice.martin@example.com", "+33612345678", "Alice Martin"
CHROME_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)
SITE = "http://testserver"
SMS_URL = "/r/sms/twilio/"
AUTH_TOKEN = "test-twilio-auth-token"
_ips = itertools.count(random.randrange(1 << 24))  # random: Redis keeps windows between runs too

pytestmark = pytest.mark.django_db


# --- data ------------------------------------------------------------------------------------------


@pytest.fixture
def customer(tenant_a):
    return CustomerFactory(tenant=tenant_a, external_id="alice-77", email=EMAIL, phone=PHONE, display_name=NAME)


@pytest.fixture
def alert(customer):
    event = AccountEventFactory(
        customer=customer,
        type=EventType.LOGIN_SUCCEEDED,
        ip="81.2.69.160",
        context={
            "user_agent": CHROME_ON_WINDOWS,
            "device_id": "device-secret-42",
            "geo": {"country": "FR", "city": "Lyon"},
        },
    )
    return AlertFactory(
        customer=customer, type=AlertType.LOGIN, rule="new_device", severity=Severity.MEDIUM, evidence=[event]
    )


def make_notification(alert, channel=Channel.EMAIL, *, purpose=Purpose.ALERT, sent_ago=timedelta(minutes=5), **fields):
    now = timezone.now()
    address = PHONE if channel in (Channel.SMS, Channel.VOICE) else EMAIL
    field = "phone" if channel in (Channel.SMS, Channel.VOICE) else "email"
    values = {
        "tenant": alert.tenant,
        "alert": alert,
        "customer": alert.customer,
        "channel": channel,
        "purpose": purpose,
        "state": State.SENT if sent_ago is not None else State.QUEUED,
        "recipient": address,
        "recipient_masked": mask(address),
        "recipient_digest": contact_digest(field, address),
        "answer_nonce": Notification.new_nonce(),
        "sent_at": now - sent_ago if sent_ago is not None else None,
        "created_at": now - (sent_ago or timedelta(0)),
        "updated_at": now,
    }
    return Notification.objects.create(**(values | fields))


@pytest.fixture
def email_n(alert):
    return make_notification(alert, Channel.EMAIL)


@pytest.fixture
def sms_n(alert):
    return make_notification(alert, Channel.SMS)


def web_client(**kwargs) -> Client:
    """A customer's browser: its own address, so that rate-limit windows (in Redis on the PostgreSQL
    run, shared by the tests and kept between runs) never carry over from another test."""
    n = next(_ips)
    return Client(REMOTE_ADDR=f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}", **kwargs)


@pytest.fixture
def web():
    return web_client()


@pytest.fixture
def disowned():
    """Calls of alert_disowned, with what the receiver saw: inside a transaction, the alert critical."""
    calls = []

    def receiver(sender, *, alert_id, **kwargs):
        from alerts.models import Alert

        calls.append(
            {
                "alert_id": alert_id,
                "in_transaction": connection.in_atomic_block,
                "severity": Alert.objects.get(pk=alert_id).severity,
                **kwargs,
            }
        )

    alert_disowned.connect(receiver, dispatch_uid="test-answers")
    yield calls
    alert_disowned.disconnect(dispatch_uid="test-answers")


def url_of(notification):
    return f"/r/{notification.answer_token()}/"


def snapshot(alert):
    """What an answer could change: the alert and all its notifications, and the audit trail's length."""
    alert.refresh_from_db()
    rows = list(
        Notification.objects.filter(alert=alert)
        .order_by("id")
        .values_list("id", "answered_at", "answer", "answer_nonce")
    )
    changes = AuditEvent.objects.exclude(action=Action.VIEW).count()  # opening a page is recorded, not a change
    return (alert.status, alert.severity, alert.sla_due_at, alert.closed_at, rows, changes)


def customer_records(**filters):
    return list(AuditEvent.objects.filter(actor_role=answers.CUSTOMER_ROLE, **filters).order_by("id"))


def sign(value: str, *, salt=ANSWER_SALT) -> str:
    return signing.TimestampSigner(salt=salt).sign(value)


def old_token(notification, days: float) -> str:
    with mock.patch("time.time", return_value=timezone.now().timestamp() - days * 86400):
        return notification.answer_token()


# --- the link's token ------------------------------------------------------------------------------


def _forged_tokens(notification):
    """Every way a token can be bad without being expired or used."""
    good = notification.answer_token()
    value, _, signature = good.rpartition(":")
    other_id = notification.pk + 1000
    return {
        "random": "x9Qe2.Hk3ZAwPLzq:1tNbq2:" + "A" * 43,
        "empty-ish": "-",
        "truncated": good[:-6],
        "signature-cut": value,
        "tampered-id": good.replace(f"{notification.pk}.", f"{other_id}.", 1),
        "tampered-nonce": good.replace(notification.answer_nonce, "A" * len(notification.answer_nonce), 1),
        "tampered-signature": f"{value}:{signature[:-1]}{'B' if signature[-1] != 'B' else 'C'}",
        "valid-signature-no-such-id": sign(f"{other_id}.{notification.answer_nonce}"),
        "valid-signature-wrong-nonce": sign(f"{notification.pk}.{Notification.new_nonce()}"),
        "valid-signature-no-nonce": sign(f"{notification.pk}."),
        "valid-signature-not-a-number": sign(f"abc.{notification.answer_nonce}"),
        "other-salt": sign(f"{notification.pk}.{notification.answer_nonce}", salt="something.else"),
        "unsigned": f"{notification.pk}.{notification.answer_nonce}",
        "too-long": good + "A" * 300,
        "non-ascii": good + "é",
    }


class TestToken:
    def test_a_good_token_names_its_notification(self, email_n):
        assert notification_get_by_answer_token(token=email_n.answer_token()) == email_n

    def test_each_forged_token_is_refused_as_forged(self, email_n):
        for name, token in _forged_tokens(email_n).items():
            with pytest.raises(AnswerTokenInvalid) as caught:
                notification_get_by_answer_token(token=token)
            assert caught.value.reason == AnswerTokenInvalid.FORGED, name
            assert caught.value.notification is None, name

    def test_a_forgery_is_refused_before_any_query(self, email_n, django_assert_num_queries):
        token = _forged_tokens(email_n)["tampered-id"]
        with django_assert_num_queries(0), pytest.raises(AnswerTokenInvalid):
            notification_get_by_answer_token(token=token)

    def test_a_replaced_nonce_voids_the_old_link(self, email_n):
        token = email_n.answer_token()
        email_n.answer_nonce = Notification.new_nonce()
        email_n.save(update_fields=["answer_nonce"])
        with pytest.raises(AnswerTokenInvalid, match="forged"):
            notification_get_by_answer_token(token=token)

    @pytest.mark.parametrize("purpose", [Purpose.TEST, Purpose.VERIFICATION])
    def test_notifications_that_ask_nothing_have_no_answer(self, alert, purpose):
        notification = make_notification(alert, Channel.EMAIL, purpose=purpose)
        with pytest.raises(AnswerTokenInvalid, match="forged"):
            notification_get_by_answer_token(token=notification.answer_token())

    def test_a_notice_to_a_previous_address_takes_an_answer(self, alert):
        notice = make_notification(alert, Channel.EMAIL, purpose=Purpose.PREVIOUS_CONTACT)
        assert notification_get_by_answer_token(token=notice.answer_token()) == notice

    def test_the_link_expires_after_the_tenants_days(self, email_n, tenant_a):
        assert notification_get_by_answer_token(token=old_token(email_n, 6.9)) == email_n  # default: 7 days
        with pytest.raises(AnswerTokenInvalid) as caught:
            notification_get_by_answer_token(token=old_token(email_n, 7.1))
        assert caught.value.reason == AnswerTokenInvalid.EXPIRED and caught.value.notification == email_n
        NotificationSettings.objects.create(tenant=tenant_a, answer_link_days=1)
        with pytest.raises(AnswerTokenInvalid, match="expired"):
            notification_get_by_answer_token(token=old_token(email_n, 1.1))

    def test_an_answered_link_is_used(self, email_n):
        notification_answer(notification_id=email_n.pk, answer="yes", via="link")
        with pytest.raises(AnswerTokenInvalid) as caught:
            notification_get_by_answer_token(token=email_n.answer_token())
        assert caught.value.reason == AnswerTokenInvalid.USED


# --- the page ------------------------------------------------------------------------------------


class TestPage:
    def test_the_question_says_what_happened_without_personal_data(self, web, email_n, tenant_a):
        response = web.get(url_of(email_n))
        assert response.status_code == 200
        page = response.content.decode()
        assert tenant_a.name in page
        assert "Was this you?" in page and "a sign-in to your account from a new device" in page
        assert "France" in page and "Chrome on Windows" in page and "around" in page
        assert 'name="answer" value="yes"' in page and 'name="answer" value="no"' in page
        assert "<script" not in page  # works without JavaScript: one form, two buttons
        for secret in (EMAIL, PHONE, NAME, "alice-77", "81.2.69.160", "Lyon", "device-secret-42", mask(EMAIL)):
            assert secret not in page

    def test_the_time_is_approximate_and_in_the_tenants_zone(self, email_n, alert, tenant_a):
        alert.evidence.update(occurred_at=T0 + timedelta(minutes=7, seconds=30))
        assert answers.answer_page_for(notification=email_n).when == "Friday 20 November 2026, around 09:05 UTC"
        MessageSettings.objects.create(tenant=tenant_a, time_zone="Europe/Paris")  # the zone messages use too
        email_n = Notification.objects.get(pk=email_n.pk)
        assert answers.answer_page_for(notification=email_n).when == "Friday 20 November 2026, around 10:05 CET"

    def test_an_alert_without_evidence_shows_its_time_only(self, web, customer):
        bare = AlertFactory(customer=customer, evidence=[], last_seen_at=T0)
        page = web.get(url_of(make_notification(bare))).content.decode()
        assert "around 09:00 UTC" in page and 'data-testid="place"' not in page and 'data-testid="device"' not in page

    def test_headers_keep_the_page_private(self, web, email_n):
        response = web.get(url_of(email_n))
        assert "no-store" in response["Cache-Control"]
        assert response["Referrer-Policy"] == "no-referrer"
        assert response["X-Robots-Tag"] == "noindex, nofollow"
        assert '<meta name="robots" content="noindex, nofollow">' in response.content.decode()
        csp = response["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "form-action 'self'" in csp

    def test_refusals_carry_the_same_headers(self, web, email_n):
        for response in (web.get("/r/nonsense/"), web.get(url_of(email_n).replace("/r/", "/r/x"))):
            assert response.status_code == 404
            assert response["Referrer-Policy"] == "no-referrer" and "no-store" in response["Cache-Control"]

    def test_the_first_visit_sets_the_csrf_cookie_and_the_form_then_works(self, email_n, alert):
        browser = web_client(enforce_csrf_checks=True)
        refused = browser.post(url_of(email_n), {"answer": "no"})  # no cookie yet: refused, nothing done
        assert refused.status_code == 403 and "Please try again" in refused.content.decode()
        alert.refresh_from_db()
        assert alert.severity == Severity.MEDIUM
        page = browser.get(url_of(email_n))
        assert "csrftoken" in page.cookies
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
        # The page's no-referrer policy makes browsers send "Origin: null": let through to the token check.
        answered = browser.post(url_of(email_n), {"answer": "no", "csrfmiddlewaretoken": token}, HTTP_ORIGIN="null")
        assert answered.status_code == 200
        alert.refresh_from_db()
        assert alert.severity == Severity.CRITICAL

    def test_a_form_from_another_site_is_refused(self, email_n, alert):
        browser = web_client(enforce_csrf_checks=True)
        page = browser.get(url_of(email_n))
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
        before = snapshot(alert)
        for origin in ("https://evil.example", "http://testserver.evil.example"):
            response = browser.post(
                url_of(email_n), {"answer": "yes", "csrfmiddlewaretoken": token}, HTTP_ORIGIN=origin
            )
            assert response.status_code == 403
        assert snapshot(alert) == before
        # A null origin with no token of the page (a form posted from elsewhere carries no cookie) fails too.
        stranger = web_client(enforce_csrf_checks=True)
        assert stranger.post(url_of(email_n), {"answer": "yes"}, HTTP_ORIGIN="null").status_code == 403
        assert snapshot(alert) == before

    def test_opening_the_page_changes_nothing_but_is_recorded(self, web, email_n, alert):
        status, severity, *_ = snapshot(alert)
        web.get(url_of(email_n))
        alert.refresh_from_db()
        email_n.refresh_from_db()
        assert (alert.status, alert.severity, email_n.answered_at) == (status, severity, None)
        (viewed,) = customer_records(action=Action.VIEW)
        assert viewed.target_id == str(email_n.pk) and viewed.actor is None
        assert viewed.metadata == {"event": "answer_page_viewed", "alert": alert.pk}

    @pytest.mark.parametrize("method", ["get", "post"])
    def test_every_forged_link_gets_the_same_404_and_changes_nothing(self, web, email_n, alert, method):
        before = snapshot(alert)
        bodies = set()
        for name, token in _forged_tokens(email_n).items():
            response = getattr(web, method)(f"/r/{token}/", {"answer": "no"} if method == "post" else None)
            assert response.status_code == 404, name
            bodies.add(response.content)
        assert len(bodies) == 1  # nothing tells one forgery from another
        assert b"recognise this link" in bodies.pop()
        assert snapshot(alert) == before

    def test_an_expired_link_gets_410_and_changes_nothing(self, web, email_n, alert):
        token = old_token(email_n, 8)
        before = snapshot(alert)
        for response in (web.get(f"/r/{token}/"), web.post(f"/r/{token}/", {"answer": "no"})):
            assert response.status_code == 410 and "This link has expired" in response.content.decode()
        assert snapshot(alert) == before

    def test_a_used_link_gets_410_and_changes_nothing(self, web, email_n, alert):
        assert web.post(url_of(email_n), {"answer": "no"}).status_code == 200
        before = snapshot(alert)
        for answer in ("no", "yes"):
            again = web.post(url_of(email_n), {"answer": answer})
            assert again.status_code == 410
            assert "We already have your answer" in again.content.decode()
            assert "Change your password" in again.content.decode()  # the steps again, for who reloaded
        assert web.get(url_of(email_n)).status_code == 410
        assert snapshot(alert) == before

    @pytest.mark.parametrize("answer", ["", "maybe", "YES", "yes ", "1"])
    def test_a_malformed_answer_is_400_and_changes_nothing(self, web, email_n, alert, answer):
        before_alert = snapshot(alert)[:5]
        response = web.post(url_of(email_n), {"answer": answer})
        assert response.status_code == 400 and "choose one of the two answers" in response.content.decode()
        assert snapshot(alert)[:5] == before_alert

    def test_other_methods_are_refused(self, web, email_n, alert):
        before = snapshot(alert)
        assert web.put(url_of(email_n), "answer=no").status_code == 405
        assert web.delete(url_of(email_n)).status_code == 405
        assert snapshot(alert) == before

    def test_a_staff_session_is_no_key(self, otp_client, email_n, alert):
        # The page is the customer's: a desk session neither helps nor hinders; the token decides.
        assert otp_client.get("/r/nonsense/").status_code == 404
        assert otp_client.get(url_of(email_n)).status_code == 200

    def test_the_access_log_shows_the_route_not_the_token(self, web, email_n, caplog):
        caplog.set_level(logging.DEBUG)
        token = email_n.answer_token()
        web.get(f"/r/{token}/")
        web.get(f"/r/{token[:-3]}/")
        web.post(f"/r/{token}/", {"answer": "yes"})
        web.post(f"/r/{token}/", {"answer": "yes"})  # 410
        assert any(r.name == "alertdesk.access" and "/r/<token>/" in r.getMessage() for r in caplog.records)
        for record in caplog.records:
            assert token[:20] not in record.getMessage() and token[:20] not in str(record.__dict__)


# --- the answers ---------------------------------------------------------------------------------


class TestYes:
    def test_yes_resolves_the_alert_as_confirmed_by_the_customer(self, web, email_n, sms_n, alert, tenant_a):
        with mock.patch("config.push.tenant_events") as announce:
            response = web.post(url_of(email_n), {"answer": "yes"})
        assert response.status_code == 200 and "Thank you" in response.content.decode()
        alert.refresh_from_db()
        assert alert.status == AlertStatus.RESOLVED and alert.closed_by is None and alert.sla_due_at is None
        assert f"notification #{email_n.pk}" in alert.resolution_note
        email_n.refresh_from_db()
        assert email_n.answer == "yes" and email_n.answered_at is not None
        ((tenant_id, event, payload),) = announce.call_args.args[0]
        assert (tenant_id, event, payload["id"], payload["status"]) == (
            tenant_a.pk,
            "alert.updated",
            alert.pk,
            "resolved",
        )
        (answered,) = customer_records(action=Action.UPDATE, target_type="alerts.notification")
        assert answered.actor is None and answered.target_id == str(email_n.pk)
        assert answered.changes == {"answer": {"before": None, "after": "yes"}}
        assert f"email notification #{email_n.pk}" in answered.reason and "Yes, it was me" in answered.reason
        assert answered.metadata | {"closed": []} == {
            "event": "customer_answered", "alert": alert.pk, "answer": "yes", "via": "link", "closed": [],
        }  # fmt: skip
        resolved = AuditEvent.objects.get(target_type="alerts.alert", target_id=str(alert.pk), action=Action.UPDATE)
        assert resolved.changes == {"status": {"before": "open", "after": "resolved"}}
        assert f"notification #{email_n.pk}" in resolved.reason

    def test_after_a_yes_the_other_links_take_a_no_only(self, web, email_n, sms_n, alert, disowned):
        notification_answer(notification_id=sms_n.pk, answer="yes", via="sms")
        page = web.get(url_of(email_n)).content.decode()
        assert 'data-testid="confirmed"' in page
        assert 'value="no"' in page and 'value="yes"' not in page
        before = snapshot(alert)
        assert web.post(url_of(email_n), {"answer": "yes"}).status_code == 410
        assert snapshot(alert) == before
        # Whoever answered "Yes" on one channel cannot silence the customer on another.
        assert web.post(url_of(email_n), {"answer": "no"}).status_code == 200
        assert [c["alert_id"] for c in disowned] == [alert.pk]
        alert.refresh_from_db()
        assert alert.status == AlertStatus.RESOLVED  # closed is final; the case takes it up

    def test_yes_to_an_alert_an_agent_closed_is_recorded_and_changes_it_not(self, web, email_n, alert, agent):
        alert_dismiss(alert=alert, actor=agent, note="Known travel.")
        alert.refresh_from_db()
        closed = (alert.status, alert.closed_by_id, alert.closed_at, alert.resolution_note)
        assert web.post(url_of(email_n), {"answer": "yes"}).status_code == 200
        alert.refresh_from_db()
        assert (alert.status, alert.closed_by_id, alert.closed_at, alert.resolution_note) == closed
        email_n.refresh_from_db()
        assert email_n.answer == "yes"
        assert len(customer_records(action=Action.UPDATE)) == 1

    def test_yes_resolves_an_alert_an_agent_holds(self, email_n, alert, agent):
        alert_claim(alert=alert, actor=agent)
        result = notification_answer(notification_id=email_n.pk, answer="yes", via="link")
        assert result.alert_changed and result.alert.status == AlertStatus.RESOLVED
        assert result.alert.assignee == agent  # who worked it stays


class TestNo:
    def test_no_escalates_opens_the_case_and_shows_the_steps(self, web, email_n, sms_n, alert, tenant_a, disowned):
        alert_n = make_notification(alert, Channel.PUSH)
        with mock.patch("config.push.tenant_events") as announce:
            response = web.post(url_of(email_n), {"answer": "no"})
        assert response.status_code == 200
        page = response.content.decode()
        assert "Let's secure your account" in page
        for step in answers.secure_steps_for(alert_type=alert.type, tenant_name=tenant_a.name):
            assert step.replace("'", "&#x27;") in page
        alert.refresh_from_db()
        assert alert.severity == Severity.CRITICAL and alert.status == AlertStatus.OPEN
        first, resolution = sla_due_times(
            {}, tenant_id=tenant_a.pk, severity=Severity.CRITICAL, raised_at=alert.created_at
        )
        assert (alert.first_response_due_at, alert.resolution_due_at, alert.sla_due_at) == (first, resolution, first)
        ((_, event, payload),) = announce.call_args.args[0]
        assert (event, payload["severity"], payload["previous_severity"]) == ("alert.updated", 4, Severity.MEDIUM)
        # The case opens in the answer's transaction, after the escalation.
        assert disowned == [{"alert_id": alert.pk, "in_transaction": True, "severity": Severity.CRITICAL,
                             "notification_id": email_n.pk, "via": "link", "signal": alert_disowned}]  # fmt: skip
        # Every other link of the alert is closed: the SMS and the push no longer work.
        for other in (sms_n, alert_n):
            other.refresh_from_db()
            assert other.answered_at is not None and other.answer == ""
            closed = web.get(url_of(other))
            assert closed.status_code == 410 and "We were told this was not you" in closed.content.decode()
            assert "Change your password" in closed.content.decode()  # the steps, whichever message is read
        (answered,) = customer_records(action=Action.UPDATE, target_type="alerts.notification")
        assert sorted(answered.metadata["closed"]) == sorted([sms_n.pk, alert_n.pk])
        raised = AuditEvent.objects.get(target_type="alerts.alert", target_id=str(alert.pk))
        assert raised.actor_role == "customer" and raised.changes == {"severity": {"before": 2, "after": 4}}
        assert f"notification #{email_n.pk}" in raised.reason

    def test_no_leaves_the_account_action_to_the_desk(self, web, email_n, alert, disowned):
        """The account actions a "No" asks for are the desk's (desk/tests/test_actions.py: the tenant's
        customer_no_actions, through the signed webhook); the answer records none of its own."""
        web.post(url_of(email_n), {"answer": "no"})
        assert [c["alert_id"] for c in disowned] == [alert.pk]
        assert customer_records(action=Action.CREATE, metadata__event="account_action_requested") == []

    def test_no_to_a_closed_alert_is_never_dropped(self, web, email_n, alert, agent, disowned):
        alert_dismiss(alert=alert, actor=agent, note="Looked like travel.")
        response = web.post(url_of(email_n), {"answer": "no"})
        assert response.status_code == 200 and "Let's secure your account" in response.content.decode()
        alert.refresh_from_db()
        assert alert.status == AlertStatus.DISMISSED and alert.severity == Severity.MEDIUM  # final stays final
        assert [c["alert_id"] for c in disowned] == [alert.pk]  # the case opens all the same

    def test_no_to_a_critical_alert_keeps_it_and_opens_the_case(self, email_n, alert, disowned):
        alert.severity = Severity.CRITICAL
        alert.save(update_fields=["severity"])
        result = notification_answer(notification_id=email_n.pk, answer="no", via="link")
        assert result.alert_changed is False and len(disowned) == 1
        assert not AuditEvent.objects.filter(target_type="alerts.alert").exists()

    def test_a_receiver_that_fails_undoes_the_answer(self, email_n, alert):
        def broken(sender, **kwargs):
            raise RuntimeError("the desk is down")

        alert_disowned.connect(broken, dispatch_uid="test-broken")
        try:
            with pytest.raises(RuntimeError):
                notification_answer(notification_id=email_n.pk, answer="no", via="link")
        finally:
            alert_disowned.disconnect(dispatch_uid="test-broken")
        alert.refresh_from_db()
        email_n.refresh_from_db()
        assert alert.severity == Severity.MEDIUM and email_n.answered_at is None  # can be sent again
        assert notification_get_by_answer_token(token=email_n.answer_token()) == email_n

    def test_a_previous_address_says_no(self, web, alert, disowned):
        notice = make_notification(alert, Channel.EMAIL, purpose=Purpose.PREVIOUS_CONTACT)
        page = web.get(url_of(notice)).content.decode()
        assert "was on your account until recently" in page
        assert web.post(url_of(notice), {"answer": "no"}).status_code == 200
        assert len(disowned) == 1


class TestSteps:
    ESSENTIALS = {
        "official": "official",  # change the password from the official site or app
        "devices": "devices and apps",  # check and remove unknown devices or apps
        "two-step": "two-step verification",  # back on
        "codes": "Never share a code",
        "support": "support through the official app or website",
    }

    @pytest.mark.parametrize("alert_type", AlertType.values)
    def test_every_alert_type_gets_the_essential_steps(self, alert_type):
        steps = answers.secure_steps_for(alert_type=alert_type, tenant_name="Acme Bank")
        text = " ".join(steps)
        for name, words in self.ESSENTIALS.items():
            assert words in text, (alert_type, name)
        assert any("password" in step and "official" in step for step in steps)
        assert len(steps) == len(set(steps))
        assert "http" not in text and "{" not in text and "Acme Bank" in text

    def test_an_unknown_type_gets_the_essentials(self):
        assert len(answers.secure_steps_for(alert_type="new_kind", tenant_name="X")) == len(answers.ESSENTIAL_STEPS)


# --- answers racing ------------------------------------------------------------------------------


def _answer_or_used(notification_id, answer, via="link"):
    def job():
        try:
            notification_answer(notification_id=notification_id, answer=answer, via=via)
            return "done"
        except AnswerTokenInvalid as error:
            return error.reason

    return job


class TestDoubleSubmit:
    def test_the_same_link_twice_acts_once(self, web, email_n, alert, disowned):
        assert web.post(url_of(email_n), {"answer": "no"}).status_code == 200
        assert web.post(url_of(email_n), {"answer": "no"}).status_code == 410
        assert len(disowned) == 1
        assert len(customer_records(action=Action.UPDATE, target_type="alerts.notification")) == 1

    def test_an_sms_reply_after_the_link_acts_once(self, web, email_n, sms_n, alert, disowned):
        assert web.post(url_of(email_n), {"answer": "no"}).status_code == 200
        assert answers.answer_sms_receive(from_number=PHONE, body="NO") == answers.SmsReply.NEUTRAL  # closed
        assert len(disowned) == 1


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
class TestRaces:
    """Real concurrent transactions (PostgreSQL): the alert's lock takes its answers one at a time."""

    @pytest.mark.parametrize("answer", ["yes", "no"])
    def test_two_tabs_answering_at_once_act_once(self, alert, email_n, disowned, answer):
        results = race(*[_answer_or_used(email_n.pk, answer) for _ in range(3)])
        assert sorted(results) == ["done", "used", "used"]
        assert len(customer_records(action=Action.UPDATE, target_type="alerts.notification")) == 1
        assert len(disowned) == (1 if answer == "no" else 0)
        alert.refresh_from_db()
        assert alert.status == (AlertStatus.RESOLVED if answer == "yes" else AlertStatus.OPEN)

    def test_an_sms_yes_and_a_link_yes_at_once_act_once(self, alert, email_n, sms_n):
        results = race(_answer_or_used(email_n.pk, "yes"), _answer_or_used(sms_n.pk, "yes", via="sms"))
        assert sorted(results) == ["done", "used"]
        assert AuditEvent.objects.filter(target_type="alerts.alert", changes__status__after="resolved").count() == 1

    def test_a_yes_and_a_no_at_once_end_with_the_no(self, alert, email_n, sms_n, disowned):
        results = race(_answer_or_used(email_n.pk, "yes"), _answer_or_used(sms_n.pk, "no", via="sms"))
        sms_n.refresh_from_db()
        assert sms_n.answer == "no" and len(disowned) == 1  # the "No" is never lost
        assert results[1] == "done" and results[0] in ("done", "used")  # the "Yes" counts only if it came first


# --- SMS replies ---------------------------------------------------------------------------------


@pytest.fixture
def twilio(settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.NOTIFICATION_PUBLIC_URL = "https://alerts.example.com/"

    def post(body, *, sender=PHONE, signature=None, client=None, **extra):
        params = {"From": sender, "To": "+15005550006", "Body": body, "MessageSid": "SM" + "0" * 32,
                  "AccountSid": "AC" + "1" * 32, **extra}  # fmt: skip
        if signature is None:
            signature = answers.twilio_signature(
                auth_token=AUTH_TOKEN, url="https://alerts.example.com" + SMS_URL, params=params
            )
        headers = {"HTTP_X_TWILIO_SIGNATURE": signature} if signature else {}
        return (client or Client()).post(SMS_URL, params, **headers)

    return post


def _message(response) -> str:
    found = re.search(r"<Message>(.*)</Message>", response.content.decode(), re.S)
    return found.group(1) if found else ""


class TestSms:
    def test_the_signature_is_twilios_documented_algorithm(self):
        # The example of Twilio's webhook security documentation.
        params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
                  "From": "+12349013030", "To": "+18005551212"}  # fmt: skip
        signed = answers.twilio_signature(
            auth_token="12345", url="https://mycompany.com/myapp.php?foo=1&bar=2", params=params
        )
        assert signed == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="

    def test_yes_by_sms_resolves_the_alert(self, twilio, sms_n, email_n, alert, tenant_a):
        response = twilio("Yes")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/xml")
        assert _message(response) == answers.SmsReply.YES.format(tenant=tenant_a.name)
        alert.refresh_from_db()
        sms_n.refresh_from_db()
        assert alert.status == AlertStatus.RESOLVED and sms_n.answer == "yes"
        (answered,) = customer_records(action=Action.UPDATE, target_type="alerts.notification")
        assert answered.metadata["via"] == "sms" and answered.metadata["message_sid"] == "SM" + "0" * 32
        assert f"sms notification #{sms_n.pk}" in answered.reason

    def test_no_by_sms_escalates(self, twilio, sms_n, email_n, alert, disowned, tenant_a):
        response = twilio(" no. ")
        assert _message(response) == answers.SmsReply.NO.format(tenant=tenant_a.name)
        alert.refresh_from_db()
        assert alert.severity == Severity.CRITICAL and [c["via"] for c in disowned] == ["sms"]
        email_n.refresh_from_db()
        assert email_n.answered_at is not None  # the email's link is closed

    def test_the_reply_goes_to_the_latest_pending_sms(self, twilio, customer, alert, sms_n):
        newer = AlertFactory(customer=customer, type=AlertType.PASSWORD, rule="password_change")
        latest = make_notification(newer, Channel.SMS, sent_ago=timedelta(minutes=1))
        twilio("YES")
        latest.refresh_from_db()
        sms_n.refresh_from_db()
        assert latest.answer == "yes" and sms_n.answer == ""
        twilio("NO")  # the next reply: the older one, still pending
        sms_n.refresh_from_db()
        assert sms_n.answer == "no"

    @pytest.mark.parametrize("signature", ["", "bm9wZQ==", "forged"])
    def test_a_bad_or_missing_signature_is_403_and_changes_nothing(self, twilio, sms_n, alert, signature):
        before = snapshot(alert)
        response = twilio("NO", signature=signature or False)
        assert response.status_code == 403
        assert snapshot(alert) == before

    def test_a_signature_over_other_parameters_is_403(self, twilio, sms_n, alert):
        params = {"From": PHONE, "Body": "YES"}
        signed = answers.twilio_signature(
            auth_token=AUTH_TOKEN, url="https://alerts.example.com" + SMS_URL, params=params
        )
        before = snapshot(alert)
        assert twilio("NO", signature=signed).status_code == 403  # the body was changed after signing
        assert snapshot(alert) == before

    def test_no_auth_token_configured_refuses_everything(self, twilio, sms_n, alert, settings):
        settings.TWILIO_AUTH_TOKEN = ""
        before = snapshot(alert)
        assert twilio("NO", signature="anything").status_code == 403
        assert snapshot(alert) == before

    def test_a_get_is_refused(self, twilio):
        assert Client().get(SMS_URL).status_code == 405

    def test_an_unknown_number_gets_a_neutral_reply_and_changes_nothing(self, twilio, sms_n, alert):
        before = snapshot(alert)
        response = twilio("NO", sender="+447700900123")
        assert response.status_code == 200 and _message(response) == answers.SmsReply.NEUTRAL
        assert snapshot(alert) == before

    def test_a_number_with_nothing_pending_gets_the_same_neutral_reply(self, twilio, sms_n, alert):
        notification_answer(notification_id=sms_n.pk, answer="no", via="link")
        assert _message(twilio("YES")) == answers.SmsReply.NEUTRAL

    def test_an_sms_older_than_its_link_is_not_matched(self, twilio, alert):
        make_notification(alert, Channel.SMS, sent_ago=timedelta(days=8))
        before = snapshot(alert)
        assert _message(twilio("NO")) == answers.SmsReply.NEUTRAL
        assert snapshot(alert) == before

    def test_an_email_to_the_same_person_is_not_an_sms(self, twilio, email_n, alert):
        assert _message(twilio("NO")) == answers.SmsReply.NEUTRAL

    @pytest.mark.parametrize("body", ["maybe", "what is this?", "", "YES NO", "1"])
    def test_an_unclear_reply_gets_help_and_changes_nothing(self, twilio, sms_n, alert, tenant_a, body):
        before = snapshot(alert)
        message = _message(twilio(body))
        assert message.startswith("About a sign-in to your account from a new device: reply YES if it was you")
        assert tenant_a.name in message
        assert snapshot(alert) == before

    def test_carrier_keywords_get_no_reply_of_ours(self, twilio, sms_n, alert):
        before = snapshot(alert)
        response = twilio("STOP")
        assert response.status_code == 200 and _message(response) == ""
        assert snapshot(alert) == before

    def test_replies_fit_an_sms(self, tenant_a):
        takeover = answers.WHAT_HAPPENED[AlertType.ACCOUNT_TAKEOVER]
        texts = [
            answers.SmsReply.NEUTRAL,
            answers.SmsReply.ALREADY,
            answers.SmsReply.YES.format(tenant=tenant_a.name),
            answers.SmsReply.NO.format(tenant=tenant_a.name),
            answers.SmsReply.HELP.format(what=takeover, tenant=tenant_a.name),
        ]
        for text in texts:
            assert len(text) <= 160 and text.isascii(), text


# --- no answer in time ---------------------------------------------------------------------------


class TestNoAnswer:
    def test_an_unanswered_alert_is_raised_once(self, alert, tenant_a):
        make_notification(alert, Channel.SMS, sent_ago=timedelta(minutes=61))
        with mock.patch("config.push.tenant_events") as announce:
            assert answers.alerts_escalate_unanswered() == [alert.pk]
            assert answers.alerts_escalate_unanswered() == []  # idempotent
        alert.refresh_from_db()
        assert alert.severity == Severity.CRITICAL and alert.status == AlertStatus.OPEN
        first, _ = sla_due_times({}, tenant_id=tenant_a.pk, severity=Severity.CRITICAL, raised_at=alert.created_at)
        assert alert.sla_due_at == first
        announce.assert_called_once()
        (record,) = AuditEvent.objects.filter(target_type="alerts.alert", target_id=str(alert.pk))
        assert record.actor is None and record.changes == {"severity": {"before": 2, "after": 4}}
        assert record.metadata == {"event": "no_answer_escalated", "window_minutes": 60, "action": "raise_severity"}
        assert "did not answer within 60 minutes" in record.reason

    def test_the_beat_task_runs_it(self, alert, settings):
        make_notification(alert, Channel.EMAIL, sent_ago=timedelta(hours=2))
        schedule = settings.CELERY_BEAT_SCHEDULE["notification-no-answer"]
        from alerts.notifications.answer_tasks import notifications_no_answer_task

        assert schedule["task"] == notifications_no_answer_task.name
        assert notifications_no_answer_task.apply().get() == 1
        alert.refresh_from_db()
        assert alert.severity == Severity.CRITICAL

    def test_within_the_window_or_unsent_nothing_happens(self, alert):
        make_notification(alert, Channel.SMS, sent_ago=timedelta(minutes=59))
        make_notification(alert, Channel.EMAIL, sent_ago=None)
        assert answers.alerts_escalate_unanswered() == []

    @pytest.mark.parametrize("answer", ["yes", "no"])
    def test_an_answered_alert_is_left_to_the_answer(self, alert, answer):
        sms = make_notification(alert, Channel.SMS, sent_ago=timedelta(hours=2))
        make_notification(alert, Channel.EMAIL, sent_ago=timedelta(hours=2))
        notification_answer(notification_id=sms.pk, answer=answer, via="sms")
        count = AuditEvent.objects.count()
        assert answers.alerts_escalate_unanswered() == []
        assert AuditEvent.objects.count() == count

    def test_closed_and_critical_alerts_are_left_alone(self, alert, customer, agent):
        make_notification(alert, Channel.SMS, sent_ago=timedelta(hours=2))
        alert_dismiss(alert=alert, actor=agent, note="Fine.")
        critical = AlertFactory(customer=customer, severity=Severity.CRITICAL)
        make_notification(critical, Channel.SMS, sent_ago=timedelta(hours=2))
        assert answers.alerts_escalate_unanswered() == []

    def test_drills_and_verification_codes_do_not_count(self, alert):
        make_notification(alert, Channel.SMS, purpose=Purpose.VERIFICATION, sent_ago=timedelta(hours=2))
        assert answers.alerts_escalate_unanswered() == []

    def test_each_tenant_has_its_window_and_action(self, customer, tenant_b):
        short = AlertFactory(customer=customer)
        make_notification(short, Channel.SMS, sent_ago=timedelta(minutes=11))
        NotificationSettings.objects.create(tenant=customer.tenant, answer_window_minutes=10)
        quiet = AlertFactory(customer=CustomerFactory(tenant=tenant_b))
        make_notification(quiet, Channel.SMS, sent_ago=timedelta(hours=5))
        NotificationSettings.objects.create(tenant=tenant_b, no_answer_action=NoAnswerAction.NOTHING)
        assert answers.alerts_escalate_unanswered() == [short.pk]

    def test_an_answer_that_comes_first_wins(self, alert):
        sms = make_notification(alert, Channel.SMS, sent_ago=timedelta(hours=2))
        due = answers.alerts_unanswered(now=timezone.now())
        notification_answer(notification_id=sms.pk, answer="yes", via="sms")  # between the scan and the step
        assert not answers.alert_escalate_unanswered(alert_id=alert.pk, window_minutes=due[0][1])


# --- rate limits ---------------------------------------------------------------------------------


class TestRateLimits:
    @pytest.fixture(autouse=True)
    def _one_window(self):
        # Fixed windows: a test must not straddle two (the counts would start again).
        with mock.patch.object(answers, "_clock", return_value=random.randrange(2_000_000_000, 3_000_000_000)):
            yield

    def test_one_address_is_limited(self, web, email_n, sms_n, settings):
        settings.ANSWER_RATE_LIMITS = {"ip": (3, 60)}
        assert [web.get(url_of(n)).status_code for n in (email_n, sms_n, email_n)] == [200, 200, 200]
        limited = web.get(url_of(sms_n))
        assert limited.status_code == 429 and "Too many attempts" in limited.content.decode()
        assert int(limited["Retry-After"]) > 0 and limited["Referrer-Policy"] == "no-referrer"

    def test_one_token_is_limited_from_any_address(self, email_n, settings):
        settings.ANSWER_RATE_LIMITS = {"token": (2, 600)}
        clients = [web_client() for _ in range(3)]
        tokens = [email_n.answer_token(), old_token(email_n, 0.1), old_token(email_n, 0.2)]  # signed at other times
        assert [c.get(f"/r/{t}/").status_code for c, t in zip(clients, tokens, strict=True)] == [200, 200, 429]

    def test_an_address_trying_bad_links_is_stopped_and_a_limited_answer_changes_nothing(
        self, web, email_n, alert, settings
    ):
        settings.ANSWER_RATE_LIMITS = {"ip_failures": (3, 600)}
        for n in range(3):
            assert web.get(f"/r/guess{n}/").status_code == 404
        before = snapshot(alert)
        assert web.post(url_of(email_n), {"answer": "no"}).status_code == 429  # even a good link, for a while
        assert snapshot(alert) == before
        assert web_client().get(url_of(email_n)).status_code == 200  # others are not affected


# --- personal data -------------------------------------------------------------------------------


def test_no_personal_data_in_pages_logs_or_the_trail(web, twilio, email_n, sms_n, alert, caplog):
    caplog.set_level(logging.DEBUG)
    token = email_n.answer_token()
    pages = [
        web.get(f"/r/{token}/"),
        web.post(f"/r/{token}/", {"answer": "no"}),
        web.get(f"/r/{token}/"),
        web.get(f"/r/{token[:-2]}/"),
        twilio("YES"),
        twilio("maybe", sender="+447700900123"),
    ]
    answers.alerts_escalate_unanswered()
    secrets = (EMAIL, PHONE, PHONE[1:], NAME, "alice-77", "device-secret-42", "81.2.69.160", "Lyon")
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    trail = "\n".join(f"{e.reason} {e.changes} {e.metadata} {e.target_label}" for e in AuditEvent.objects.all())
    for secret in secrets:
        assert secret not in logged and secret not in trail, secret
        for response in pages:
            assert secret not in response.content.decode(), secret

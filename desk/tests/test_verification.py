"""Verifying the caller (issue 11): a code sent only to a channel on file through the notifications
pipeline, checked, throttled, one verification per customer at a time, stored hashed; repeated
wrong codes raise a social-engineering flag; and each refusal of the API."""

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.models import OutboxMessage
from alerts.notifications.models import Notification, Purpose, State
from alerts.tests.factories import AlertFactory, CustomerFactory
from audit.models import AuditEvent
from desk.models import Case, ConcernKind, SecurityConcern, Verification, VerificationState
from desk.selectors import case_is_verified
from desk.services import case_open
from desk.tests.conftest import PHONE
from desk.verification import CODES_PER_WINDOW, MAX_ATTEMPTS

pytestmark = pytest.mark.django_db


def _post(client, url, body=None):
    return client.post(url, json.dumps(body if body is not None else {}), content_type="application/json")


def _url(case, step="verification/"):
    return f"/api/v1/cases/{case.pk}/{step}"


def _send(client, case, channel="sms"):
    return _post(client, _url(case), {"method": "otp", "channel": channel})


def _code_sent(case) -> str:
    """The code as the customer received it: read from the development outbox."""
    message = OutboxMessage.objects.filter(notification__customer_id=case.customer_id).order_by("-id").first()
    return re.search(r"verification code is (\d{6})", message.body).group(1)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


@pytest.fixture
def client_a(agent):
    return verified_client(agent)


class TestSendingACode:
    def test_the_code_goes_once_to_the_phone_on_file_through_the_notifications_pipeline(
        self, client_a, case_a, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = _send(client_a, case_a)
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["state"] == "pending" and body["channel"] == "sms" and PHONE not in json.dumps(body)
        notification = Notification.objects.get(purpose=Purpose.VERIFICATION, customer_id=case_a.customer_id)
        assert notification.state == State.DELIVERED and notification.recipient == PHONE
        messages = OutboxMessage.objects.filter(notification=notification)
        assert messages.count() == 1 and messages.get().recipient == PHONE
        text = messages.get().body
        assert "Tenant A" in text and "only when YOU called them" in text and "Never share it" in text
        code = _code_sent(case_a)
        verification = Verification.objects.get(case=case_a)
        assert code not in verification.code_hash and verification.strength == "strong"
        assert verification.expires_at - verification.created_at == timedelta(minutes=10)

    def test_the_code_is_in_no_table_but_the_development_outbox(
        self, client_a, case_a, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as queries:
            _send(client_a, case_a)
        code = _code_sent(case_a)
        writes = [
            q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))
        ]
        leaking = [sql for sql in writes if code in sql and "outboxmessage" not in sql.lower()]
        assert leaking == []
        audit = AuditEvent.objects.filter(target_type="desk.case", target_id=str(case_a.pk))
        assert code not in json.dumps(list(audit.values("changes", "metadata", "reason")), default=str)

    def test_an_address_in_the_request_is_refused_and_nothing_is_sent(self, client_a, case_a):
        response = _post(client_a, _url(case_a), {"method": "otp", "channel": "sms", "phone": "+15550000000"})
        assert response.status_code == 400
        assert not Verification.objects.exists() and not Notification.objects.filter(purpose="verification").exists()

    def test_no_channel_on_file_is_refused(self, tenant_a, agent):
        customer = CustomerFactory(tenant=tenant_a, external_id="no-phone", phone="", email="x@example.com")
        case, _ = case_open(actor=agent, alert=AlertFactory(customer=customer))
        response = _send(verified_client(agent), case)
        assert response.status_code == 400
        assert not Verification.objects.exists()

    @pytest.mark.parametrize(
        "body",
        [{}, {"method": "otp"}, {"method": "sms"}, {"method": "otp", "channel": "fax"}, {"method": "otp", "channel": 3},
         {"method": "push_match", "channel": "sms"}, []],
    )  # fmt: skip
    def test_malformed_input_is_a_400_and_changes_nothing(self, client_a, case_a, body):
        assert _post(client_a, _url(case_a), body).status_code == 400
        assert not Verification.objects.exists()

    def test_codes_are_throttled_per_customer(self, client_a, case_a):
        for _ in range(CODES_PER_WINDOW):
            assert _send(client_a, case_a).status_code == 202
        response = _send(client_a, case_a)
        assert response.status_code == 429
        assert Verification.objects.count() == CODES_PER_WINDOW
        # each new code replaced the agent's own waiting one: only the last waits
        assert Verification.objects.filter(state="pending").count() == 1


class TestOneVerificationPerCustomer:
    def test_a_second_agent_is_refused_with_who_and_when(self, client_a, case_a, tenant_a, alert_a):
        other = make_staff("agent2", role=Role.AGENT, tenants=[tenant_a], default_queue=True)
        assert _send(client_a, case_a).status_code == 202
        response = _send(verified_client(other), case_a)
        assert response.status_code == 409
        assert "agent started verifying this customer at" in response.json()["detail"]
        assert Verification.objects.count() == 1
        # nor can they record a callback meanwhile
        response = _post(verified_client(other), _url(case_a), {"method": "callback"})
        assert response.status_code == 409
        assert not case_is_verified(Case.objects.get(pk=case_a.pk))

    def test_an_expired_code_no_longer_blocks_the_next(self, client_a, case_a, tenant_a):
        other = make_staff("agent2", role=Role.AGENT, tenants=[tenant_a], default_queue=True)
        _send(client_a, case_a)
        Verification.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        assert _send(verified_client(other), case_a).status_code == 202
        assert list(Verification.objects.order_by("id").values_list("state", flat=True)) == ["expired", "pending"]


class TestChecking:
    def test_the_right_code_verifies_the_case_for_thirty_minutes_and_reveal_works(
        self, client_a, case_a, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            _send(client_a, case_a)
        response = _post(client_a, _url(case_a, "verification/check/"), {"code": _code_sent(case_a)})
        assert response.status_code == 200 and response.json()["verified"] is True
        case = Case.objects.get(pk=case_a.pk)
        assert case_is_verified(case) and case.verification_method == "otp_sms"
        assert case.verified_until - case.verified_at == timedelta(minutes=30)
        assert Verification.objects.get().state == VerificationState.VERIFIED
        events = AuditEvent.objects.filter(target_type="desk.case", target_id=str(case.pk))
        assert {"verification_requested", "verified"} <= {e.metadata.get("event") for e in events}
        reveal = _post(client_a, _url(case_a, "reveal/"), {"field": "phone", "reason": "confirm the number"})
        assert reveal.status_code == 200 and reveal.json()["value"] == PHONE
        detail = client_a.get(_url(case_a, "")).json()
        assert detail["verified"] is True and detail["verification"]["method"] == "otp_sms"

    def test_a_wrong_code_is_a_400_and_counted(self, client_a, case_a, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            _send(client_a, case_a)
        response = _post(client_a, _url(case_a, "verification/check/"), {"code": _wrong(_code_sent(case_a))})
        assert response.status_code == 400
        assert Verification.objects.get().attempts == 1
        assert not case_is_verified(Case.objects.get(pk=case_a.pk))

    def test_an_expired_code_is_a_400_even_when_right(self, client_a, case_a, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            _send(client_a, case_a)
        Verification.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        response = _post(client_a, _url(case_a, "verification/check/"), {"code": _code_sent(case_a)})
        assert response.status_code == 400 and "expired" in json.dumps(response.json())
        assert Verification.objects.get().state == VerificationState.EXPIRED
        assert not case_is_verified(Case.objects.get(pk=case_a.pk))

    def test_too_many_wrong_codes_fail_it_with_429_and_flag_social_engineering(
        self, client_a, case_a, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            _send(client_a, case_a)
        code = _code_sent(case_a)
        statuses = [
            _post(client_a, _url(case_a, "verification/check/"), {"code": _wrong(code)}).status_code
            for _ in range(MAX_ATTEMPTS)
        ]
        assert statuses == [400] * (MAX_ATTEMPTS - 1) + [429]
        # the right code no longer helps
        assert _post(client_a, _url(case_a, "verification/check/"), {"code": code}).status_code == 429
        assert Verification.objects.get().state == VerificationState.FAILED
        assert not case_is_verified(Case.objects.get(pk=case_a.pk))
        concern = SecurityConcern.objects.get(case=case_a)
        assert concern.kind == ConcernKind.SOCIAL_ENGINEERING and concern.raised_by is None

    def test_malformed_codes_are_a_400_and_count_nothing(self, client_a, case_a):
        _send(client_a, case_a)
        for body in ({"code": "12"}, {"code": 123456}, {"code": "abcdef"}, {}, {"code": "1234567"}):
            assert _post(client_a, _url(case_a, "verification/check/"), body).status_code == 400
        assert Verification.objects.get().attempts == 0

    def test_no_code_waiting_is_a_409(self, client_a, case_a):
        assert _post(client_a, _url(case_a, "verification/check/"), {"code": "123456"}).status_code == 409


class TestCallback:
    def test_a_callback_to_the_number_on_file_is_strong_verification(self, client_a, case_a):
        response = _post(client_a, _url(case_a), {"method": "callback", "note": "called back, she answered"})
        assert response.status_code == 200
        case = Case.objects.get(pk=case_a.pk)
        assert case_is_verified(case) and case.verification_method == "callback_voice"
        assert Verification.objects.get().strength == "strong"


class TestRefusals:
    @pytest.mark.parametrize("step", ["verification/", "verification/check/"])
    def test_another_tenants_case_is_a_404(self, step, tenant_b, agent_b, client_a):
        foreign, _ = case_open(actor=agent_b, alert=AlertFactory(customer=CustomerFactory(tenant=tenant_b)))
        response = _post(client_a, _url(foreign, step), {"method": "otp", "channel": "sms", "code": "123456"})
        assert response.status_code == 404
        assert response.json() == _post(client_a, f"/api/v1/cases/999999/{step}", {}).json()
        assert not Verification.objects.exists()

    def test_a_case_outside_the_agents_queues_is_a_404(self, specialist, takeover_alert, client_a):
        case, _ = case_open(actor=specialist, alert=takeover_alert)
        assert _send(client_a, case).status_code == 404

    @pytest.mark.parametrize("step", ["verification/", "verification/check/"])
    def test_a_password_only_session_gets_403_json(self, step, password_only_client, case_a):
        response = _post(password_only_client, _url(case_a, step), {"method": "otp", "channel": "sms"})
        assert response.status_code == 403 and "detail" in response.json()
        assert not Verification.objects.exists()

    def test_a_resolved_case_is_a_409(self, client_a, case_a, agent):
        from desk.services import case_close

        case_close(actor=agent, case=case_a, outcome="confirmed_legitimate")
        assert _send(client_a, case_a).status_code == 409

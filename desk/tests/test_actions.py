"""Account actions (issue 11): refused for an unverified customer (409), high-risk kinds need strong
verification and a second person, a contact change and a credential reset within the cooling-off
window wait for a supervisor with a reason; sent as the contract's signed webhook to a stub
server that checks the signature; retried, then failed; `tenant_webhook` prints the secret once."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.tests.factories import AlertFactory, CustomerFactory
from audit.models import AuditEvent
from desk.models import AccountAction, ActionSettings, ActionState, Case, SecurityConcern
from desk.services import case_open
from desk.tasks import ACTION_MAX_RETRIES

pytestmark = pytest.mark.django_db


def _post(client, url, body=None):
    return client.post(url, json.dumps(body if body is not None else {}), content_type="application/json")


def _url(case, step="actions/"):
    return f"/api/v1/cases/{case.pk}/{step}"


def _verify(case, method="otp_sms"):
    now = timezone.now()
    Case.objects.filter(pk=case.pk).update(
        verified_until=now + timedelta(minutes=30), verified_at=now, verification_method=method
    )


@pytest.fixture
def client_a(agent):
    return verified_client(agent)


@pytest.fixture
def supervisor_client(supervisor):
    return verified_client(supervisor)


class TestTenantWebhookCommand:
    def test_it_prints_a_new_secret_once_and_stores_it_encrypted(self, tenant_a, capsys):
        call_command("tenant_webhook", tenant_a.slug, "https://client.example/hook")
        first = capsys.readouterr().out.strip().splitlines()[-1]
        call_command("tenant_webhook", tenant_a.slug, "https://client.example/hook")
        second = capsys.readouterr().out.strip().splitlines()[-1]
        assert len(first) >= 40 and first != second
        settings = ActionSettings.objects.get(tenant=tenant_a)
        assert settings.webhook_secret == second and settings.webhook_url == "https://client.example/hook"
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT webhook_secret FROM desk_actionsettings")
            assert second not in cursor.fetchone()[0]
        assert second not in json.dumps(list(AuditEvent.objects.values("changes", "metadata")))

    @pytest.mark.parametrize("args", [["nope", "https://x.example/"], ["tenant-a", "not a url"]])
    def test_bad_input_exits_non_zero_with_a_reason(self, tenant_a, args):
        with pytest.raises(CommandError):
            call_command("tenant_webhook", *args)


class TestRequesting:
    def test_unverified_is_refused_with_409_and_recorded(self, client_a, case_a, stub):
        response = _post(client_a, _url(case_a), {"action": "lock"})
        assert response.status_code == 409 and "not verified" in response.json()["detail"]
        assert not AccountAction.objects.exists() and stub.received == []
        assert AuditEvent.objects.filter(metadata__event="action_refused").count() == 1

    def test_a_contact_change_before_verification_raises_a_social_engineering_flag(self, client_a, case_a):
        response = _post(client_a, _url(case_a), {"action": "change_contact", "params": {"field": "email"}})
        assert response.status_code == 409
        concern = SecurityConcern.objects.get(case=case_a)
        assert concern.kind == "social_engineering" and concern.raised_by is None

    def test_verified_lock_is_sent_signed_per_contract_and_confirmed(
        self, client_a, case_a, stub, django_capture_on_commit_callbacks
    ):
        _verify(case_a)
        with django_capture_on_commit_callbacks(execute=True):
            response = _post(client_a, _url(case_a), {"action": "lock"})
        assert response.status_code == 202
        body = response.json()
        assert body["action"] == "lock" and body["state"] == "requested"
        assert len(stub.received) == 1
        request = stub.received[0]
        assert stub.signature_ok(request, stub.secret)
        sent = json.loads(request["body"])
        assert sent == {
            "id": body["id"], "action": "lock", "account": {"external_id": "acct-4471"}, "case": case_a.pk,
            "requested_by": "agent", "requested_at": sent["requested_at"],
        }  # fmt: skip
        action = AccountAction.objects.get()
        assert action.state == ActionState.CONFIRMED and action.attempts == 1 and str(action.uuid) == body["id"]

    def test_a_failing_endpoint_is_retried_with_the_same_id_then_failed(
        self, client_a, case_a, stub, django_capture_on_commit_callbacks, monkeypatch
    ):
        monkeypatch.setattr("desk.tasks.get_exponential_backoff_interval", lambda **kw: 0)
        stub.status = 503
        _verify(case_a)
        with django_capture_on_commit_callbacks(execute=True):
            _post(client_a, _url(case_a), {"action": "revoke_sessions"})
        assert len(stub.received) == ACTION_MAX_RETRIES + 1
        assert len({json.loads(r["body"])["id"] for r in stub.received}) == 1
        action = AccountAction.objects.get()
        assert action.state == ActionState.FAILED and action.error == "http_503"
        # The case's history: sent once (when it first left), however many attempts followed.
        steps = AuditEvent.objects.filter(target_type="desk.case", metadata__event__startswith="action_").order_by("id")
        assert list(steps.values_list("metadata__event", flat=True)) == [
            "action_requested",
            "action_sent",
            "action_failed",
        ]

    def test_a_weak_verification_does_not_allow_a_high_risk_action(self, client_a, case_a):
        _verify(case_a, method="knowledge")
        response = _post(client_a, _url(case_a), {"action": "reset_mfa"})
        assert response.status_code == 409 and "high-risk" in response.json()["detail"]
        assert not AccountAction.objects.exists()

    @pytest.mark.parametrize(
        "body",
        [{}, {"action": "format_disk"}, {"action": 3}, {"action": "revoke_app"}, {"action": "lock", "params": [1]},
         {"action": "change_contact", "params": {"field": "email", "value": "evil@example.com"}},
         {"action": "lock", "email": "evil@example.com"}, []],
    )  # fmt: skip
    def test_malformed_input_is_a_400_and_changes_nothing(self, client_a, case_a, body):
        _verify(case_a)
        assert _post(client_a, _url(case_a), body).status_code == 400
        assert not AccountAction.objects.exists()


class TestTwoPeople:
    def test_a_high_risk_action_waits_for_another_supervisor(
        self, client_a, supervisor_client, case_a, stub, tenant_a, django_capture_on_commit_callbacks
    ):
        _verify(case_a)
        response = _post(client_a, _url(case_a), {"action": "reset_mfa"})
        assert response.status_code == 202 and response.json()["state"] == "pending_approval"
        action_id = response.json()["id"]
        approve = _url(case_a, f"actions/{action_id}/approve/")
        assert _post(client_a, approve, {"reason": "me"}).status_code == 403  # an agent approves nothing
        assert _post(supervisor_client, approve, {}).status_code == 400  # a reason is required
        assert stub.received == []
        with django_capture_on_commit_callbacks(execute=True):
            response = _post(supervisor_client, approve, {"reason": "caller verified by code, MFA device lost"})
        assert response.status_code == 200
        action = AccountAction.objects.get()
        assert action.state == ActionState.CONFIRMED and action.approved_by.username == "supervisor"
        assert len(stub.received) == 1 and stub.signature_ok(stub.received[0], stub.secret)
        assert AuditEvent.objects.filter(metadata__event="action_approved", reason__contains="MFA device").exists()

    def test_a_supervisor_cannot_approve_their_own_request(self, supervisor, supervisor_client, case_a):
        _verify(case_a)
        response = _post(supervisor_client, _url(case_a), {"action": "recover"})
        assert response.json()["state"] == "pending_approval"
        approve = _url(case_a, f"actions/{response.json()['id']}/approve/")
        assert _post(supervisor_client, approve, {"reason": "mine"}).status_code == 403
        assert AccountAction.objects.get().state == ActionState.PENDING_APPROVAL

    def test_a_contact_change_then_a_reset_waits_for_a_supervisor_with_a_reason(
        self, client_a, case_a, tenant_a, stub, django_capture_on_commit_callbacks
    ):
        _verify(case_a)
        first = _post(client_a, _url(case_a), {"action": "change_contact", "params": {"field": "phone"}})
        assert first.json()["state"] == "pending_approval"
        # even a low-risk credential reset now waits: within the cooling-off window
        second = _post(client_a, _url(case_a), {"action": "reset_password"})
        assert second.status_code == 202
        assert second.json()["state"] == "pending_approval" and "cooling-off" in second.json()["needs"]
        assert stub.received == []
        other = make_staff("supervisor2", role=Role.SUPERVISOR, tenants=[tenant_a])
        with django_capture_on_commit_callbacks(execute=True):
            ok = _post(
                verified_client(other),
                _url(case_a, f"actions/{second.json()['id']}/approve/"),
                {"reason": "customer in branch with ID"},
            )
        assert ok.status_code == 200 and len(stub.received) == 1

    def test_outside_the_window_a_reset_goes_at_once(self, client_a, case_a, stub):
        _verify(case_a)
        _post(client_a, _url(case_a), {"action": "change_contact", "params": {"field": "phone"}})
        AccountAction.objects.update(requested_at=timezone.now() - timedelta(hours=25))
        assert _post(client_a, _url(case_a), {"action": "reset_password"}).json()["state"] == "requested"


class TestRefusals:
    def test_another_tenants_case_is_a_404_like_a_missing_one(self, client_a, tenant_b, agent_b):
        foreign, _ = case_open(actor=agent_b, alert=AlertFactory(customer=CustomerFactory(tenant=tenant_b)))
        _verify(foreign)
        response = _post(client_a, _url(foreign), {"action": "lock"})
        assert response.status_code == 404
        assert response.json() == _post(client_a, "/api/v1/cases/999999/actions/", {"action": "lock"}).json()
        assert not AccountAction.objects.exists()

    def test_an_ungranted_case_is_a_404(self, client_a, specialist, takeover_alert):
        case, _ = case_open(actor=specialist, alert=takeover_alert)
        _verify(case)
        assert _post(client_a, _url(case), {"action": "lock"}).status_code == 404

    def test_an_action_of_another_case_cannot_be_approved_through_this_one(
        self, client_a, supervisor_client, case_a, tenant_a, agent
    ):
        other_case, _ = case_open(
            actor=agent, alert=AlertFactory(customer=CustomerFactory(tenant=tenant_a, external_id="x2"))
        )
        _verify(case_a)
        action_id = _post(client_a, _url(case_a), {"action": "reset_mfa"}).json()["id"]
        assert (
            _post(supervisor_client, _url(other_case, f"actions/{action_id}/approve/"), {"reason": "x"}).status_code
            == 404
        )
        assert _post(supervisor_client, _url(case_a, "actions/not-a-uuid/approve/"), {"reason": "x"}).status_code == 404

    def test_a_password_only_session_gets_403_json(self, password_only_client, case_a):
        _verify(case_a)
        response = _post(password_only_client, _url(case_a), {"action": "lock"})
        assert response.status_code == 403 and "detail" in response.json()
        assert not AccountAction.objects.exists()


class TestOnTheCaseHistory:
    def test_the_case_timeline_tells_each_message_verification_and_action_step_in_time_order(
        self, client_a, supervisor_client, case_a, alert_a, stub, django_capture_on_commit_callbacks
    ):
        import re
        from html import unescape

        from alerts.notifications.models import Notification, OutboxMessage

        now = timezone.now()
        Notification.objects.create(
            tenant_id=case_a.tenant_id, alert=alert_a, customer_id=case_a.customer_id, channel="sms", state="sent",
            recipient_masked="+***42", created_at=now - timedelta(minutes=1), updated_at=now,
        )  # fmt: skip
        page = f"/cases/{case_a.pk}/"
        with django_capture_on_commit_callbacks(execute=True):
            client_a.post(f"{page}verification/", {"channel": "sms"})
        code = re.search(r"code is (\d{6})", OutboxMessage.objects.get().body).group(1)
        client_a.post(f"{page}verification/check/", {"code": f"{(int(code) + 1) % 10**6:06d}"})
        client_a.post(f"{page}verification/check/", {"code": code})
        with django_capture_on_commit_callbacks(execute=True):
            client_a.post(f"{page}actions/", {"action": "lock"})
        client_a.post(f"{page}actions/", {"action": "reset_mfa"})
        reset = AccountAction.objects.get(action="reset_mfa")
        with django_capture_on_commit_callbacks(execute=True):
            supervisor_client.post(f"{page}actions/approve/", {"action_id": reset.uuid, "reason": "lost the phone"})
        html = supervisor_client.get(page).content.decode()
        timeline = unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html[html.index('data-testid="timeline"') :])))
        steps = [  # oldest first
            "SMS to the customer: sent · AlertDesk · Security alert · alert #",
            "SMS to the customer: delivered · AlertDesk · Verification code",  # queued as the code was made
            "Code sent by SMS to +***78 on file",
            "Wrong code (1 of 5 tries)",
            "Verified by one-time code to SMS on file · agent · strong verification",
            "Lock the account: requested · agent · allowed as verified customer",
            "Lock the account: sent to the client",
            "Lock the account: confirmed by the client",
            "Reset multi-factor authentication: waiting for a supervisor's approval",
            "Reset multi-factor authentication: approved · supervisor",
            "Reset multi-factor authentication: confirmed by the client",
        ]
        at = [timeline.find(step) for step in steps]
        assert -1 not in at, [s for s, i in zip(steps, at, strict=True) if i == -1]
        assert at == sorted(at, reverse=True), timeline  # newest first on the page
        assert "lost the phone" in timeline  # the approval's reason, quoted
        assert code not in html


class TestWebhookTestButton:
    """A tenant admin's "Send a test" on the account-actions page: signed as a real action, shows the
    result, audited; other roles get 404."""

    @pytest.fixture
    def tenant_admin(self, tenant_a):
        return make_staff("tenant.admin", role=Role.ADMIN, tenants=[tenant_a])

    def test_a_tenant_admin_sends_a_signed_test_and_sees_it_work(self, tenant_admin, tenant_a, stub):
        client = verified_client(tenant_admin)
        page = client.get("/account-actions/").content.decode()
        assert stub.url in page and "Send a test" in page and stub.secret not in page
        response = client.post("/account-actions/test/", follow=True)
        assert "The URL and the signature work." in response.content.decode()
        [request] = stub.received
        assert stub.signature_ok(request, stub.secret)
        body = json.loads(request["body"])
        assert body["action"] == "test" and body["account"] == {"external_id": ""} and body["case"] is None
        assert body["requested_by"] == "tenant.admin" and len(body["id"]) == 36
        event = AuditEvent.objects.get(metadata__event="action_webhook_test")
        assert event.actor == tenant_admin and event.metadata["outcome"] == "ok" and event.metadata["status"] == 200
        assert not AccountAction.objects.exists()

    def test_a_refused_signature_is_shown_with_what_to_do(self, tenant_admin, stub):
        stub.status = 401
        response = verified_client(tenant_admin).post("/account-actions/test/", follow=True)
        html = response.content.decode()
        assert "Test failed (answered 401" in html and "refused the signature" in html
        assert AuditEvent.objects.get(metadata__event="action_webhook_test").metadata["outcome"] == "http_401"

    def test_an_unreachable_or_unset_endpoint_is_said_plainly(self, tenant_admin, tenant_a, stub):
        stub.server.shutdown()
        stub.server.server_close()
        html = verified_client(tenant_admin).post("/account-actions/test/", follow=True).content.decode()
        assert "Test failed (" in html and "could not be reached" in html
        ActionSettings.objects.filter(tenant=tenant_a).update(webhook_url="", webhook_secret="")
        html = verified_client(tenant_admin).post("/account-actions/test/", follow=True).content.decode()
        assert "No webhook is set for this client" in html

    @pytest.mark.parametrize("who", ["agent", "supervisor", "agent_b"])
    def test_other_roles_and_tenants_get_404_and_nothing_is_sent(self, request, who, stub):
        client = verified_client(request.getfixturevalue(who))
        assert client.get("/account-actions/").status_code == 404
        assert client.post("/account-actions/test/").status_code == 404
        assert stub.received == [] and not AuditEvent.objects.filter(metadata__event="action_webhook_test").exists()

    def test_a_password_only_session_is_refused(self, tenant_admin, stub):
        from django.test import Client

        client = Client()
        client.force_login(tenant_admin)
        assert client.post("/account-actions/test/").status_code in (302, 403)
        assert stub.received == []

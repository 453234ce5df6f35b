"""Knowledge questions (issue 11): a tenant's questions, checked by the client's systems through its
signed webhook; a weak verification that allows the low-risk steps the tenant's policy names and
never a high-risk action alone. Each refusal: no match, the client not answering, malformed
answers, no questions, too many checks, another agent's code waiting, a foreign case, a
password-only session, a weak caller asking for what the policy does not allow."""

import hashlib
import hmac
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.testing import verified_client
from audit.models import AuditEvent
from desk.action_services import action_settings_knowledge_set
from desk.models import (
    AccountAction,
    ActionSettings,
    Case,
    CaseReveal,
    KnowledgeQuestion,
    SecurityConcern,
    Verification,
    VerificationState,
)
from desk.verification import KNOWLEDGE_PER_WINDOW, verification_request

pytestmark = pytest.mark.django_db

ANSWERS = {"city": "Lyon", "first_car": "Renault 5"}


class StubClient:
    """The client's webhook: records what it receives, answers `status` with `reply` (JSON)."""

    def __init__(self):
        self.received: list[dict] = []
        self.status, self.reply = 200, {"match": True}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stub.received.append({"headers": self.headers, "body": body})
                raw = json.dumps(stub.reply).encode() if not isinstance(stub.reply, bytes) else stub.reply
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alertdesk/actions"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def stub(tenant_a, capsys):
    stub = StubClient()
    call_command("tenant_webhook", tenant_a.slug, stub.url)
    stub.secret = capsys.readouterr().out.strip().splitlines()[-1]
    yield stub
    stub.server.shutdown()


@pytest.fixture
def questions(tenant_a):
    return [
        KnowledgeQuestion.objects.create(tenant=tenant_a, key="city", text="Where did you open the account?"),
        KnowledgeQuestion.objects.create(tenant=tenant_a, key="first_car", text="Your first car?", position=1),
    ]


@pytest.fixture
def client_a(agent):
    return verified_client(agent)


def _post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def _url(case, step="verification/knowledge/"):
    return f"/api/v1/cases/{case.pk}/{step}"


def _check(client, case, answers=ANSWERS):
    return _post(client, _url(case), {"answers": answers})


class TestTheCheck:
    def test_matching_answers_verify_the_caller_weakly_and_keep_no_answer(self, client_a, case_a, questions, stub):
        response = _check(client_a, case_a)
        assert response.status_code == 200, response.content
        assert response.json()["verified"] is True and response.json()["strength"] == "weak"
        case_a.refresh_from_db()
        assert case_a.verification_method == "knowledge" and case_a.verified_until is not None
        (sent,) = stub.received
        body = json.loads(sent["body"])
        assert body["action"] == "verify_knowledge" and body["answers"] == ANSWERS
        assert body["account"] == {"external_id": "acct-4471"} and body["case"] == case_a.pk
        timestamp = sent["headers"]["X-AlertDesk-Timestamp"]
        expected = hmac.new(stub.secret.encode(), timestamp.encode() + b"." + sent["body"], hashlib.sha256)
        assert sent["headers"]["X-AlertDesk-Signature"] == "sha256=" + expected.hexdigest()
        verification = Verification.objects.get()
        assert (verification.method, verification.strength, verification.state) == ("knowledge", "weak", "verified")
        trail = json.dumps(list(AuditEvent.objects.values("changes", "metadata", "reason")))
        assert "Lyon" not in trail and "Renault" not in trail  # only which questions, never an answer
        html = client_a.get(f"/cases/{case_a.pk}/").content.decode()
        assert "knowledge questions (weak)" in html

    def test_the_page_offers_the_questions_and_checks_them(self, client_a, case_a, questions, stub):
        html = client_a.get(f"/cases/{case_a.pk}/").content.decode()
        assert 'data-testid="verification-knowledge"' in html and "Your first car?" in html
        response = client_a.post(
            f"/cases/{case_a.pk}/verification/knowledge/", {"answer_city": "Lyon", "answer_first_car": "Renault 5"}
        )
        assert response.status_code == 302
        stub.reply = {"match": False}
        response = client_a.post(
            f"/cases/{case_a.pk}/verification/knowledge/", {"answer_city": "Paris", "answer_first_car": "Fiat"}
        )
        assert response.status_code == 400 and "do not match" in response.content.decode()

    def test_a_weak_check_does_not_replace_a_strong_verification(self, client_a, case_a, questions, stub):
        Case.objects.filter(pk=case_a.pk).update(verification_method="otp_sms")
        from datetime import timedelta

        from django.utils import timezone

        until = timezone.now() + timedelta(minutes=20)
        Case.objects.filter(pk=case_a.pk).update(verified_until=until, verified_at=timezone.now())
        assert _check(client_a, case_a).status_code == 200
        case_a.refresh_from_db()
        assert case_a.verification_method == "otp_sms" and case_a.verified_until == until


class TestRefusals:
    def test_answers_that_do_not_match_are_a_400_recorded_and_three_raise_a_flag(
        self, client_a, case_a, questions, stub
    ):
        stub.reply = {"match": False}
        for _ in range(3):
            response = _check(client_a, case_a)
            assert response.status_code == 400 and "do not match" in json.dumps(response.json())
        case_a.refresh_from_db()
        assert case_a.verified_until is None
        assert Verification.objects.filter(state=VerificationState.FAILED).count() == 3
        assert SecurityConcern.objects.filter(case=case_a).exists()  # the social-engineering flag

    @pytest.mark.parametrize(
        "status, reply", [(200, {}), (200, {"match": "yes"}), (500, {"match": True}), (200, b"not json")]
    )
    def test_a_client_that_does_not_say_match_or_not_verifies_nothing(
        self, client_a, case_a, questions, stub, status, reply
    ):
        stub.status, stub.reply = status, reply
        response = _check(client_a, case_a)
        assert response.status_code == 502
        case_a.refresh_from_db()
        assert case_a.verified_until is None and not Verification.objects.exists()

    def test_no_webhook_set_up_verifies_nothing(self, client_a, case_a, questions):
        assert _check(client_a, case_a).status_code == 502
        assert not Verification.objects.exists()

    @pytest.mark.parametrize(
        "answers",
        [{"city": "Lyon"}, {**ANSWERS, "pet": "Rex"}, {"city": "Lyon", "first_car": "  "}, ["Lyon"], "Lyon",
         {"city": "x" * 201, "first_car": "y"}],
    )  # fmt: skip
    def test_malformed_answers_are_a_400_and_change_nothing(self, client_a, case_a, questions, stub, answers):
        assert _check(client_a, case_a, answers).status_code == 400
        assert not stub.received and not Verification.objects.exists()

    def test_a_tenant_without_questions_offers_none(self, client_a, case_a, stub):
        assert _check(client_a, case_a).status_code == 400
        assert 'data-testid="verification-knowledge"' not in client_a.get(f"/cases/{case_a.pk}/").content.decode()
        KnowledgeQuestion.objects.create(tenant=case_a.tenant, key="city", text="?", is_active=False)
        assert _check(client_a, case_a, {"city": "Lyon"}).status_code == 400

    def test_too_many_checks_for_one_customer_are_a_429(self, client_a, case_a, questions, stub):
        stub.reply = {"match": False}
        for _ in range(KNOWLEDGE_PER_WINDOW):
            _check(client_a, case_a)
        assert _check(client_a, case_a).status_code == 429
        assert len(stub.received) == KNOWLEDGE_PER_WINDOW

    def test_another_agents_code_waiting_is_a_409(self, case_a, questions, stub, supervisor):
        verification_request(actor=supervisor, case=case_a, method="otp", channel="sms")
        response = _check(verified_client(make_second_agent(case_a)), case_a)
        assert response.status_code == 409 and "supervisor started verifying" in response.json()["detail"]
        assert not stub.received

    def test_a_foreign_case_is_a_404_and_a_password_only_session_reaches_nothing(
        self, case_a, questions, stub, agent_b, password_only_client
    ):
        assert _check(verified_client(agent_b), case_a).status_code == 404
        assert _check(password_only_client, case_a).status_code in (302, 403)
        assert not stub.received and not Verification.objects.exists()


def make_second_agent(case):
    from accounts.models import Role
    from accounts.testing import make_staff

    return make_staff("agent2", role=Role.AGENT, tenants=[case.tenant], default_queue=True)


class TestWhatAWeakVerificationAllows:
    @pytest.fixture
    def weak(self, client_a, case_a, questions, stub):
        assert _check(client_a, case_a).status_code == 200
        return case_a

    def test_a_high_risk_action_is_refused_whatever_the_policy(self, client_a, weak, tenant_a):
        with pytest.raises(ValidationError):
            action_settings_knowledge_set(tenant=tenant_a, allows=["lock", "reset_mfa"])
        ActionSettings.objects.filter(tenant=tenant_a).update(knowledge_allows=["reset_mfa", "recover"])  # by hand
        for action in ("reset_mfa", "recover"):
            response = _post(client_a, _url(weak, "actions/"), {"action": action})
            assert response.status_code == 409 and "high-risk" in response.json()["detail"]
        response = _post(client_a, _url(weak, "actions/"), {"action": "change_contact", "params": {"field": "email"}})
        assert response.status_code == 409
        assert not AccountAction.objects.exists()

    def test_a_supervisor_cannot_approve_a_high_risk_action_on_knowledge_alone(self, weak, supervisor):
        response = _post(verified_client(supervisor), _url(weak, "actions/"), {"action": "reset_mfa"})
        assert response.status_code == 409 and not AccountAction.objects.exists()

    def test_a_low_risk_action_only_when_the_policy_names_it(self, client_a, weak, tenant_a):
        response = _post(client_a, _url(weak, "actions/"), {"action": "lock"})
        assert response.status_code == 409 and "knowledge questions only" in response.json()["detail"]
        action_settings_knowledge_set(tenant=tenant_a, allows=["lock"])
        assert _post(client_a, _url(weak, "actions/"), {"action": "lock"}).status_code == 202
        assert _post(client_a, _url(weak, "actions/"), {"action": "revoke_sessions"}).status_code == 409

    def test_a_reveal_only_when_the_policy_names_it(self, client_a, weak, tenant_a):
        body = {"field": "email", "reason_code": "confirm_with_customer", "reason": "Confirm the address"}
        assert _post(client_a, _url(weak, "reveal/"), body).status_code == 403
        assert not CaseReveal.objects.exists()
        action_settings_knowledge_set(tenant=tenant_a, allows=["reveal"])
        assert _post(client_a, _url(weak, "reveal/"), body).status_code == 200

    def test_the_policy_refuses_unknown_steps_and_is_audited(self, tenant_a, admin_user):
        with pytest.raises(ValidationError):
            action_settings_knowledge_set(tenant=tenant_a, allows=["format_disk"])
        with pytest.raises(ValidationError):
            action_settings_knowledge_set(tenant=tenant_a, allows="lock")
        action_settings_knowledge_set(tenant=tenant_a, allows=["lock", "reveal"], actor=admin_user)
        event = AuditEvent.objects.filter(metadata__event="knowledge_policy_set").get()
        assert event.changes["knowledge_allows"]["after"] == ["lock", "reveal"]


class TestKnowledgePolicySettings:
    """A tenant admin sets what knowledge questions alone allow, on the account-actions page or with
    `tenant_actions --knowledge-allows`: audited; high-risk kinds and unknown steps refused and nothing
    changed; every other role, tenant and a password-only session refused."""

    URL = "/account-actions/"

    def _allows(self, tenant):
        return ActionSettings.objects.filter(tenant=tenant).values_list("knowledge_allows", flat=True).first()

    def test_a_tenant_admin_sets_it_on_the_page_and_it_is_audited(self, tenant_admin, tenant_a):
        client = verified_client(tenant_admin)
        page = client.get("/account-actions/").content.decode()
        assert 'data-testid="knowledge-policy"' in page and 'value="lock"' in page and 'value="reveal"' in page
        assert 'value="reset_mfa"' not in page and 'value="change_contact"' not in page  # high risk: not offered
        response = client.post(self.URL, {"allows": ["reveal", "lock"]})
        assert response.status_code == 302 and response["Location"] == "/account-actions/"
        assert self._allows(tenant_a) == ["lock", "reveal"]
        event = AuditEvent.objects.get(metadata__event="knowledge_policy_set")
        assert event.actor == tenant_admin and event.tenant_id == tenant_a.pk
        assert event.changes["knowledge_allows"] == {"before": [], "after": ["lock", "reveal"]}
        page = client.get("/account-actions/").content.decode()
        assert re.findall(r'value="(\w+)" id="id_allows_\d+" checked', page) == ["lock", "reveal"]
        client.post(self.URL, {"allows": ["reveal", "lock"]})  # the same again: nothing to record
        assert AuditEvent.objects.filter(metadata__event="knowledge_policy_set").count() == 1
        assert client.post(self.URL, {}).status_code == 302  # nothing ticked: knowledge alone allows nothing
        assert self._allows(tenant_a) == []
        assert AuditEvent.objects.filter(metadata__event="knowledge_policy_set").count() == 2

    @pytest.mark.parametrize("bad", [["reset_mfa"], ["lock", "change_contact"], ["recover"], ["format_disk"]])
    def test_a_high_risk_or_unknown_step_is_refused_and_changes_nothing(self, tenant_admin, tenant_a, bad):
        action_settings_knowledge_set(tenant=tenant_a, allows=["lock"])
        before = AuditEvent.objects.count()
        response = verified_client(tenant_admin).post(self.URL, {"allows": bad})
        assert response.status_code == 400 and "is not one of the available choices" in response.content.decode()
        assert self._allows(tenant_a) == ["lock"]
        assert not AuditEvent.objects.filter(metadata__event="knowledge_policy_set").exclude(actor=None).exists()
        assert AuditEvent.objects.count() == before + 1  # only the page shown again
        assert AuditEvent.objects.latest("id").action == "view"

    @pytest.mark.parametrize("who", ["agent", "supervisor", "agent_b"])
    def test_other_roles_and_tenants_get_404_and_nothing_changes(self, request, who, tenant_a):
        response = verified_client(request.getfixturevalue(who)).post(self.URL, {"allows": ["lock"]})
        assert response.status_code == 404
        assert not self._allows(tenant_a) and not AuditEvent.objects.filter(metadata__event="knowledge_policy_set")

    def test_another_tenants_admin_sets_their_own_tenant_only(self, tenant_a, tenant_b):
        from accounts.models import Role
        from accounts.testing import make_staff

        admin_b = make_staff("tenant-admin-b", role=Role.ADMIN, tenants=[tenant_b])
        assert verified_client(admin_b).post(self.URL, {"allows": ["lock"]}).status_code == 302
        assert self._allows(tenant_b) == ["lock"] and not self._allows(tenant_a)

    def test_a_password_only_session_is_refused(self, tenant_admin, tenant_a):
        from django.test import Client

        client = Client()
        client.force_login(tenant_admin)
        assert client.post(self.URL, {"allows": ["lock"]}).status_code in (302, 403)
        assert not self._allows(tenant_a)

    def test_the_command_sets_prints_and_refuses(self, tenant_a, capsys):
        call_command("tenant_actions", tenant_a.slug, "--knowledge-allows", "lock", "reveal")
        assert "knowledge questions alone allow: lock, reveal" in capsys.readouterr().out
        assert AuditEvent.objects.get(metadata__event="knowledge_policy_set").changes["knowledge_allows"]["after"] == [
            "lock",
            "reveal",
        ]
        for bad in (["reset_mfa"], ["lock", "nonsense"]):
            with pytest.raises(CommandError):
                call_command("tenant_actions", tenant_a.slug, "--hold-minutes", "3", "--knowledge-allows", *bad)
        settings = ActionSettings.objects.get(tenant=tenant_a)
        assert settings.knowledge_allows == ["lock", "reveal"] and settings.notice_hold_minutes == 10  # all or none
        call_command("tenant_actions", tenant_a.slug, "--knowledge-allows", "none")
        assert "knowledge questions alone allow: nothing" in capsys.readouterr().out
        assert self._allows(tenant_a) == []

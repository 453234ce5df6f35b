"""The case API (contracts/staff-api.md, "Cases"): what it answers, and each refusal: another
tenant's or an ungranted queue's case (404, the body of a missing one), a role without the right
(403), the reveal rule (400 without a reason, 403 unverified for an agent), malformed input (4xx,
nothing changed), a password-only session (403 JSON)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.tests.factories import AlertFactory, CustomerFactory
from audit.models import Action, AuditEvent
from desk.models import Case, CaseNote, CaseReveal, CaseStatus, PlaybookCheck, SecurityConcern
from desk.services import case_open, case_share
from desk.tests.conftest import EMAIL, NAME, PHONE

pytestmark = pytest.mark.django_db


def _post(client, url, body=None):
    return client.post(url, json.dumps(body if body is not None else {}), content_type="application/json")


def _case_url(case, step=""):
    return f"/api/v1/cases/{case.pk}/" + (f"{step}/" if step else "")


def _verify(case):
    Case.objects.filter(pk=case.pk).update(
        verified_until=timezone.now() + timedelta(minutes=30), verified_at=timezone.now(), verification_method="otp_sms"
    )


@pytest.fixture
def foreign_case(tenant_b, agent_b):
    return case_open(actor=agent_b, alert=AlertFactory(customer=CustomerFactory(tenant=tenant_b)))[0]


@pytest.fixture
def takeover_case(specialist, takeover_alert):
    return case_open(actor=specialist, alert=takeover_alert)[0]


class TestReading:
    def test_a_case_answers_ids_states_and_masked_contacts_only(self, case_a, alert_a, agent):
        response = verified_client(agent).get(_case_url(case_a))
        assert response.status_code == 200
        body = response.json()
        assert {k: body[k] for k in ("id", "tenant", "status", "alerts", "verified", "verification")} == {
            "id": case_a.pk, "tenant": "tenant-a", "status": "open", "alerts": [alert_a.pk], "verified": False,
            "verification": None,
        }  # fmt: skip
        assert body["customer"] == {
            "id": case_a.customer_id,
            "external_id": "acct-4471",
            "email": "a***@e***",
            "phone": "+***78",
        }
        raw = response.content.decode()
        assert EMAIL not in raw and PHONE not in raw and NAME not in raw
        assert AuditEvent.objects.filter(action=Action.VIEW, target_type="desk.case", target_id=str(case_a.pk)).exists()

    def test_a_verified_customer_shows_how_and_until_when(self, case_a, agent):
        _verify(case_a)
        body = verified_client(agent).get(_case_url(case_a)).json()
        assert body["verified"] is True
        assert body["verification"]["method"] == "otp_sms" and body["verification"]["expires_at"]

    def test_the_list_narrows_to_one_customer_and_to_what_the_caller_sees(
        self, case_a, takeover_case, foreign_case, agent, supervisor
    ):
        assert [c["id"] for c in verified_client(agent).get("/api/v1/cases/").json()["results"]] == [case_a.pk]
        client = verified_client(supervisor)
        assert {c["id"] for c in client.get("/api/v1/cases/").json()["results"]} == {case_a.pk, takeover_case.pk}
        mine = client.get(f"/api/v1/cases/?customer={case_a.customer_id}").json()["results"]
        assert [c["id"] for c in mine] == [case_a.pk]
        assert client.get(f"/api/v1/cases/?customer={foreign_case.customer_id}").json()["results"] == []
        assert client.get("/api/v1/cases/?status=resolved").json()["results"] == []

    @pytest.mark.parametrize("query", ["customer=abc", "customer=0", "customer=99999999999999999999", "status=closed"])
    def test_a_malformed_filter_is_a_400(self, case_a, agent, query):
        response = verified_client(agent).get(f"/api/v1/cases/?{query}")
        assert response.status_code == 400 and set(response.json()) == {"errors"}

    def test_the_list_costs_the_same_for_a_page_of_three_or_thirty(
        self, tenant_a, supervisor, django_assert_max_num_queries
    ):
        client = verified_client(supervisor)

        def grow(n):
            for _ in range(n):
                case_open(actor=supervisor, alert=AlertFactory(customer=CustomerFactory(tenant=tenant_a)))

        grow(3)
        client.get("/api/v1/cases/")  # warm the session
        with django_assert_max_num_queries(14) as small:
            assert len(client.get("/api/v1/cases/").json()["results"]) == 3
        grow(27)
        with django_assert_max_num_queries(len(small)):
            assert len(client.get("/api/v1/cases/").json()["results"]) == 30


class TestRefusals:
    def test_another_tenants_or_an_ungranted_queues_case_answers_as_a_missing_one(
        self, case_a, takeover_case, foreign_case, agent
    ):
        client = verified_client(agent)
        missing = client.get("/api/v1/cases/999999/")
        assert missing.status_code == 404
        for case in (takeover_case, foreign_case):
            response = client.get(_case_url(case))
            assert (response.status_code, response.json()) == (404, missing.json())

    def test_a_shared_case_is_seen_by_that_specialist_only(self, case_a, specialist, supervisor, tenant_a):
        other = make_staff("other-specialist", role=Role.AGENT, tenants=[tenant_a])
        assert verified_client(specialist).get(_case_url(case_a)).status_code == 404
        case_share(actor=supervisor, case=case_a, user=specialist)
        assert verified_client(specialist).get(_case_url(case_a)).status_code == 200
        assert verified_client(other).get(_case_url(case_a)).status_code == 404

    def test_a_password_only_session_gets_403_json_everywhere(self, case_a, alert_a, password_only_client):
        urls = [_case_url(case_a, step) for step in ("notes", "status", "claim", "reveal", "concerns", "share")]
        for url in (_case_url(case_a), "/api/v1/cases/"):
            response = password_only_client.get(url)
            assert (response.status_code, response.json()) == (
                403,
                {"detail": "Two-factor authentication is required."},
            )
        for url in [*urls, f"/api/v1/alerts/{alert_a.pk}/case/"]:
            assert _post(password_only_client, url, {"body": "x"}).status_code == 403, url
        assert not CaseNote.objects.exists()

    def test_a_role_without_the_right_sees_but_may_not_act(self, case_a, alert_a, admin_user):
        # A BPO admin sees every queue's cases, but their group works no case.
        client = verified_client(admin_user)
        assert client.get(_case_url(case_a)).status_code == 200
        assert _post(client, _case_url(case_a, "notes"), {"body": "hello"}).status_code == 403
        assert _post(client, f"/api/v1/alerts/{alert_a.pk}/case/").status_code == 403
        assert not CaseNote.objects.exists()

    def test_unsafe_methods_need_the_csrf_token(self, case_a, agent):
        client = verified_client(agent)
        client.handler.enforce_csrf_checks = True
        assert _post(client, _case_url(case_a, "notes"), {"body": "hello"}).status_code == 403
        assert not CaseNote.objects.exists()


class TestOpeningFromAnAlert:
    def test_201_when_it_opens_200_when_it_was_open(self, alert_a, agent):
        client = verified_client(agent)
        first = _post(client, f"/api/v1/alerts/{alert_a.pk}/case/")
        assert first.status_code == 201 and first.json()["alerts"] == [alert_a.pk]
        again = _post(client, f"/api/v1/alerts/{alert_a.pk}/case/")
        assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])

    def test_refusals_change_nothing(self, tenant_a, tenant_b, agent, takeover_case, takeover_alert):
        client = verified_client(agent)
        foreign = AlertFactory(customer=CustomerFactory(tenant=tenant_b))
        assert _post(client, f"/api/v1/alerts/{foreign.pk}/case/").status_code == 404
        assert _post(client, f"/api/v1/alerts/{takeover_alert.pk}/case/").status_code == 404  # ungranted queue
        stuffing = AlertFactory(customer=None, tenant=tenant_a, evidence=[])
        assert _post(client, f"/api/v1/alerts/{stuffing.pk}/case/").status_code == 400
        # The customer's open case is in the takeover queue: the default queue's agent may not add to it.
        routine = AlertFactory(customer=takeover_alert.customer)
        response = _post(client, f"/api/v1/alerts/{routine.pk}/case/")
        assert response.status_code == 403 and "share" in response.json()["detail"]
        assert Case.objects.count() == 1 and list(takeover_case.alerts.all()) == [takeover_alert]


class TestSteps:
    def test_notes_status_claim_concerns_and_checks(self, case_a, agent, supervisor):
        client = verified_client(agent)
        note = _post(client, _case_url(case_a, "notes"), {"body": "Customer called back."})
        assert note.status_code == 201 and note.json()["case"] == case_a.pk
        assert _post(client, _case_url(case_a, "status"), {"status": "waiting_on_customer"}).json()["status"] == (
            "waiting_on_customer"
        )
        assert _post(client, _case_url(case_a, "claim")).json() == {"id": case_a.pk, "assignee": "agent"}
        taken = _post(verified_client(supervisor), _case_url(case_a, "claim"))
        assert taken.status_code == 409 and taken.json() == {"detail": "agent holds this case."}
        concern = _post(client, _case_url(case_a, "concerns"), {"kind": "phishing", "note": "Asked for the code"})
        assert concern.status_code == 201 and concern.json()["status"] == "open"
        check = _post(
            client,
            _case_url(case_a, "playbook/checks"),
            {"alert_type": "two_factor", "step": "caller_verified"},
        )
        assert check.status_code == 201 and check.json()["checked_by"] == "agent"
        resolved = _post(client, _case_url(case_a, "status"), {"status": "resolved", "outcome": "account_secured"})
        assert resolved.json() == {"id": case_a.pk, "status": "resolved", "outcome": "account_secured"}
        again = _post(client, _case_url(case_a, "status"), {"status": "open"})
        assert again.status_code == 409

    @pytest.mark.parametrize(
        ("step", "body"),
        [
            ("notes", {}), ("notes", {"body": ""}), ("notes", {"body": 5}), ("notes", {"body": "x" * 2001}),
            ("notes", "just a string"), ("notes", [1, 2]),
            ("status", {"status": "closed"}), ("status", {"status": "resolved"}),
            ("status", {"status": "resolved", "outcome": "false_positive"}),  # without the note that says why
            ("concerns", {"kind": "smishing"}), ("concerns", {}), ("concerns", {"kind": "phishing", "note": 3}),
            ("playbook/checks", {"alert_type": "two_factor", "step": "nope"}),
            ("playbook/checks", {"alert_type": "login", "step": "caller_verified"}),
            ("playbook/checks", {"alert_type": "nope", "step": "caller_verified"}),
            ("share", {}), ("share", {"username": "nobody"}),
        ],
    )  # fmt: skip
    def test_malformed_input_is_a_400_and_changes_nothing(self, case_a, supervisor, step, body):
        response = _post(verified_client(supervisor), _case_url(case_a, step), body)
        assert response.status_code == 400, response.content
        assert set(response.json()) == {"errors"}
        case_a.refresh_from_db()
        assert case_a.status == CaseStatus.OPEN
        assert not (CaseNote.objects.exists() or SecurityConcern.objects.exists() or PlaybookCheck.objects.exists())

    def test_a_body_that_is_not_json_is_a_400(self, case_a, agent):
        response = verified_client(agent).post(_case_url(case_a, "notes"), "{not json", content_type="application/json")
        assert response.status_code == 400 and not CaseNote.objects.exists()

    def test_only_supervisors_share_and_the_specialist_then_sees_it(self, case_a, agent, supervisor, specialist):
        assert _post(verified_client(agent), _case_url(case_a, "share"), {"username": "specialist"}).status_code == 403
        response = _post(verified_client(supervisor), _case_url(case_a, "share"), {"username": "specialist"})
        assert response.json() == {"case": case_a.pk, "username": "specialist", "shared": True}
        assert verified_client(specialist).get(_case_url(case_a)).status_code == 200
        _post(verified_client(supervisor), _case_url(case_a, "unshare"), {"username": "specialist"})
        assert verified_client(specialist).get(_case_url(case_a)).status_code == 404


class TestReveal:
    def test_without_a_reason_it_is_a_400(self, case_a, supervisor):
        client = verified_client(supervisor)
        for body in ({"field": "email"}, {"field": "email", "reason": ""}, {"field": "email", "reason": "   "},
                     {"field": "email", "reason": 4}, {"field": "password", "reason": "why"},
                     {"field": "email", "reason": "why", "reason_code": "curious"}):  # fmt: skip
            response = _post(client, _case_url(case_a, "reveal"), body)
            assert response.status_code == 400, body
        assert not CaseReveal.objects.exists()

    def test_an_agent_is_refused_until_the_customer_is_verified(self, case_a, agent):
        client = verified_client(agent)
        body = {"field": "email", "reason": "Reading it back to the customer", "reason_code": "confirm_with_customer"}
        refused = _post(client, _case_url(case_a, "reveal"), body)
        assert refused.status_code == 403 and "not verified" in refused.json()["detail"]
        assert EMAIL not in refused.content.decode() and not CaseReveal.objects.exists()
        _verify(case_a)
        response = _post(client, _case_url(case_a, "reveal"), body)
        assert response.status_code == 200 and response["Cache-Control"] == "no-store"
        assert response.json()["field"] == "email" and response.json()["value"] == EMAIL

    def test_a_supervisor_may_reveal_before_verification(self, case_a, supervisor):
        response = _post(
            verified_client(supervisor), _case_url(case_a, "reveal"), {"field": "phone", "reason": "Review"}
        )
        assert (response.status_code, response.json()["value"]) == (200, PHONE)
        assert CaseReveal.objects.get().reason_code == "other"

    def test_an_unseen_case_is_a_404_before_anything_else(self, foreign_case, takeover_case, supervisor, agent):
        body = {"field": "email", "reason": "Review"}
        assert _post(verified_client(supervisor), _case_url(foreign_case, "reveal"), body).status_code == 404
        assert _post(verified_client(agent), _case_url(takeover_case, "reveal"), {}).status_code == 404
        assert not CaseReveal.objects.exists()


def test_the_schema_publishes_the_case_endpoints(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    for path in ("/api/v1/cases/", "/api/v1/cases/{case_id}/", "/api/v1/alerts/{alert_id}/case/",
                 "/api/v1/cases/{case_id}/reveal/", "/api/v1/cases/{case_id}/concerns/"):  # fmt: skip
        assert path in paths

"""The alert lifecycle: open -> acknowledged -> resolved or dismissed, through services that lock,
audit and announce; and the staff API that drives it, with its refusals."""

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.test import Client

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.models import Alert, AlertStatus
from alerts.services import (
    AlertClaimConflict,
    AlertTransitionError,
    alert_acknowledge,
    alert_claim,
    alert_dismiss,
    alert_resolve,
)
from alerts.tests.factories import T0, AccountEventFactory, AlertFactory, CustomerFactory
from audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def alert(tenant_a):
    return AlertFactory(customer=CustomerFactory(tenant=tenant_a, external_id="alice"))


@pytest.fixture
def foreign_alert(tenant_b):
    return AlertFactory(customer=CustomerFactory(tenant=tenant_b, external_id="zed"))


@pytest.fixture
def agent2(tenant_a):
    return make_staff("agent2", role=Role.AGENT, tenants=[tenant_a], default_queue=True)


def _state(alert):
    """What a refused step must leave as it was: the alert's row and its change records."""
    row = Alert.objects.values(
        "status", "assignee", "assigned_at", "acknowledged_by", "closed_by", "resolution_note", "sla_due_at"
    ).get(pk=alert.pk)
    records = list(
        AuditEvent.objects.filter(target_type="alerts.alert", target_id=str(alert.pk))
        .exclude(action=Action.VIEW)
        .values_list("pk", flat=True)
    )
    return row, records


STEPS = {
    "acknowledge": lambda alert, actor: alert_acknowledge(alert=alert, actor=actor),
    "resolve": lambda alert, actor: alert_resolve(alert=alert, actor=actor, note="secured"),
    "dismiss": lambda alert, actor: alert_dismiss(alert=alert, actor=actor, note="false positive"),
}


def _status_records(alert):
    return list(
        AuditEvent.objects.filter(action=Action.UPDATE, target_type="alerts.alert", target_id=str(alert.pk))
        .exclude(actor=None)
        .order_by("id")
    )


class TestServices:
    def test_acknowledge_then_resolve_records_who_and_when(self, alert, agent, django_capture_on_commit_callbacks):
        with (
            mock.patch("config.push.tenant_events") as announce,
            django_capture_on_commit_callbacks(execute=True),
        ):
            acknowledged = alert_acknowledge(alert=alert, actor=agent)
        assert acknowledged.status == AlertStatus.ACKNOWLEDGED and acknowledged.acknowledged_by == agent
        assert acknowledged.assignee == agent  # nobody held it: picking it up claims it
        announce.assert_called_once()
        ((tenant_id, name, payload),) = announce.call_args.args[0]
        assert (tenant_id, name, payload["status"], payload["assignee"]) == (
            alert.tenant_id, "alert.updated", "acknowledged", "agent"
        )  # fmt: skip

        resolved = alert_resolve(alert=acknowledged, actor=agent, note="  Customer confirmed; password reset.  ")
        alert.refresh_from_db()
        assert alert.status == AlertStatus.RESOLVED and alert.closed_by == agent and alert.closed_at
        assert alert.resolution_note == "Customer confirmed; password reset."
        first, second = _status_records(alert)
        assert (
            first.changes
            == {
                "status": {"before": "open", "after": "acknowledged"},
                "assignee": {"before": None, "after": "agent"},
            }
            and first.actor == agent
        )
        assert second.changes == {"status": {"before": "acknowledged", "after": "resolved"}}
        assert second.reason == "Customer confirmed; password reset." and second.tenant_id == alert.tenant_id
        assert resolved.pk == alert.pk

    def test_dismiss_needs_a_reason_and_a_refusal_changes_nothing(self, alert, agent):
        for note in ("", "   "):
            with pytest.raises(ValidationError):
                alert_dismiss(alert=alert, actor=agent, note=note)
        with pytest.raises(ValidationError):
            alert_resolve(alert=alert, actor=agent, note="x" * 501)
        alert.refresh_from_db()
        assert alert.status == AlertStatus.OPEN and _status_records(alert) == []
        alert_dismiss(alert=alert, actor=agent, note="Customer's own new phone.")
        alert.refresh_from_db()
        assert alert.status == AlertStatus.DISMISSED and alert.resolution_note == "Customer's own new phone."

    @pytest.mark.parametrize(
        "first, then",
        [
            (alert_resolve, alert_acknowledge),
            (alert_resolve, alert_resolve),
            (alert_dismiss, alert_resolve),
            (alert_resolve, alert_dismiss),
        ],
    )
    def test_closed_alerts_are_final(self, alert, agent, first, then):
        first(alert=alert, actor=agent, note="done")
        records = _status_records(alert)
        kwargs = {} if then is alert_acknowledge else {"note": "again"}
        with pytest.raises(AlertTransitionError):
            then(alert=alert, actor=agent, **kwargs)
        assert _status_records(alert) == records

    def test_acknowledging_twice_is_refused(self, alert, agent):
        alert_acknowledge(alert=alert, actor=agent)
        with pytest.raises(AlertTransitionError) as refused:
            alert_acknowledge(alert=alert, actor=agent)
        assert refused.value.messages == ["This alert was already acknowledged."]

    @pytest.mark.parametrize(
        "first, then, message",
        [
            (alert_resolve, alert_dismiss, "This alert is resolved: it can no longer be dismissed."),
            (alert_dismiss, alert_acknowledge, "This alert is dismissed: it can no longer be acknowledged."),
            (alert_resolve, alert_resolve, "This alert was already resolved."),
        ],
    )
    def test_a_refusal_says_why_in_plain_words(self, alert, agent, first, then, message):
        first(alert=alert, actor=agent, note="done")
        with pytest.raises(AlertTransitionError) as refused:
            then(alert=alert, actor=agent, **({} if then is alert_acknowledge else {"note": "again"}))
        assert refused.value.messages == [message]

    def test_a_stale_copy_is_judged_against_the_stored_status(self, alert, agent, supervisor):
        stale = Alert.objects.get(pk=alert.pk)
        alert_dismiss(alert=alert, actor=supervisor, note="duplicate of a case")
        with pytest.raises(AlertTransitionError):
            alert_resolve(alert=stale, actor=agent)
        alert.refresh_from_db()
        assert alert.status == AlertStatus.DISMISSED and alert.closed_by == supervisor

    def test_an_acknowledged_alert_still_folds_new_occurrences_a_closed_one_does_not(self, agent, tenant_a):
        from alerts.detection import events_process

        customer = CustomerFactory(tenant=tenant_a, external_id="alice")

        def occur(minutes):  # the same finding on the same account, through detection
            event = AccountEventFactory(customer=customer, occurred_at=T0 + timedelta(minutes=minutes))
            events_process(event_ids=[event.pk])

        occur(0)
        alert = Alert.objects.get(tenant=tenant_a)
        alert_acknowledge(alert=alert, actor=agent)
        occur(5)
        alert.refresh_from_db()
        assert alert.count == 2 and Alert.objects.filter(tenant=tenant_a).count() == 1
        alert_resolve(alert=alert, actor=agent)
        occur(10)
        fresh = Alert.objects.filter(tenant=tenant_a).exclude(pk=alert.pk).get()
        assert fresh.status == AlertStatus.OPEN and fresh.count == 1


class TestHeldByOne:
    """While a staff member holds an alert, only they take its lifecycle steps, or a supervisor or
    admin of its tenant stepping in; acknowledging an alert nobody holds claims it."""

    def test_acknowledging_an_alert_nobody_holds_claims_it_and_is_the_first_response(self, alert, agent):
        acknowledged = alert_acknowledge(alert=alert, actor=agent)
        alert.refresh_from_db()
        assert alert.assignee == agent and alert.assigned_at == alert.acknowledged_at == alert.first_response_at
        assert acknowledged.assignee == agent
        (record,) = _status_records(alert)
        assert record.changes["assignee"] == {"before": None, "after": "agent"}

    def test_the_holder_acknowledges_without_a_new_claim(self, alert, agent):
        claimed = alert_claim(alert=alert, actor=agent)
        alert_acknowledge(alert=alert, actor=agent)
        alert.refresh_from_db()
        assert alert.assignee == agent and alert.assigned_at == claimed.assigned_at
        assert _status_records(alert)[-1].changes == {"status": {"before": "open", "after": "acknowledged"}}

    @pytest.mark.parametrize("step", ["resolve", "dismiss"])
    def test_closing_an_alert_nobody_holds_claims_nobody(self, alert, agent, step):
        STEPS[step](alert, agent)
        alert.refresh_from_db()
        assert alert.assignee is None and alert.closed_by == agent

    @pytest.mark.parametrize("step", ["acknowledge", "resolve", "dismiss"])
    def test_another_agent_is_refused_and_nothing_changes(self, alert, agent, agent2, step):
        alert_claim(alert=alert, actor=agent)
        before = _state(alert)
        with pytest.raises(AlertClaimConflict) as refused:
            STEPS[step](Alert.objects.get(pk=alert.pk), agent2)
        assert refused.value.message == f"agent holds this alert: only they or a supervisor may {step} it."
        assert _state(alert) == before

    def test_a_stale_copy_read_before_the_claim_is_refused(self, alert, agent, agent2):
        stale = Alert.objects.get(pk=alert.pk)  # agent2 read it while nobody held it
        alert_claim(alert=alert, actor=agent)
        with pytest.raises(AlertClaimConflict):
            alert_resolve(alert=stale, actor=agent2, note="mine")
        alert.refresh_from_db()
        assert alert.status == AlertStatus.OPEN and alert.assignee == agent

    def test_the_holder_works_it_through(self, alert, agent):
        alert_claim(alert=alert, actor=agent)
        alert_acknowledge(alert=alert, actor=agent)
        alert_resolve(alert=alert, actor=agent, note="secured")
        alert.refresh_from_db()
        assert alert.status == AlertStatus.RESOLVED and alert.assignee == alert.closed_by == agent

    @pytest.mark.parametrize("role", [Role.SUPERVISOR, Role.ADMIN])
    def test_a_supervisor_or_admin_of_the_tenant_steps_in_and_the_alert_stays_the_holders(
        self, alert, agent, tenant_a, role
    ):
        boss = make_staff(f"boss-{role}", role=role, tenants=[tenant_a])
        alert_claim(alert=alert, actor=agent)
        alert_acknowledge(alert=alert, actor=boss)
        alert.refresh_from_db()
        assert (alert.status, alert.assignee, alert.acknowledged_by) == (AlertStatus.ACKNOWLEDGED, agent, boss)
        assert "assignee" not in _status_records(alert)[-1].changes
        alert_dismiss(alert=alert, actor=boss, note="duplicate")
        alert.refresh_from_db()
        assert (alert.status, alert.assignee, alert.closed_by) == (AlertStatus.DISMISSED, agent, boss)

    def test_a_supervisor_of_another_tenant_does_not_step_in(self, alert, agent, tenant_b):
        other = make_staff("sup-b", role=Role.SUPERVISOR, tenants=[tenant_b])
        alert_claim(alert=alert, actor=agent)
        before = _state(alert)
        with pytest.raises(AlertClaimConflict):
            alert_resolve(alert=alert, actor=other, note="not mine")
        assert _state(alert) == before

    def test_a_final_alert_says_it_is_final_before_whose_it_is(self, alert, agent, agent2):
        alert_claim(alert=alert, actor=agent)
        alert_resolve(alert=alert, actor=agent, note="secured")
        with pytest.raises(AlertTransitionError) as refused:
            alert_dismiss(alert=alert, actor=agent2, note="again")
        assert refused.value.messages == ["This alert is resolved: it can no longer be dismissed."]


def _url(alert_id, step):
    return f"/api/v1/alerts/{alert_id}/{step}/"


def _post(client, url, body=None, **extra):
    return client.post(url, json.dumps(body or {}), content_type="application/json", **extra)


class TestApi:
    @pytest.mark.parametrize("role", [Role.AGENT, Role.SUPERVISOR, Role.ADMIN])
    def test_each_tenant_role_works_its_alerts(self, alert, tenant_a, role):
        # An agent works the queues granted to it (the default one, as add_staff grants it).
        staff = make_staff(f"staff-{role}", role=role, tenants=[tenant_a], default_queue=True)
        response = _post(verified_client(staff), _url(alert.pk, "acknowledge"))
        assert response.status_code == 200 and response.json() == {"id": alert.pk, "status": "acknowledged"}
        response = _post(verified_client(staff), _url(alert.pk, "resolve"), {"note": "secured"})
        assert response.json()["status"] == "resolved"
        assert "email" not in response.content.decode()

    def test_dismiss_without_a_note_is_400_and_changes_nothing(self, otp_client, alert):
        response = _post(otp_client, _url(alert.pk, "dismiss"))
        assert response.status_code == 400
        assert [e["field"] for e in response.json()["errors"]] == ["note"]
        alert.refresh_from_db()
        assert alert.status == AlertStatus.OPEN
        assert _post(otp_client, _url(alert.pk, "dismiss"), {"note": "test login"}).status_code == 200

    def test_a_step_the_status_does_not_allow_is_409(self, otp_client, alert):
        assert _post(otp_client, _url(alert.pk, "resolve")).status_code == 200
        response = _post(otp_client, _url(alert.pk, "acknowledge"))
        assert response.status_code == 409 and response.json()["detail"] == (
            "This alert is resolved: it can no longer be acknowledged."
        )

    @pytest.mark.parametrize(
        "raw",
        [b"{not json", b'["a list"]', b'{"note": ["x"]}', b'{"note": 5}', json.dumps({"note": "x" * 501}).encode()],
    )
    def test_malformed_bodies_are_400_and_change_nothing(self, otp_client, alert, raw):
        response = otp_client.post(_url(alert.pk, "resolve"), raw, content_type="application/json")
        assert response.status_code == 400
        alert.refresh_from_db()
        assert alert.status == AlertStatus.OPEN and _status_records(alert) == []

    def test_another_tenants_alert_and_a_missing_one_are_404(self, otp_client, foreign_alert):
        for url in (_url(foreign_alert.pk, "acknowledge"), _url(999999, "acknowledge")):
            assert _post(otp_client, url).status_code == 404
        foreign_alert.refresh_from_db()
        assert foreign_alert.status == AlertStatus.OPEN

    def test_a_role_without_the_right_gets_403_on_an_alert_it_sees(self, otp_client, alert):
        # staff-api.md: 404 for objects the role cannot see, 403 for actions on objects it can see.
        Group.objects.get(name=Role.AGENT).permissions.remove(Permission.objects.get(codename="change_alert"))
        assert _post(otp_client, _url(alert.pk, "acknowledge")).status_code == 403
        assert otp_client.get(f"/api/v1/alerts/{alert.pk}/").status_code == 200  # still sees it
        alert.refresh_from_db()
        assert alert.status == AlertStatus.OPEN

    def test_password_only_anonymous_and_get_are_refused(self, password_only_client, otp_client, alert):
        assert _post(password_only_client, _url(alert.pk, "acknowledge")).status_code == 403
        anonymous = _post(Client(), _url(alert.pk, "acknowledge"))
        assert anonymous.status_code == 403 and anonymous.json() == {
            "detail": "Authentication credentials were not provided."
        }
        assert otp_client.get(_url(alert.pk, "acknowledge")).status_code == 405
        alert.refresh_from_db()
        assert alert.status == AlertStatus.OPEN

    @pytest.mark.parametrize("step", ["acknowledge", "resolve", "dismiss"])
    def test_an_alert_another_agent_holds_is_409_and_nothing_changes(self, otp_client, alert, agent2, step):
        alert_claim(alert=alert, actor=agent2)
        before = _state(alert)
        response = _post(otp_client, _url(alert.pk, step), {"note": "mine now"})
        assert response.status_code == 409
        assert response.json() == {"detail": f"agent2 holds this alert: only they or a supervisor may {step} it."}
        assert _state(alert) == before

    def test_the_holder_and_a_supervisor_may(self, otp_client, alert, agent, agent2, supervisor):
        alert_claim(alert=alert, actor=agent2)
        response = _post(verified_client(supervisor), _url(alert.pk, "acknowledge"))
        assert response.status_code == 200 and response.json()["status"] == "acknowledged"
        assert otp_client.get(f"/api/v1/alerts/{alert.pk}/").json()["assignee"] == "agent2"  # still theirs
        assert _post(verified_client(agent2), _url(alert.pk, "resolve"), {"note": "ok"}).status_code == 200

    def test_acknowledging_an_alert_nobody_holds_makes_the_caller_its_assignee(self, otp_client, alert, agent2):
        assert _post(otp_client, _url(alert.pk, "acknowledge")).status_code == 200
        assert otp_client.get(f"/api/v1/alerts/{alert.pk}/").json()["assignee"] == "agent"
        assert _post(otp_client, _url(alert.pk, "claim")).json() == {"id": alert.pk, "assignee": "agent"}
        assert _post(verified_client(agent2), _url(alert.pk, "claim")).status_code == 409

    def test_the_schema_documents_the_409(self, client):
        paths = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
        for step in ("acknowledge", "resolve", "dismiss"):
            conflict = paths[f"/api/v1/alerts/{{alert_id}}/{step}/"]["post"]["responses"]["409"]
            assert "another staff member holds it" in conflict["description"]

    def test_a_post_without_the_csrf_token_is_refused(self, agent, alert):
        client = verified_client(agent)
        client.handler.enforce_csrf_checks = True
        assert _post(client, _url(alert.pk, "acknowledge")).status_code == 403
        alert.refresh_from_db()
        assert alert.status == AlertStatus.OPEN

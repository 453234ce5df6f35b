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
from alerts.services import AlertTransitionError, alert_acknowledge, alert_dismiss, alert_resolve
from alerts.tests.factories import T0, AccountEventFactory, AlertFactory, CustomerFactory
from audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def alert(tenant_a):
    return AlertFactory(customer=CustomerFactory(tenant=tenant_a, external_id="alice"))


@pytest.fixture
def foreign_alert(tenant_b):
    return AlertFactory(customer=CustomerFactory(tenant=tenant_b, external_id="zed"))


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
        announce.assert_called_once()
        ((tenant_id, name, payload),) = announce.call_args.args[0]
        assert (tenant_id, name, payload["status"]) == (alert.tenant_id, "alert.updated", "acknowledged")

        resolved = alert_resolve(alert=acknowledged, actor=agent, note="  Customer confirmed; password reset.  ")
        alert.refresh_from_db()
        assert alert.status == AlertStatus.RESOLVED and alert.closed_by == agent and alert.closed_at
        assert alert.resolution_note == "Customer confirmed; password reset."
        first, second = _status_records(alert)
        assert first.changes == {"status": {"before": "open", "after": "acknowledged"}} and first.actor == agent
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

    def test_a_post_without_the_csrf_token_is_refused(self, agent, alert):
        client = verified_client(agent)
        client.handler.enforce_csrf_checks = True
        assert _post(client, _url(alert.pk, "acknowledge")).status_code == 403
        alert.refresh_from_db()
        assert alert.status == AlertStatus.OPEN

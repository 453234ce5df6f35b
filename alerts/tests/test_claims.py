"""Working an alert: claim, release, reassign, through services that lock, audit and announce, and
the staff API that drives them, with its refusals."""

import json
from unittest import mock

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.models import Alert, AlertStatus
from alerts.services import (
    AlertClaimConflict,
    alert_acknowledge,
    alert_claim,
    alert_reassign,
    alert_release,
    alert_resolve,
)
from alerts.tests.factories import AlertFactory, CustomerFactory
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
    return make_staff("agent2", role=Role.AGENT, tenants=[tenant_a])


def _assignee_records(alert):
    return [
        e.changes["assignee"]
        for e in AuditEvent.objects.filter(action=Action.UPDATE, target_type="alerts.alert", target_id=str(alert.pk))
        .exclude(actor=None)
        .order_by("id")
        if "assignee" in e.changes
    ]


class TestServices:
    def test_a_claim_is_recorded_announced_and_is_the_first_response(
        self, alert, agent, django_capture_on_commit_callbacks
    ):
        with (
            mock.patch("config.push.tenant_events") as announce,
            django_capture_on_commit_callbacks(execute=True),
        ):
            claimed = alert_claim(alert=alert, actor=agent)
        alert.refresh_from_db()
        assert claimed.assignee == agent and alert.assignee == agent and alert.assigned_at and alert.first_response_at
        assert _assignee_records(alert) == [{"before": None, "after": "agent"}]
        ((tenant_id, name, payload),) = announce.call_args.args[0]
        assert (tenant_id, name) == (alert.tenant_id, "alert.updated")
        assert payload["assignee"] == "agent" and payload["status"] == "open" and "email" not in payload

    def test_claiming_ones_own_alert_again_changes_nothing(self, alert, agent):
        first = alert_claim(alert=alert, actor=agent)
        again = alert_claim(alert=alert, actor=agent)
        assert again.assignee == agent and again.assigned_at == first.assigned_at
        assert len(_assignee_records(alert)) == 1

    def test_an_alert_someone_else_holds_cannot_be_claimed(self, alert, agent, agent2):
        alert_claim(alert=alert, actor=agent)
        with pytest.raises(AlertClaimConflict) as refused:
            alert_claim(alert=Alert.objects.get(pk=alert.pk), actor=agent2)
        assert refused.value.message == "agent holds this alert."
        alert.refresh_from_db()
        assert alert.assignee == agent

    def test_a_stale_copy_cannot_steal_an_alert(self, alert, agent, agent2):
        stale = Alert.objects.get(pk=alert.pk)  # read before agent claimed it
        alert_claim(alert=alert, actor=agent)
        with pytest.raises(AlertClaimConflict):
            alert_claim(alert=stale, actor=agent2)
        alert.refresh_from_db()
        assert alert.assignee == agent

    @pytest.mark.parametrize("status", [AlertStatus.RESOLVED, AlertStatus.DISMISSED])
    def test_a_final_alert_cannot_be_claimed(self, alert, agent, status):
        Alert.objects.filter(pk=alert.pk).update(status=status)
        with pytest.raises(AlertClaimConflict) as refused:
            alert_claim(alert=alert, actor=agent)
        assert refused.value.message == f"This alert is {status}: it can no longer be claimed."
        alert.refresh_from_db()
        assert alert.assignee is None

    def test_resolving_keeps_the_assignee(self, alert, agent):
        alert_claim(alert=alert, actor=agent)
        alert_resolve(alert=alert, actor=agent, note="secured")
        alert.refresh_from_db()
        assert alert.status == AlertStatus.RESOLVED and alert.assignee == agent
        with pytest.raises(AlertClaimConflict):
            alert_release(alert=alert, actor=agent)

    def test_the_holder_releases(self, alert, agent):
        alert_claim(alert=alert, actor=agent)
        released = alert_release(alert=alert, actor=agent)
        alert.refresh_from_db()
        assert released.assignee is None and alert.assignee is None and alert.assigned_at is None
        assert alert.first_response_at is not None  # the response happened
        assert _assignee_records(alert) == [{"before": None, "after": "agent"}, {"before": "agent", "after": None}]

    def test_another_agent_may_not_release_a_supervisor_may(self, alert, agent, agent2, supervisor):
        alert_claim(alert=alert, actor=agent)
        with pytest.raises(AlertClaimConflict) as refused:
            alert_release(alert=alert, actor=agent2)
        assert refused.value.message == "You do not hold this alert."
        alert_release(alert=alert, actor=supervisor)
        alert.refresh_from_db()
        assert alert.assignee is None

    def test_releasing_an_alert_nobody_holds_is_refused(self, alert, supervisor):
        with pytest.raises(AlertClaimConflict):
            alert_release(alert=alert, actor=supervisor)

    def test_a_supervisor_of_another_tenant_may_not_release(self, alert, agent, tenant_b):
        alert_claim(alert=alert, actor=agent)
        other = make_staff("sup-b", role=Role.SUPERVISOR, tenants=[tenant_b])
        with pytest.raises(AlertClaimConflict):
            alert_release(alert=alert, actor=other)

    def test_a_supervisor_reassigns_to_staff_of_the_tenant_only(self, alert, agent, agent2, agent_b, supervisor):
        alert_claim(alert=alert, actor=agent)
        moved = alert_reassign(alert=alert, actor=supervisor, to=agent2)
        assert moved.assignee == agent2
        for stranger in (agent_b, None):  # another tenant's agent; nobody by that name
            with pytest.raises(ValidationError):
                alert_reassign(alert=alert, actor=supervisor, to=stranger)
        alert.refresh_from_db()
        assert alert.assignee == agent2
        assert _assignee_records(alert)[-1] == {"before": "agent", "after": "agent2"}

    def test_an_agent_may_not_reassign(self, alert, agent, agent2):
        with pytest.raises(PermissionDenied):
            alert_reassign(alert=alert, actor=agent, to=agent2)
        alert.refresh_from_db()
        assert alert.assignee is None

    def test_a_bpo_admin_may_not_reassign(self, alert, admin_user, agent):
        # BPO admins see alerts but do not work them: reassigning is the tenant's supervisors'.
        with pytest.raises(PermissionDenied):
            alert_reassign(alert=alert, actor=admin_user, to=agent)

    def test_acknowledge_sets_the_first_response_once(self, alert, agent):
        claimed = alert_claim(alert=alert, actor=agent)
        alert_acknowledge(alert=alert, actor=agent)
        alert.refresh_from_db()
        assert alert.first_response_at == claimed.first_response_at


def _url(alert_id, step):
    return f"/api/v1/alerts/{alert_id}/{step}/"


def _post(client, url, body=None, **extra):
    return client.post(url, json.dumps(body or {}), content_type="application/json", **extra)


class TestApi:
    def test_claim_then_release(self, otp_client, alert):
        response = _post(otp_client, _url(alert.pk, "claim"))
        assert response.status_code == 200 and response.json() == {"id": alert.pk, "assignee": "agent"}
        assert _post(otp_client, _url(alert.pk, "claim")).json() == {"id": alert.pk, "assignee": "agent"}
        assert otp_client.get(f"/api/v1/alerts/{alert.pk}/").json()["assignee"] == "agent"
        response = _post(otp_client, _url(alert.pk, "release"))
        assert response.status_code == 200 and response.json() == {"id": alert.pk, "assignee": None}

    def test_claiming_an_alert_another_holds_is_409(self, otp_client, alert, agent2):
        alert_claim(alert=alert, actor=agent2)
        response = _post(otp_client, _url(alert.pk, "claim"))
        assert response.status_code == 409 and response.json() == {"detail": "agent2 holds this alert."}
        response = _post(otp_client, _url(alert.pk, "release"))
        assert response.status_code == 409 and response.json() == {"detail": "You do not hold this alert."}
        alert.refresh_from_db()
        assert alert.assignee == agent2

    def test_claiming_a_resolved_alert_is_409(self, otp_client, alert, agent):
        alert_resolve(alert=alert, actor=agent)
        assert _post(otp_client, _url(alert.pk, "claim")).status_code == 409

    def test_a_supervisor_releases_and_assigns(self, supervisor, alert, agent, agent2):
        alert_claim(alert=alert, actor=agent)
        client = verified_client(supervisor)
        response = _post(client, _url(alert.pk, "assign"), {"username": "agent2"})
        assert response.status_code == 200 and response.json() == {"id": alert.pk, "assignee": "agent2"}
        response = _post(client, _url(alert.pk, "release"))
        assert response.status_code == 200 and response.json()["assignee"] is None

    def test_assigning_to_someone_outside_the_tenant_is_400_alike(self, supervisor, alert, agent_b):
        client = verified_client(supervisor)
        bodies = [_post(client, _url(alert.pk, "assign"), {"username": name}) for name in ("agent-b", "nobody")]
        assert [b.status_code for b in bodies] == [400, 400]
        assert bodies[0].json() == bodies[1].json()  # an unknown name and another tenant's agent look alike
        assert [e["field"] for e in bodies[0].json()["errors"]] == ["username"]
        alert.refresh_from_db()
        assert alert.assignee is None

    def test_an_agent_may_not_assign(self, otp_client, alert):
        assert _post(otp_client, _url(alert.pk, "assign"), {"username": "agent"}).status_code == 403
        alert.refresh_from_db()
        assert alert.assignee is None

    @pytest.mark.parametrize("step", ["claim", "release", "assign"])
    def test_another_tenants_alert_and_a_missing_one_are_404(self, step, supervisor, foreign_alert, agent_b):
        alert_claim(alert=foreign_alert, actor=agent_b)
        client = verified_client(supervisor)
        bodies = [_post(client, _url(pk, step), {"username": "supervisor"}) for pk in (foreign_alert.pk, 999999)]
        assert [b.status_code for b in bodies] == [404, 404] and bodies[0].json() == bodies[1].json()
        foreign_alert.refresh_from_db()
        assert foreign_alert.assignee == agent_b

    @pytest.mark.parametrize("step", ["claim", "release"])
    def test_a_role_without_the_right_gets_403(self, otp_client, alert, step):
        Group.objects.get(name=Role.AGENT).permissions.remove(Permission.objects.get(codename="change_alert"))
        assert _post(otp_client, _url(alert.pk, step)).status_code == 403
        alert.refresh_from_db()
        assert alert.assignee is None

    @pytest.mark.parametrize("step", ["claim", "release", "assign"])
    def test_password_only_anonymous_and_get_are_refused(self, password_only_client, otp_client, alert, step):
        assert _post(password_only_client, _url(alert.pk, step)).status_code == 403
        assert _post(Client(), _url(alert.pk, step)).status_code == 403
        assert otp_client.get(_url(alert.pk, step)).status_code == 405
        alert.refresh_from_db()
        assert alert.assignee is None

    @pytest.mark.parametrize("step", ["claim", "assign"])
    def test_a_post_without_the_csrf_token_is_refused(self, supervisor, alert, step):
        client = verified_client(supervisor)
        client.handler.enforce_csrf_checks = True
        assert _post(client, _url(alert.pk, step), {"username": "supervisor"}).status_code == 403
        alert.refresh_from_db()
        assert alert.assignee is None

    @pytest.mark.parametrize(
        "raw", [b"{not json", b'["a list"]', b'{"username": ["x"]}', b'{"username": 5}', b"{}", b'{"username": ""}']
    )
    def test_malformed_assign_bodies_are_400(self, supervisor, alert, raw):
        response = verified_client(supervisor).post(_url(alert.pk, "assign"), raw, content_type="application/json")
        assert response.status_code == 400
        alert.refresh_from_db()
        assert alert.assignee is None

    def test_the_endpoints_are_in_the_schema(self, client):
        paths = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
        for step in ("claim", "release", "assign"):
            responses = paths[f"/api/v1/alerts/{{alert_id}}/{step}/"]["post"]["responses"]
            assert {"200", "403", "404", "409"} <= set(responses)

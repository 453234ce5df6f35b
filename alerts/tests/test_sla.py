"""Service levels: due times set when detection raises an alert (the tenant's policy, else the
defaults), tightened when its severity rises, moved on by the first response, cleared when final;
the policy service and the `tenant_sla` command."""

import io
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from alerts.detection import events_process
from alerts.models import Alert, SlaPolicy
from alerts.services import (
    alert_acknowledge,
    alert_claim,
    alert_dismiss,
    alert_release,
    alert_resolve,
    rule_setting_set,
    sla_policy_set,
)
from alerts.sla import DEFAULT_SLA
from alerts.tests.factories import T0, AccountEventFactory, AlertFactory, CustomerFactory
from audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db


def _raise(customer, minutes=0):
    """One 'two-factor turned off' event on the account, through detection."""
    event = AccountEventFactory(customer=customer, occurred_at=T0 + timedelta(minutes=minutes))
    events_process(event_ids=[event.pk])
    return Alert.objects.get(customer=customer, status__in=["open", "acknowledged"])


@pytest.fixture
def customer(tenant_a):
    return CustomerFactory(tenant=tenant_a, external_id="alice")


def _due(alert, first, resolution):
    return (alert.first_response_due_at, alert.resolution_due_at) == (
        alert.created_at + timedelta(minutes=first),
        alert.created_at + timedelta(minutes=resolution),
    )


class TestDueTimes:
    def test_a_raised_alert_gets_the_default_sla_of_its_severity(self, customer):
        alert = _raise(customer)
        assert _due(alert, *DEFAULT_SLA[alert.severity])
        assert alert.sla_due_at == alert.first_response_due_at

    def test_the_tenants_own_policy_wins_and_only_for_its_tenant(self, customer, tenant_b):
        severity = _raise(CustomerFactory(tenant=tenant_b)).severity
        sla_policy_set(tenant=customer.tenant, severity=severity, first_response_minutes=5, resolution_minutes=30)
        assert _due(_raise(customer), 5, 30)
        assert _due(_raise(CustomerFactory(tenant=tenant_b)), *DEFAULT_SLA[severity])

    def test_a_rising_severity_tightens_the_sla_never_loosens_it(self, customer, admin_user):
        tenant = customer.tenant
        rule_setting_set(tenant=tenant, rule="mfa_change", actor=admin_user, severity=1)
        alert = _raise(customer, 0)
        assert alert.severity == 1 and _due(alert, *DEFAULT_SLA[1])
        rule_setting_set(tenant=tenant, rule="mfa_change", actor=admin_user, severity=3)
        alert = _raise(customer, 5)  # folds into the same alert, now high
        assert alert.severity == 3 and alert.count == 2 and _due(alert, *DEFAULT_SLA[3])
        # A tenant whose critical SLA is looser than its high one: the earlier due times stay.
        sla_policy_set(tenant=tenant, severity=4, first_response_minutes=600, resolution_minutes=6000)
        rule_setting_set(tenant=tenant, rule="mfa_change", actor=admin_user, severity=4)
        alert = _raise(customer, 10)
        assert alert.severity == 4 and _due(alert, *DEFAULT_SLA[3]) and alert.sla_due_at == alert.first_response_due_at

    def test_a_fold_at_the_same_severity_keeps_the_due_times(self, customer):
        first = _raise(customer, 0)
        again = _raise(customer, 5)
        assert again.pk == first.pk and again.count == 2
        assert (again.first_response_due_at, again.sla_due_at) == (first.first_response_due_at, first.sla_due_at)

    @pytest.mark.parametrize("respond", [alert_claim, alert_acknowledge])
    def test_the_first_response_moves_the_due_time_to_the_resolution(self, customer, agent, respond):
        alert = respond(alert=_raise(customer), actor=agent)
        alert.refresh_from_db()
        assert alert.first_response_at is not None and alert.sla_due_at == alert.resolution_due_at

    def test_a_release_does_not_restart_the_first_response(self, customer, agent):
        alert = _raise(customer)
        alert_claim(alert=alert, actor=agent)
        alert_release(alert=alert, actor=agent)
        alert.refresh_from_db()
        assert alert.sla_due_at == alert.resolution_due_at

    @pytest.mark.parametrize("close", [alert_resolve, alert_dismiss])
    def test_a_final_alert_has_no_due_time(self, customer, agent, close):
        alert = _raise(customer)
        close(alert=alert, actor=agent, note="done")
        alert.refresh_from_db()
        assert alert.sla_due_at is None and alert.resolution_due_at is not None  # kept: was it met?


class TestBreaching:
    def test_the_api_says_which_alerts_breach(self, otp_client, tenant_a):
        now = timezone.now()
        late = AlertFactory(customer__tenant=tenant_a, sla_due_at=now - timedelta(minutes=1))
        on_time = AlertFactory(customer__tenant=tenant_a, sla_due_at=now + timedelta(minutes=10))
        untimed = AlertFactory(customer__tenant=tenant_a)
        results = {r["id"]: r for r in otp_client.get("/api/v1/alerts/").json()["results"]}
        assert {pk: results[pk]["breaching"] for pk in (late.pk, on_time.pk, untimed.pk)} == {
            late.pk: True,
            on_time.pk: False,
            untimed.pk: False,
        }
        assert results[untimed.pk]["sla_due_at"] is None and results[late.pk]["sla_due_at"]


class TestPolicyService:
    def test_set_replace_and_record(self, tenant_a, admin_user):
        sla_policy_set(tenant=tenant_a, severity=4, first_response_minutes=10, resolution_minutes=60, actor=admin_user)
        sla_policy_set(tenant=tenant_a, severity=4, first_response_minutes=10, resolution_minutes=60, actor=admin_user)
        policy = sla_policy_set(tenant=tenant_a, severity=4, first_response_minutes=5, resolution_minutes=60)
        assert SlaPolicy.objects.get(tenant=tenant_a, severity=4) == policy and policy.first_response_minutes == 5
        records = AuditEvent.objects.filter(target_type="alerts.slapolicy").order_by("id")
        assert [(r.action, r.changes.get("first_response_minutes")) for r in records] == [
            (Action.CREATE, {"before": None, "after": 10}),
            (Action.UPDATE, {"before": 10, "after": 5}),
        ]
        assert records[0].actor == admin_user and records[0].tenant_id == tenant_a.pk

    @pytest.mark.parametrize(
        "severity, first, resolution, field",
        [
            (5, 10, 60, "severity"),
            (0, 10, 60, "severity"),
            (True, 10, 60, "severity"),
            (4, 0, 60, "first_response_minutes"),
            (4, -5, 60, "first_response_minutes"),
            (4, 10, 0, "resolution_minutes"),
            (4, 10.5, 60, "first_response_minutes"),
            (4, 61, 60, "first_response_minutes"),
            (4, 10, 10**9, "resolution_minutes"),
        ],
    )
    def test_refusals_change_nothing(self, tenant_a, severity, first, resolution, field):
        with pytest.raises(ValidationError) as refused:
            sla_policy_set(
                tenant=tenant_a, severity=severity, first_response_minutes=first, resolution_minutes=resolution
            )
        assert list(refused.value.message_dict) == [field]
        assert not SlaPolicy.objects.exists() and not AuditEvent.objects.filter(target_type="alerts.slapolicy").exists()


class TestCommand:
    def test_sets_the_policy_and_prints_it(self, tenant_a):
        out = io.StringIO()
        call_command(
            "tenant_sla",
            "tenant-a",
            "--severity",
            "critical",
            "--first-response",
            "10",
            "--resolution",
            "90",
            stdout=out,
        )
        assert out.getvalue().strip() == (
            "tenant-a: critical alerts: first response within 10 min, resolution within 90 min"
        )
        call_command("tenant_sla", "tenant-a", "--severity", "2", "--first-response", "30", "--resolution", "600")
        assert set(SlaPolicy.objects.values_list("severity", "first_response_minutes", "resolution_minutes")) == {
            (4, 10, 90),
            (2, 30, 600),
        }

    @pytest.mark.parametrize(
        "args, reason",
        [
            (["nope", "--severity", "4", "--first-response", "1", "--resolution", "2"], "No such tenant: nope."),
            (["tenant-a", "--severity", "9", "--first-response", "1", "--resolution", "2"], "No such severity"),
            (["tenant-a", "--severity", "4", "--first-response", "0", "--resolution", "2"], "1 or more"),
            (["tenant-a", "--severity", "4", "--first-response", "30", "--resolution", "20"], "after the resolution"),
            (["tenant-a", "--severity", "4", "--first-response", "x", "--resolution", "20"], "invalid int"),
        ],
    )
    def test_bad_input_fails_with_a_one_line_reason(self, tenant_a, args, reason):
        with pytest.raises(CommandError) as failed:
            call_command("tenant_sla", *args)
        assert reason in str(failed.value) and "\n" not in str(failed.value)
        assert not SlaPolicy.objects.exists()

"""desk 0009: the account actions left pending on cases resolved before resolving cancelled them are
cancelled, each recorded on its case as the system (not as an agent), sealed into the tenant's hash
chain like any event; nothing else changes; a second run does nothing; reversing it does nothing.

django-test-migrations is not installed: the migration's function runs here on crafted rows, with
the historical models of the migration graph at its dependencies (as `migrate` would give it)."""

import importlib
from datetime import timedelta

import pytest
from django.db import connection, migrations
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from accounts.testing import verified_client
from alerts.tests.factories import AlertFactory, CustomerFactory
from audit.models import AuditEvent, AuditSeal
from audit.services import audit_seal
from audit.verify import verify_chain
from desk.action_services import actions_release_due
from desk.models import AccountAction, ActionState, Case, CaseStatus
from desk.services import case_open

pytestmark = pytest.mark.django_db

MIGRATION = importlib.import_module("desk.migrations.0009_cancel_pending_actions_of_resolved_cases")
RESOLVED_AT = timezone.now() - timedelta(days=3)


@pytest.fixture(scope="module")
def historical_apps(django_db_blocker):
    with django_db_blocker.unblock():
        loader = MigrationExecutor(connection).loader
        return loader.project_state([("desk", "0008_action_cancelled"), ("audit", "0006_target_changes_index")]).apps


def _run(historical_apps):
    MIGRATION.cancel_pending_of_resolved(historical_apps, None)


def _action(case, state, kind="lock", **extra):
    now = timezone.now()
    return AccountAction.objects.create(
        tenant_id=case.tenant_id, case=case, customer_id=case.customer_id, action=kind, params=extra.pop("params", {}),
        state=state, requested_at=now - timedelta(days=4), updated_at=now - timedelta(days=4),
        hold_until=now - timedelta(days=4) if state == ActionState.WAITING else None, **extra,
    )  # fmt: skip


def _resolve_as_before_0008(case):
    """Resolved the way case_close did before it cancelled anything: the actions stay as they were."""
    Case.objects.filter(pk=case.pk).update(
        status=CaseStatus.RESOLVED, outcome="account_secured", closed_at=RESOLVED_AT, sla_due_at=None
    )


@pytest.fixture
def crafted(case_a, agent, agent_b, tenant_a, tenant_b):
    """A resolved case of tenant A with an action in every state, an open case of tenant A, and a
    resolved case of tenant B, each with pending actions."""
    states = {
        state: _action(case_a, state, requested_by=agent)
        for state in (
            ActionState.PENDING_APPROVAL, ActionState.WAITING, ActionState.ON_HOLD, ActionState.REQUESTED,
            ActionState.SENT, ActionState.CONFIRMED, ActionState.FAILED,
        )
    }  # fmt: skip
    _resolve_as_before_0008(case_a)
    open_case, _ = case_open(actor=agent, alert=AlertFactory(customer=CustomerFactory(tenant=tenant_a)))
    still_open = _action(open_case, ActionState.PENDING_APPROVAL, kind="reset_mfa", requested_by=agent)
    other, _ = case_open(actor=agent_b, alert=AlertFactory(customer=CustomerFactory(tenant=tenant_b)))
    other_waiting = _action(other, ActionState.WAITING, kind="change_contact", params={"field": "email"})
    _resolve_as_before_0008(other)
    return states, still_open, other_waiting


def test_pending_actions_of_resolved_cases_are_cancelled_and_nothing_else(historical_apps, crafted, case_a):
    states, still_open, other_waiting = crafted
    before = AuditEvent.objects.count()
    _run(historical_apps)
    now = {a.pk: a.state for a in AccountAction.objects.all()}
    for state, action in states.items():
        expected = ActionState.CANCELLED if state in MIGRATION.PENDING else state
        assert now[action.pk] == expected, state
    assert now[still_open.pk] == ActionState.PENDING_APPROVAL  # its case is open: an agent still works it
    assert now[other_waiting.pk] == ActionState.CANCELLED
    assert AuditEvent.objects.count() == before + 4
    # The beat relay finds no waiting action to send, though their holds ended days ago.
    assert actions_release_due() == 0


def test_each_cancellation_is_recorded_on_its_case_as_the_system(historical_apps, crafted, case_a, tenant_a):
    states, _, other_waiting = crafted
    _run(historical_apps)
    events = list(AuditEvent.objects.filter(metadata__event="action_cancelled").order_by("id"))
    by_action = {e.metadata["account_action"]: e for e in events}
    assert set(by_action) == {str(states[s].uuid) for s in MIGRATION.PENDING} | {str(other_waiting.uuid)}
    waiting = by_action[str(states[ActionState.WAITING].uuid)]
    assert (waiting.actor, waiting.actor_label, waiting.actor_role, waiting.origin) == (None, "", "", "system")
    assert (waiting.tenant_id, waiting.target_type, waiting.target_id) == (tenant_a.pk, "desk.case", str(case_a.pk))
    assert waiting.target_label == f"customer #{case_a.customer_id}" and waiting.action == "update"
    assert waiting.changes == {"state": {"before": "waiting", "after": "cancelled"}}
    assert waiting.metadata["cancelled_by"] == "migration desk.0009"
    assert waiting.metadata["case_resolved_at"] == RESOLVED_AT.isoformat()
    assert waiting.reason.startswith("The case was resolved before it went out.") and "migration" in waiting.reason
    assert by_action[str(other_waiting.uuid)].tenant_id == other_waiting.tenant_id
    # Sealed into each tenant's hash chain like every other event; the chains verify.
    audit_seal()
    assert AuditSeal.objects.filter(event_id__in=[e.pk for e in events]).count() == len(events) == 4
    for chain in {tenant_a.pk, other_waiting.tenant_id}:
        assert verify_chain(chain).intact


def test_the_case_timeline_says_alertdesk_cancelled_it_and_why(historical_apps, crafted, case_a, supervisor):
    _run(historical_apps)
    html = verified_client(supervisor).get(f"/cases/{case_a.pk}/").content.decode()
    assert html.count("Lock the account: cancelled, never sent") == 3
    assert "Cancelled by a data migration (desk 0009)" in html
    assert 'data-testid="resolve-cancels"' not in html  # a resolved case offers no resolve form


def test_a_second_run_does_nothing(historical_apps, crafted):
    _run(historical_apps)
    recorded = AuditEvent.objects.count()
    updated = dict(AccountAction.objects.values_list("pk", "updated_at"))
    _run(historical_apps)
    assert AuditEvent.objects.count() == recorded
    assert dict(AccountAction.objects.values_list("pk", "updated_at")) == updated


def test_without_anything_pending_it_records_nothing(historical_apps, case_a, agent):
    _action(case_a, ActionState.CONFIRMED, requested_by=agent)
    _resolve_as_before_0008(case_a)
    before = AuditEvent.objects.count()
    _run(historical_apps)
    assert AuditEvent.objects.count() == before


def test_reversing_it_is_a_no_op():
    (operation,) = MIGRATION.Migration.operations
    assert operation.reversible and operation.reverse_code is migrations.RunPython.noop

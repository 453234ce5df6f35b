""" "Next alert": alert_claim_next and POST /api/v1/queues/{id}/next/ hand the caller the best alert
of a queue that nobody holds, claimed for them; safe when agents ask at the same moment."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.models import Alert, AlertStatus, AlertType, Severity
from alerts.services import alert_claim
from alerts.tests.factories import T0, AlertFactory, CustomerFactory
from audit.models import Action, AuditEvent
from config.testing import race
from desk.models import Queue
from desk.selectors import queue_siblings
from desk.services import alert_claim_next, queue_create, queue_grant


def next_url(queue_id) -> str:
    return f"/api/v1/queues/{queue_id}/next/"


@pytest.fixture
def floor(tenant_a, tenant_b, agent):
    """Tenant A: default (granted to the agent) and takeover (not granted); tenant B's default."""
    default_a = Queue.objects.get(tenant=tenant_a, is_default=True)
    takeover = queue_create(
        tenant=tenant_a, slug="takeover", name="Takeover", alert_types=[AlertType.ACCOUNT_TAKEOVER], min_severity=3
    )
    queue_grant(queue=default_a, user=agent)
    customer = CustomerFactory(tenant=tenant_a, external_id="acct-1")
    due = T0 + timedelta(hours=1)
    alerts = {
        "low": AlertFactory(customer=customer, severity=Severity.LOW, sla_due_at=T0),
        "high-late": AlertFactory(customer=customer, severity=Severity.HIGH, sla_due_at=due + timedelta(hours=1)),
        "high-soon": AlertFactory(customer=customer, severity=Severity.HIGH, sla_due_at=due),
        "takeover-alert": AlertFactory(
            customer=customer, type=AlertType.ACCOUNT_TAKEOVER, rule="takeover", severity=Severity.CRITICAL
        ),
        "resolved": AlertFactory(customer=customer, severity=Severity.CRITICAL, status=AlertStatus.RESOLVED),
        "foreign": AlertFactory(customer=CustomerFactory(tenant=tenant_b), severity=Severity.CRITICAL),
    }
    return {
        "default_a": default_a,
        "takeover": takeover,
        "default_b": Queue.objects.get(tenant=tenant_b),
        **alerts,
    }


@pytest.mark.django_db
class TestService:
    def test_claims_the_best_unclaimed_alert_in_queue_order_then_the_next(self, agent, supervisor, floor):
        queue = floor["default_a"]
        siblings = queue_siblings([queue])
        alert_claim(alert=floor["high-soon"], actor=supervisor)  # held: skipped
        first = alert_claim_next(queue=queue, siblings=siblings, actor=agent)
        assert first.pk == floor["high-late"].pk and first.assignee_id == agent.pk
        assert alert_claim_next(queue=queue, siblings=siblings, actor=agent).pk == floor["low"].pk
        assert alert_claim_next(queue=queue, siblings=siblings, actor=agent) is None  # the takeover is not here
        assert Alert.objects.get(pk=floor["takeover-alert"].pk).assignee_id is None

    def test_the_claim_is_audited_and_is_the_first_response(self, agent, floor):
        claimed = alert_claim_next(queue=floor["default_a"], siblings=queue_siblings([floor["default_a"]]), actor=agent)
        record = AuditEvent.objects.get(action=Action.UPDATE, target_type="alerts.alert", target_id=str(claimed.pk))
        assert record.actor == agent and record.changes["assignee"] == {"before": None, "after": "agent"}
        assert Alert.objects.get(pk=claimed.pk).first_response_at is not None


@pytest.mark.django_db
class TestApi:
    def test_200_with_the_alert_now_claimed_by_the_caller_then_204_when_none_is_left(self, otp_client, agent, floor):
        response = otp_client.post(next_url(floor["default_a"].pk))
        assert response.status_code == 200
        body = response.json()
        assert body["id"] == floor["high-soon"].pk and body["assignee"] == "agent"
        assert body["customer"]["external_id"] == "acct-1" and body["tenant"] == "tenant-a"
        assert {"severity", "status", "sla_due_at", "breaching", "type", "rule"} <= set(body)
        assert AuditEvent.objects.filter(actor=agent, action=Action.VIEW, target_id=str(body["id"])).exists()
        assert [otp_client.post(next_url(floor["default_a"].pk)).status_code for _ in range(3)] == [200, 200, 204]
        assert Alert.objects.filter(assignee=agent).count() == 3

    def test_a_supervisor_may_take_the_next_alert_of_any_queue_of_the_tenant(self, supervisor, floor):
        response = verified_client(supervisor).post(next_url(floor["takeover"].pk))
        assert response.status_code == 200 and response.json()["id"] == floor["takeover-alert"].pk

    def test_foreign_ungranted_and_missing_queues_answer_the_same_404(self, otp_client, floor):
        answers = [
            otp_client.post(next_url(queue_id)) for queue_id in (floor["default_b"].pk, floor["takeover"].pk, 999999)
        ]
        assert {(a.status_code, a.content) for a in answers} == {(404, b'{"detail":"No such queue."}')}
        assert not Alert.objects.filter(assignee__isnull=False).exists()

    def test_a_role_that_sees_the_queue_but_may_not_work_alerts_gets_403(self, admin_user, floor):
        response = verified_client(admin_user).post(next_url(floor["default_a"].pk))
        assert response.status_code == 403
        assert not Alert.objects.filter(assignee__isnull=False).exists()

    def test_post_only_and_password_only_or_anonymous_sessions_are_refused(
        self, otp_client, password_only_client, floor
    ):
        url = next_url(floor["default_a"].pk)
        assert otp_client.get(url).status_code == 405
        assert password_only_client.post(url).status_code == 403
        anonymous = Client().post(url)
        assert (anonymous.status_code, anonymous.json()) == (
            403,
            {"detail": "Authentication credentials were not provided."},
        )
        assert not Alert.objects.filter(assignee__isnull=False).exists()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("n_alerts", [6, 2])
def test_agents_asking_for_next_at_once_get_different_alerts(tenant_a, n_alerts):
    queue = Queue.objects.get(tenant=tenant_a, is_default=True)
    customer = CustomerFactory(tenant=tenant_a)
    for _ in range(n_alerts):
        AlertFactory(customer=customer, severity=Severity.HIGH)
    agents = [make_staff(f"racer-{n}", role=Role.AGENT, tenants=[tenant_a]) for n in range(4)]
    for agent in agents:
        queue_grant(queue=queue, user=agent)

    def take(agent):
        def job():
            claimed = alert_claim_next(queue=queue, siblings=queue_siblings([queue]), actor=agent)
            return None if claimed is None else claimed.pk

        return job

    got = race(*(take(agent) for agent in agents))
    taken = [pk for pk in got if pk is not None]
    assert len(taken) == min(4, n_alerts) and len(set(taken)) == len(taken)
    assert {a.assignee_id for a in Alert.objects.filter(pk__in=taken)} == {
        agent.pk for agent, pk in zip(agents, got, strict=True) if pk is not None
    }


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_next_skips_an_alert_another_transaction_holds_instead_of_waiting(tenant_a, agent):
    from django.db import transaction

    queue = Queue.objects.get(tenant=tenant_a, is_default=True)
    queue_grant(queue=queue, user=agent)
    customer = CustomerFactory(tenant=tenant_a)
    best = AlertFactory(customer=customer, severity=Severity.CRITICAL)
    second = AlertFactory(customer=customer, severity=Severity.HIGH)
    locked, done = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                Alert.objects.select_for_update().get(pk=best.pk)  # a claim of it in progress
                locked.set()
                done.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # waiting would fail instead of hanging
        claimed = alert_claim_next(queue=queue, siblings=queue_siblings([queue]), actor=agent)
        assert claimed.pk == second.pk
    finally:
        done.set()
        holder.join(30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")

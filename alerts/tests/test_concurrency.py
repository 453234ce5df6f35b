"""Two workers on one account at once (PostgreSQL): the account's state row serializes them, so
nothing is lost, nothing is counted twice, and neither deadlocks."""

import pytest

from alerts.detection import events_process
from alerts.models import AccountEvent, Alert, CustomerState
from alerts.tests.test_detection import _ingest
from config.testing import race

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_detection_on_commit(monkeypatch):
    # The events are stored first and then handed to the racing "workers" below.
    monkeypatch.setattr("alerts.services.detection_enqueue", lambda ids: None)


@pytest.mark.parametrize("round_", range(4))
def test_two_workers_with_events_of_one_account_count_each_failure_once(tenant_a, round_):
    account = f"racer-{round_}"
    first = _ingest(
        tenant_a,
        [("login.failed", m, account, {}) for m in range(5)] + [("login.succeeded", 5, account, {"device_id": "d1"})],
    )
    second = _ingest(
        tenant_a,
        [("login.failed", m + 0.5, account, {}) for m in range(5)]
        + [("login.succeeded", 5.5, account, {"device_id": "d2"})],
    )
    done = race(lambda: events_process(event_ids=first), lambda: events_process(event_ids=second))
    assert done == [6, 6]
    # Ten failures in five minutes: the 5th to the 10th each fire, whichever worker went first.
    (brute,) = Alert.objects.filter(rule="brute_force")
    assert brute.count == 6 and brute.evidence.count() == 10
    state = CustomerState.objects.get(customer__external_id=account)
    assert {"id:d1", "id:d2"} <= set(state.devices)
    assert not AccountEvent.objects.filter(processed_at__isnull=True).exists()


def test_the_same_chunk_delivered_twice_at_once_is_processed_once(tenant_a):
    ids = _ingest(
        tenant_a,
        [("mfa.disabled", 0, "twice", {}), ("recovery.requested", 1, "twice", {}), ("third_party.authorized", 2,
         "twice", {"app_name": "Tool"})],
    )  # fmt: skip
    done = race(lambda: events_process(event_ids=ids), lambda: events_process(event_ids=ids))
    assert sorted(done) == [0, 3]
    assert sorted(Alert.objects.values_list("rule", "count")) == [
        ("mfa_change", 1),
        ("recovery", 1),
        ("third_party", 1),
    ]


def test_overlapping_chunks_of_many_accounts_do_not_deadlock(tenant_a):
    # Two chunks touching the same 40 accounts, one in each order of time: each worker locks the
    # accounts in id order, so neither can wait on the other in a cycle.
    accounts = [f"overlap-{n}" for n in range(40)]
    first = _ingest(tenant_a, [("login.succeeded", n, a, {"device_id": "x"}) for n, a in enumerate(accounts)])
    second = _ingest(
        tenant_a, [("login.succeeded", 100 - n, a, {"device_id": "y"}) for n, a in enumerate(reversed(accounts))]
    )
    assert race(lambda: events_process(event_ids=first), lambda: events_process(event_ids=second)) == [40, 40]
    assert CustomerState.objects.filter(customer__external_id__in=accounts).count() == 40


def test_two_workers_raising_one_source_alert_make_one(tenant_a):
    # Credential stuffing is about an address, not an account: workers on different accounts
    # raise it at once. One inserts it; the other folds into it.
    first = _ingest(tenant_a, [("login.failed", n, f"a-{n}", {"ip": "203.0.113.66"}) for n in range(12)])
    second = _ingest(tenant_a, [("login.failed", n + 0.5, f"b-{n}", {"ip": "203.0.113.66"}) for n in range(12)])
    assert race(lambda: events_process(event_ids=first), lambda: events_process(event_ids=second)) == [12, 12]
    (alert,) = Alert.objects.filter(rule="credential_stuffing")
    # The k-th failure in time sees k accounts: the 10th to the 24th fire, whoever went first.
    assert alert.count == 15 and alert.customer_id is None


@pytest.mark.parametrize("round_", range(3))
def test_two_agents_claiming_one_alert_at_once_one_wins(tenant_a, round_):
    from accounts.models import Role
    from accounts.testing import make_staff
    from alerts.services import AlertClaimConflict, alert_claim
    from alerts.tests.factories import AlertFactory

    alert = AlertFactory(customer__tenant=tenant_a)
    agents = [make_staff(f"racer-{round_}-{n}", role=Role.AGENT, tenants=[tenant_a]) for n in range(4)]

    def claim(agent):
        def job():
            try:
                return alert_claim(alert=Alert.objects.get(pk=alert.pk), actor=agent).assignee_id
            except AlertClaimConflict:
                return None

        return job

    won = race(*(claim(agent) for agent in agents))
    winners = [w for w in won if w is not None]
    assert len(winners) == 1
    alert.refresh_from_db()
    assert alert.assignee_id == winners[0]


@pytest.mark.parametrize("round_", range(3))
def test_a_claim_and_another_agents_acknowledgement_at_once_leave_one_holder(tenant_a, round_):
    """Acknowledging an alert nobody holds claims it: racing a claim, one of the two wins and the
    other is refused, whichever locks the row first; never an alert acknowledged by one and held by
    the other."""
    from accounts.models import Role
    from accounts.testing import make_staff
    from alerts.models import AlertStatus
    from alerts.services import AlertClaimConflict, alert_acknowledge, alert_claim
    from alerts.tests.factories import AlertFactory

    alert = AlertFactory(customer__tenant=tenant_a)
    claimer, acknowledger = (make_staff(f"racer-{round_}-{n}", role=Role.AGENT, tenants=[tenant_a]) for n in (1, 2))

    def attempt(step, agent):
        def job():
            try:
                step(alert=Alert.objects.get(pk=alert.pk), actor=agent)
                return agent.pk
            except AlertClaimConflict:
                return None

        return job

    won = [w for w in race(attempt(alert_claim, claimer), attempt(alert_acknowledge, acknowledger)) if w is not None]
    assert len(won) == 1
    alert.refresh_from_db()
    assert alert.assignee_id == won[0]
    if won[0] == acknowledger.pk:
        assert alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledged_by_id == acknowledger.pk
    else:
        assert alert.status == AlertStatus.OPEN and alert.acknowledged_by_id is None

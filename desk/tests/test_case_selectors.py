"""Who sees which case (exactly as for queues, plus cases shared one by one), and the case
timeline: every item once, newest first, in pages whose cost does not grow with the history."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Role
from accounts.testing import make_staff
from alerts.notifications.models import Notification
from alerts.tests.factories import AccountEventFactory, AlertFactory
from desk.models import Case, Queue
from desk.selectors import (
    TIMELINE_KINDS,
    TimelinePosition,
    case_is_verified,
    case_list_for,
    case_timeline_page,
    cases_shared_with,
)
from desk.services import (
    case_claim,
    case_note_add,
    case_open,
    case_reveal,
    case_share,
    case_status_set,
    concern_raise,
    playbook_step_check,
    queue_revoke,
)

pytestmark = pytest.mark.django_db


class TestWhoSeesACase:
    def test_as_its_queue_agents_of_the_queue_and_supervisors_of_the_tenant(
        self, case_a, agent, specialist, supervisor, agent_b, admin_user
    ):
        assert list(case_list_for(user=agent)) == [case_a]
        assert list(case_list_for(user=supervisor)) == [case_a]
        assert list(case_list_for(user=admin_user)) == [case_a]  # BPO admins see every queue
        assert not case_list_for(user=specialist).exists()  # works another queue of the tenant
        assert not case_list_for(user=agent_b).exists()  # another tenant

    def test_a_revoked_grant_hides_the_queues_cases(self, case_a, agent):
        queue_revoke(queue=Queue.objects.get(pk=case_a.queue_id), user=agent)
        assert not case_list_for(user=agent).exists()

    def test_a_shared_case_is_seen_by_that_specialist_only_and_while_they_are_a_member(
        self, case_a, alert_a, specialist, supervisor, tenant_a
    ):
        other, _ = case_open(actor=supervisor, alert=AlertFactory(customer__tenant=tenant_a))
        case_share(actor=supervisor, case=case_a, user=specialist)
        assert list(case_list_for(user=specialist)) == [case_a]
        assert list(cases_shared_with(user=specialist)) == [case_a]
        colleague = make_staff("colleague", role=Role.AGENT, tenants=[tenant_a])
        assert not case_list_for(user=colleague).exists()
        assert other.pk not in set(case_list_for(user=specialist).values_list("pk", flat=True))
        account_services.membership_remove(user=specialist, tenant=tenant_a)
        assert not case_list_for(user=specialist).exists()

    def test_a_deactivated_tenant_or_user_sees_nothing(self, case_a, agent, supervisor, tenant_a):
        account_services.tenant_set_active(tenant=tenant_a, is_active=False)
        assert not case_list_for(user=agent).exists() and not case_list_for(user=supervisor).exists()
        account_services.tenant_set_active(tenant=tenant_a, is_active=True)
        account_services.user_deactivate(user=agent)
        agent.refresh_from_db()
        assert not case_list_for(user=agent).exists()


def test_nobody_is_verified_until_the_verification_work_says_so(case_a):
    assert not case_is_verified(case_a)
    case_a.verified_until = timezone.now() + timedelta(minutes=1)
    assert case_is_verified(case_a)
    assert not case_is_verified(case_a, now=timezone.now() + timedelta(minutes=2))


def _grow(case, alert, agent, supervisor, rounds: int) -> None:
    """`rounds` of every kind of timeline item on the case."""
    for i in range(rounds):
        AccountEventFactory(customer=case.customer, occurred_at=timezone.now() - timedelta(minutes=i))
        case_note_add(actor=agent, case=case, body=f"note {i}")
        case_status_set(actor=agent, case=case, status="waiting_on_customer" if i % 2 == 0 else "open")
        case_reveal(actor=supervisor, case=case, field="email", reason_code="other", reason_text=f"reason {i}")
        concern_raise(actor=agent, case=case, kind="phishing", note=f"concern {i}")
        new_alert = AlertFactory(customer=case.customer)
        case_open(actor=agent, alert=new_alert)
        Notification.objects.create(
            tenant_id=case.tenant_id, alert=new_alert, customer_id=case.customer_id, channel="sms", state="sent",
            recipient_masked="+***78", created_at=timezone.now(), updated_at=timezone.now(),
        )  # fmt: skip
    case_claim(actor=agent, case=case)
    playbook_step_check(actor=agent, case=case, alert_type="two_factor", step_key="caller_verified")


def _walk(case, size):
    items, position, pages = [], None, 0
    while True:
        page, position = case_timeline_page(case=case, before=position, size=size)
        items += page
        pages += 1
        if position is None:
            return items, pages
        position = TimelinePosition.decode(position.encode())  # as the "Older" link carries it


def test_the_timeline_pages_through_everything_once_newest_first(case_a, alert_a, agent, supervisor):
    _grow(case_a, alert_a, agent, supervisor, rounds=4)
    everything, _ = case_timeline_page(case=case_a, size=10_000)
    kinds = {item.kind for item in everything}
    assert kinds == set(TIMELINE_KINDS)
    for size in (1, 3, 7, 25):
        items, pages = _walk(case_a, size)
        assert [(i.kind, i.pk) for i in items] == [(i.kind, i.pk) for i in everything], size
        assert pages == -(-len(everything) // size)
    keys = [item.key for item in everything]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)


def test_a_timeline_page_costs_the_same_whatever_the_history(case_a, alert_a, agent, supervisor, tenant_a):
    def cost(case):
        case = Case.objects.get(pk=case.pk)
        with CaptureQueriesContext(connection) as queries:
            page, position = case_timeline_page(case=case, size=10)
            older, _ = case_timeline_page(case=case, before=position, size=10)
        # A page: its start (no summary given), the statement that picks it among every source, and
        # one read of the rows of each kind it shows: never more than 2 + the number of sources.
        expected = sum(2 + len({item.kind for item in items}) for items in (page, older))
        return len(queries), expected, len(page)

    short, _ = case_open(actor=agent, alert=AlertFactory(customer__tenant=tenant_a))
    _grow(short, None, agent, supervisor, rounds=1)
    _grow(case_a, alert_a, agent, supervisor, rounds=12)
    bound = 2 * (2 + len(TIMELINE_KINDS))  # two pages, whatever the history's length
    for case in (short, case_a):
        statements, expected, shown = cost(case)
        assert statements == expected <= bound and shown == 10


@pytest.mark.parametrize("cursor", ["", "x", "W10", "WyIyMDI2LTAxLTAxIiwgMCwgMV0", "WzEsMiwzXQ", "a" * 300])
def test_a_made_up_cursor_is_refused(cursor):
    from desk.selectors import InvalidPositionError

    with pytest.raises(InvalidPositionError):
        TimelinePosition.decode(cursor)


def test_the_timeline_has_the_messages_of_the_cases_alerts_only(case_a, alert_a):
    def message(alert):
        now = timezone.now()
        return Notification.objects.create(
            tenant_id=alert.tenant_id, alert=alert, customer_id=alert.customer_id, channel="email", state="sent",
            recipient_masked="a***@e***", created_at=now, updated_at=now,
        )  # fmt: skip

    ours = message(alert_a)
    message(AlertFactory(customer=case_a.customer))  # the same customer's alert, not on this case
    message(AlertFactory(customer__tenant=case_a.tenant))  # another customer's
    items, _ = case_timeline_page(case=case_a)
    assert [item.pk for item in items if item.kind == "notification"] == [ours.pk]

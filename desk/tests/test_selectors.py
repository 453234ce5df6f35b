"""Where alerts fall among a tenant's queues, and who sees which queue."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.http import Http404
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts import services as account_services
from accounts.models import Role, User
from accounts.selectors import request_memo_start, tenant_access_for
from accounts.testing import make_staff
from alerts.models import Alert, AlertStatus, AlertType, Severity
from alerts.tests.factories import T0
from desk.models import Queue
from desk.selectors import (
    queue_alerts_q,
    queue_for_alert,
    queue_get_for,
    queue_list_for,
    queue_scope_for,
    queue_siblings,
)
from desk.services import queue_create, queue_grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(tenant_a):
    """An agent of tenant A with no queue granted yet (the shared fixture's agent holds the default
    queue, as add_staff grants it): these tests are about grants."""
    return make_staff("agent", role=Role.AGENT, tenants=[tenant_a])


def _every_kind_of_alert(tenant) -> list[Alert]:
    """One active alert of each type and severity: the whole space a queue filter looks at."""
    alerts = [
        Alert(
            tenant=tenant, type=t, rule="r", severity=s, reason="-", dedupe_key=f"{t}:{s}",
            first_seen_at=T0, last_seen_at=T0, created_at=T0, updated_at=T0,
        )
        for t in AlertType.values
        for s in Severity.values
    ]  # fmt: skip
    return Alert.objects.bulk_create(alerts)


_filters = st.tuples(
    st.lists(st.sampled_from(AlertType.values), max_size=4, unique=True),
    st.none() | st.sampled_from(Severity.values),
).filter(lambda f: f[0] or f[1] is not None)


class _RollbackError(Exception):
    pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filters=st.lists(_filters, max_size=6))
def test_every_alert_is_in_exactly_one_queue_and_the_query_agrees_with_python(tenant_a, tenant_b, filters):
    alerts = _every_kind_of_alert(tenant_a) if not Alert.objects.exists() else list(Alert.objects.all())
    try:
        with transaction.atomic():
            for i, (types, severity) in enumerate(filters):
                Queue.objects.create(
                    tenant=tenant_a, slug=f"q{i}", name=f"q{i}", alert_types=types, min_severity=severity
                )
            # Another tenant's queues take nothing of this tenant's alerts, whatever their filter.
            Queue.objects.create(tenant=tenant_b, slug="all-critical", name="x", min_severity=1)
            queues = list(Queue.objects.all())
            mine = [q for q in queues if q.tenant_id == tenant_a.pk]
            placed: dict[int, int] = {}
            for queue in mine:
                for alert_id in Alert.objects.filter(queue_alerts_q(queue, queues)).values_list("pk", flat=True):
                    assert alert_id not in placed, "an alert in two queues"
                    placed[alert_id] = queue.pk
            assert set(placed) == {a.pk for a in alerts}, "an alert in no queue"
            for alert in alerts:
                assert queue_for_alert(alert, queues).pk == placed[alert.pk]
            raise _RollbackError
    except _RollbackError:
        pass


def test_the_most_specific_queue_wins(tenant_a):
    default = Queue.objects.get(tenant=tenant_a, is_default=True)
    takeover = queue_create(tenant=tenant_a, slug="takeover", name="T", alert_types=["account_takeover", "recovery"])
    takeover_high = queue_create(
        tenant=tenant_a, slug="takeover-high", name="TH", alert_types=["account_takeover", "recovery"], min_severity=3
    )
    critical = queue_create(tenant=tenant_a, slug="critical", name="C", min_severity=4)
    only_ato = queue_create(tenant=tenant_a, slug="ato", name="A", alert_types=["account_takeover"])
    high = queue_create(tenant=tenant_a, slug="high", name="H", min_severity=3)
    queues = list(Queue.objects.all())

    def where(type_, severity):
        return queue_for_alert(Alert(tenant=tenant_a, type=type_, severity=severity), queues)

    assert where("recovery", 3) == takeover_high  # types and severity beat types alone
    assert where("recovery", 1) == takeover
    assert where("account_takeover", 1) == only_ato  # fewer types is more specific
    assert where("account_takeover", 4) == takeover_high  # two constraints beat one
    assert where("login", 4) == critical  # a higher minimum severity is more specific
    assert where("login", 3) == high
    assert where("login", 2) == default


def _user_queues(user):
    return set(queue_list_for(user=user).values_list("slug", "tenant__slug"))


def test_agents_see_their_granted_queues_supervisors_and_admins_see_all(tenant_a, tenant_b, agent, supervisor):
    vip = queue_create(tenant=tenant_a, slug="vip", name="VIP", min_severity=4)
    queue_create(tenant=tenant_b, slug="vip", name="VIP", min_severity=4)
    assert _user_queues(agent) == set()  # deny by default: a membership alone grants no queue
    queue_grant(queue=vip, user=agent)
    assert _user_queues(agent) == {("vip", "tenant-a")}
    assert _user_queues(supervisor) == {("default", "tenant-a"), ("vip", "tenant-a")}
    bpo = make_staff("bpo", bpo_admin=True)
    assert len(_user_queues(bpo)) == 4


def test_a_grant_stops_counting_once_the_membership_or_the_tenant_goes(tenant_a, agent):
    vip = queue_create(tenant=tenant_a, slug="vip", name="VIP", min_severity=4)
    queue_grant(queue=vip, user=agent)
    account_services.membership_remove(user=agent, tenant=tenant_a)
    assert _user_queues(agent) == set()
    account_services.membership_set(user=agent, tenant=tenant_a, role=Role.AGENT)
    assert _user_queues(agent) == {("vip", "tenant-a")}
    account_services.tenant_set_active(tenant=tenant_a, is_active=False)
    assert _user_queues(agent) == set()


def test_supervisor_of_a_deactivated_tenant_or_an_inactive_user_sees_nothing(tenant_a, supervisor):
    supervisor.is_active = False
    assert _user_queues(supervisor) == set()
    supervisor.is_active = True
    account_services.tenant_set_active(tenant=tenant_a, is_active=False)
    assert _user_queues(supervisor) == set()


def test_queue_get_for_answers_404_for_missing_forbidden_and_malformed(tenant_a, tenant_b, agent, supervisor):
    other = Queue.objects.get(tenant=tenant_b)
    mine = Queue.objects.get(tenant=tenant_a)
    for queue_id in (other.pk, mine.pk, 999999, "abc", None, 10**30):
        with pytest.raises(Http404):
            queue_get_for(user=agent, queue_id=queue_id)
    assert queue_get_for(user=supervisor, queue_id=mine.pk) == mine
    with pytest.raises(Http404):
        queue_get_for(user=supervisor, queue_id=other.pk)


def test_queue_alerts_q_only_takes_its_tenants_active_and_inactive_alike(tenant_a, tenant_b):
    # Placement does not look at status: lists add the active filter themselves.
    _every_kind_of_alert(tenant_b)
    Alert.objects.update(status=AlertStatus.RESOLVED, first_seen_at=T0 - timedelta(days=1))
    queues = list(Queue.objects.all())
    default_a = next(q for q in queues if q.tenant_id == tenant_a.pk)
    assert not Alert.objects.filter(queue_alerts_q(default_a, queues)).exists()
    default_b = next(q for q in queues if q.tenant_id == tenant_b.pk)
    assert Alert.objects.filter(queue_alerts_q(default_b, queues)).count() == Alert.objects.count()


def test_the_queue_scope_read_in_one_query_is_queue_list_for_and_the_siblings(
    agent, supervisor, admin_user, tenant_a, tenant_b, django_assert_num_queries
):
    takeover = queue_create(tenant=tenant_a, slug="takeover", name="Takeover", alert_types=["account_takeover"])
    queue_create(tenant=tenant_b, slug="vip", name="VIP", min_severity=3)
    queue_grant(queue=takeover, user=agent)
    idle = make_staff("idle", role=Role.AGENT, tenants=[tenant_b])
    for user in (agent, supervisor, admin_user, idle):
        expected = list(queue_list_for(user=user))
        request_user = User.objects.get(pk=user.pk)
        request_memo_start(request_user)
        tenant_access_for(user=request_user)  # the top bar reads it first on a page
        with django_assert_num_queries(1):
            scope = queue_scope_for(user=request_user)
            assert queue_scope_for(user=request_user) is scope  # once a request
        assert scope.queues == expected
        assert sorted(q.pk for q in scope.siblings) == sorted(q.pk for q in queue_siblings(expected))
    assert [q.pk for q in queue_scope_for(user=agent).queues] == [takeover.pk]
    assert queue_scope_for(user=idle).queues == [] and queue_scope_for(user=idle).siblings == []

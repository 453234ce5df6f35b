"""The queue page's hand-written SQL (desk.queue_reads) selects what the ORM's queue_alerts_page
selects: the same alerts in the same order, the same next position, the same open case for each
row, and the same counts, for random queues, filters, positions, page sizes and readers."""

import random
from datetime import timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Role
from accounts.testing import make_staff
from alerts.models import Alert, AlertStatus, AlertType, Severity
from alerts.tests.factories import T0, CustomerFactory
from desk.models import OPEN_CASE_STATUSES, Case, CaseAlert, CaseOpenedVia, CaseOutcome, CaseStatus, Queue
from desk.queue_reads import queue_count_groups, queue_rows_page
from desk.selectors import (
    QueueFilters,
    QueuePosition,
    case_scope_q,
    case_sight_for,
    queue_alerts_page,
    queue_counts,
    queue_for_alert,
    queue_scope_for,
)
from desk.services import case_share, queue_create, queue_grant

pytestmark = pytest.mark.django_db
DUE = T0 + timedelta(hours=1)


@pytest.fixture
def world(tenant_a, tenant_b, agent, supervisor):
    """Alerts of every kind with ties in the queue order (equal severities, due times, ages; some
    without a due time), held by nobody, the agent or the supervisor, some about no single
    customer; open and closed cases in two queues, one shared with a specialist; and the other
    tenant's alerts, which no page of tenant A may show."""
    rng = random.Random(7)  # noqa: S311 (test data)
    takeover = queue_create(tenant=tenant_a, slug="takeover", name="T", alert_types=["account_takeover", "recovery"])
    specialist = make_staff("specialist", role=Role.AGENT, tenants=[tenant_a])
    queue_grant(queue=takeover, user=specialist)
    customers = [CustomerFactory(tenant=tenant_a, external_id=f"acct-{i}") for i in range(4)]
    foreign = CustomerFactory(tenant=tenant_b, external_id="acct-0")
    alerts = []
    for i in range(70):
        seen = T0 + timedelta(minutes=rng.choice([0, 5, 5, 10, 20]))
        tenant_b_alert = i >= 64
        alerts.append(
            Alert(
                tenant=tenant_b if tenant_b_alert else tenant_a,
                customer=foreign if tenant_b_alert else rng.choice([*customers, None]),
                type=rng.choice(AlertType.values),
                rule="r",
                severity=rng.choice(Severity.values),
                status=rng.choice([AlertStatus.OPEN, AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED]),
                reason=f"reason {i} <b>&",
                dedupe_key=f"k{i}",
                first_seen_at=seen,
                last_seen_at=seen,
                created_at=seen,
                updated_at=seen,
                sla_due_at=rng.choice(
                    [None, T0 + timedelta(hours=1), T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
                ),
                assignee=None if tenant_b_alert else rng.choice([None, None, agent, supervisor]),
            )  # fmt: skip
        )
    alerts = Alert.objects.bulk_create(alerts)
    queues = list(Queue.objects.filter(tenant=tenant_a))
    statuses = [CaseStatus.OPEN, CaseStatus.WAITING_ON_CUSTOMER, CaseStatus.RESOLVED, CaseStatus.OPEN]
    for n, (customer, status) in enumerate(zip(customers, statuses, strict=True)):  # one case a customer
        members = [a for a in alerts if a.customer_id == customer.pk][:8]
        queue = queue_for_alert(members[0], queues)
        case = Case.objects.create(
            tenant=tenant_a, customer=customer, queue=queue, status=status, severity=members[0].severity,
            opened_via=CaseOpenedVia.CUSTOMER_ANSWER if n % 2 else CaseOpenedVia.AGENT, opened_at=T0, updated_at=T0,
            outcome=CaseOutcome.ACCOUNT_SECURED if status == CaseStatus.RESOLVED else "",
        )  # fmt: skip
        CaseAlert.objects.bulk_create(CaseAlert(case=case, alert=a, added_at=T0) for a in members)
        if n == 3 and queue.pk != takeover.pk:
            case_share(actor=supervisor, case=case, user=specialist)
    return {"readers": [agent, supervisor, specialist], "alerts": alerts}


_positions = st.tuples(
    st.sampled_from(Severity.values),
    st.none() | st.sampled_from([T0 + timedelta(hours=1), T0 + timedelta(hours=2), T0 + timedelta(minutes=30)]),
    st.sampled_from([T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=12)]),
    st.integers(min_value=1, max_value=10**6),
)
_queue_filter = st.tuples(
    st.lists(st.sampled_from(AlertType.values), max_size=3, unique=True),
    st.none() | st.sampled_from(Severity.values),
).filter(lambda f: f[0] or f[1] is not None)


class _RollbackError(Exception):
    pass


def _seen(rows):
    return [
        (
            a.pk, a.type, a.severity, a.status, a.reason, a.first_seen_at, a.sla_due_at, a.assignee_id,
            a.assignee.username if a.assignee_id else None,
            (a.customer.external_id, a.customer.email_masked, a.customer.phone_masked) if a.customer_id else None,
            (a.open_case.pk, a.open_case.opened_via) if a.open_case else None, a.tenant.pk,
        )
        for a in rows
    ]  # fmt: skip


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    reader=st.integers(min_value=0, max_value=2),
    extra_queue=st.none() | _queue_filter,
    size=st.integers(min_value=1, max_value=9),
    after=st.none() | _positions,
    type_=st.sampled_from(["", *AlertType.values, "nonsense"]),
    severity=st.none() | st.sampled_from(Severity.values),
    status=st.sampled_from(["", "open", "acknowledged", "resolved"]),
    mine=st.booleans(),
    unassigned=st.booleans(),
    customer=st.none() | st.sampled_from(["acct-0", "acct-2", "nobody"]),
)
def test_the_sql_page_selects_what_the_orm_page_selects(
    world, tenant_a, reader, extra_queue, size, after, type_, severity, status, mine, unassigned, customer
):
    user = world["readers"][reader]
    try:
        with transaction.atomic():
            if extra_queue is not None:
                queue_create(
                    tenant=tenant_a, slug="extra", name="X", alert_types=extra_queue[0], min_severity=extra_queue[1]
                )
            user.__dict__.pop("_request_memo", None)
            scope = queue_scope_for(user=user)
            filters = QueueFilters(
                type=type_, severity=severity, status=status, assignee_id=user.pk if mine else None,
                unassigned=unassigned, customer=customer,
            )  # fmt: skip
            position = None if after is None else QueuePosition(*after)
            for queue in Queue.objects.filter(tenant=tenant_a):
                expected, expected_next = queue_alerts_page(
                    queue=queue, siblings=scope.siblings, after=position, size=size, filters=filters
                )
                seen_cases = Case.objects.filter(
                    case_scope_q(user=user, queues=scope.queues), status__in=OPEN_CASE_STATUSES
                ).order_by("pk")  # each row's open case among those the reader sees: the first by id
                for alert in expected:
                    alert.open_case = seen_cases.filter(case_alerts__alert_id=alert.pk).first()
                got, got_next = queue_rows_page(
                    queue=queue, siblings=scope.siblings, after=position, size=size, filters=filters,
                    cases=case_sight_for(user=user, queues=scope.queues),
                )  # fmt: skip
                assert _seen(got) == _seen(expected)
                assert got_next == expected_next
            counts = queue_counts(queues=scope.siblings, siblings=scope.siblings)
            for queue in scope.siblings:
                every = Alert.objects.filter(tenant=tenant_a, status__in=["open", "acknowledged"])
                placed = [a for a in every if queue_for_alert(a, scope.siblings).pk == queue.pk]
                assert counts[queue.pk]["active"] == len(placed)
                assert counts[queue.pk]["unassigned"] == sum(a.assignee_id is None for a in placed)
            raise _RollbackError
    except _RollbackError:
        pass


def test_a_walk_through_every_page_meets_every_active_alert_of_the_queue_once(world, tenant_a, supervisor):
    scope = queue_scope_for(user=supervisor)
    sight = case_sight_for(user=supervisor, queues=scope.queues)
    for queue in scope.queues:
        seen, after = [], None
        while True:
            rows, after = queue_rows_page(
                queue=queue, siblings=scope.siblings, after=after, size=4, filters=QueueFilters(), cases=sight
            )
            seen += [row.pk for row in rows]
            if after is None:
                break
        placed = [
            a.pk
            for a in Alert.objects.filter(tenant=tenant_a, status__in=["open", "acknowledged"])
            if queue_for_alert(a, scope.siblings).pk == queue.pk
        ]
        assert sorted(seen) == sorted(placed) and len(seen) == len(set(seen))


def test_nobody_signed_out_sees_an_open_case_and_no_tenant_matches_nothing(world, tenant_a):
    from django.contrib.auth.models import AnonymousUser

    queue = Queue.objects.get(tenant=tenant_a, is_default=True)
    siblings = list(Queue.objects.filter(tenant=tenant_a))
    rows, _ = queue_rows_page(
        queue=queue, siblings=siblings, size=50, filters=QueueFilters(),
        cases=case_sight_for(user=AnonymousUser(), queues=[]),
    )  # fmt: skip
    assert rows and all(row.open_case is None for row in rows)
    assert queue_count_groups(tenant_ids=[], now=T0) == []


@pytest.mark.parametrize("perm", ["alerts.view_alert", "alerts.change_alert"])
def test_reading_one_alert_by_id_follows_the_access_filter_exactly(world, agent_b, admin_user, perm):
    """alert_get_for checks the rule on the alert it read (alert_allows); lists compile it into
    their query (alert_scope_q). For every reader and every alert, both say the same."""
    from django.http import Http404

    from alerts.selectors import alert_get_for, alert_list_for

    for user in [*world["readers"], agent_b, admin_user]:
        visible = set(alert_list_for(user=user, perm=perm).values_list("pk", flat=True))
        for alert in world["alerts"]:
            user.__dict__.pop("_request_memo", None)
            try:
                alert_get_for(user=user, alert_id=alert.pk, perm=perm, with_evidence=False)
                got = True
            except Http404:
                got = False
            assert got == (alert.pk in visible), (user.username, alert.pk)
        assert visible or user == admin_user or user == agent_b  # the test reads someone's alerts


def test_the_alert_pages_open_case_in_sql_is_the_one_the_case_scope_gives(world, agent_b):
    """case_open_annotation (SQL, read with the alert) and case_open_for_alert's own query (the
    ORM's case_scope_q) name the same case, or none, for every reader and alert."""
    from django.http import Http404

    from alerts.selectors import alert_get_for
    from desk.selectors import case_open_annotation, case_open_for_alert

    found_some = False
    for user in [*world["readers"], agent_b]:
        user.__dict__.pop("_request_memo", None)
        for alert in world["alerts"]:
            if alert.customer_id is None:
                continue
            try:
                read = alert_get_for(
                    user=user, alert_id=alert.pk, with_evidence=False, annotations=case_open_annotation(user=user)
                )
            except Http404:  # not theirs to see: nothing to compare
                continue
            by_sql = case_open_for_alert(user=user, alert=read)
            plain = Alert.objects.get(pk=alert.pk)
            by_orm = case_open_for_alert(user=user, alert=plain)
            assert (by_sql and (by_sql.pk, by_sql.status)) == (by_orm and (by_orm.pk, by_orm.status))
            found_some = found_some or by_sql is not None
    assert found_some


def test_one_alert_read_in_sql_has_every_value_the_orm_reads(world, supervisor):
    """alert_get_for's statement (alerts.selectors._alert_read) gives the alert, its customer and its
    assignee with the values, types and time zones the ORM gives; the encrypted contacts stay unread."""
    from accounts.models import User
    from alerts.models import Customer
    from alerts.selectors import ENCRYPTED_CUSTOMER_FIELDS, alert_get_for

    def values(obj, model, skip=()):
        return {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields if f.name not in skip}

    checked = 0
    for alert in world["alerts"]:
        if alert.tenant_id != supervisor.memberships.get().tenant_id:
            continue
        got = alert_get_for(user=supervisor, alert_id=alert.pk, with_evidence=False)
        orm = Alert.objects.select_related("tenant", "customer", "assignee").get(pk=alert.pk)
        assert values(got, Alert) == values(orm, Alert)
        assert got.tenant == orm.tenant and got.tenant.name == orm.tenant.name
        if orm.customer_id is not None:
            assert values(got.customer, Customer, ENCRYPTED_CUSTOMER_FIELDS) == values(
                orm.customer, Customer, ENCRYPTED_CUSTOMER_FIELDS
            )
            assert set(ENCRYPTED_CUSTOMER_FIELDS) <= got.customer.get_deferred_fields()
        else:
            assert got.customer is None
        assert (got.assignee and values(got.assignee, User)) == (orm.assignee and values(orm.assignee, User))
        checked += 1
    assert checked > 30


def test_constants_are_written_only_for_the_codes_own_plain_values():
    from desk.queue_reads import _Sql

    assert _Sql.constants("a.status", ["open", "acknowledged"]) == "a.status IN ('open', 'acknowledged')"
    for bad in ([], ["open'; DROP TABLE x; --"], ["Open"], [1], ["a b"]):
        with pytest.raises(ValueError, match="not constants"):
            _Sql.constants("a.status", bad)


def test_the_queue_statements_write_the_index_predicates_statuses_into_their_text(world, tenant_a, supervisor):
    """PostgreSQL keeps one plan for a prepared statement (a generic plan) only when that plan is
    as good as one made for the values at hand. The queue-order index is partial (active statuses);
    with the statuses as parameters, a kept plan cannot prove it usable, so the rows and counts were
    planned again at every request (1.5 ms each at 1,000,000 alerts; bench/queue_pages.py prints
    each statement's plans). So the statuses, the code's own constants, are in the text, and every
    value that comes from a request or the data stays a parameter."""
    from django.db import connection

    scope = queue_scope_for(user=supervisor)
    sight = case_sight_for(user=supervisor, queues=scope.queues)
    queue = next(q for q in scope.queues if q.is_default)
    sent = []

    def capture(execute, sql, params, many, context):
        sent.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        queue_rows_page(
            queue=queue, siblings=scope.siblings, size=25, cases=sight,
            filters=QueueFilters(customer="acct-1'; --", type="login"),
        )  # fmt: skip
        queue_count_groups(tenant_ids=[tenant_a.pk], now=T0)
    assert len(sent) == 2
    for sql, params in sent:
        assert "a.status IN ('open', 'acknowledged')" in sql
        values = list(params.values()) if isinstance(params, dict) else list(params)
        assert not {"open", "acknowledged", *OPEN_CASE_STATUSES} & {v for v in values if isinstance(v, str)}
    rows_sql, rows_params = sent[0]
    assert "c.status IN ('open', 'waiting_on_customer')" in rows_sql
    assert {"acct-1'; --", "login", tenant_a.pk} <= set(rows_params.values())  # still parameters

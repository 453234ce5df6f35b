"""The queue page's reads, in hand-written SQL: the page an agent reloads all day.

Through the ORM, building and compiling the page's statement, then turning 50 rows into Alert,
Customer and User instances, was about a third of the page's server time (bench/queue_pages.py
--profile queue): more than the database's own work. Here the same statement is written once as
SQL (PostgreSQL and SQLite alike) and its rows read as plain tuples into small row objects.

`queue_rows_page` selects exactly what `selectors.queue_alerts_page` selects, in the same order,
with the same keyset cursor: placement (`queue_alerts_q`), filters (`QueueFilters`), the position
(`QueuePosition.after_q`) and each row's open case in the reader's case scope (`case_scope_q`) are
each said again here, and desk/tests/test_queue_reads.py holds the two to each other on random data.
`queue_counts` (selectors) reads through `queue_counts_rows` here.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.db import connection

from accounts.models import User
from alerts.models import ACTIVE_STATUSES, Alert, AlertType, Customer, Severity
from config.sql import field_column, sql_constants, timestamps_in_c
from desk.models import OPEN_CASE_STATUSES, Case, CaseAlert, Queue

_ALERTS = Alert._meta.db_table
_CUSTOMERS = Customer._meta.db_table
_USERS = User._meta.db_table
_CASES = Case._meta.db_table
_CASE_ALERTS = CaseAlert._meta.db_table


_NAMED = re.compile(r"%\((p\d+)\)s")


class _Sql:
    """A statement built in pieces: each value becomes a named parameter, so pieces may be written
    in any order (the text's order is not the order they were built in)."""

    def __init__(self):
        self.params: dict = {}

    def value(self, value) -> str:
        if isinstance(value, datetime):
            value = connection.ops.adapt_datetimefield_value(value)
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    def positional(self, text: str) -> tuple[str, list]:
        """`text` with plain %s placeholders and its values in the order they appear, for a piece
        that goes into a statement the ORM writes (RawSQL)."""
        values = []

        def placeholder(match) -> str:
            values.append(self.params[match[1]])
            return "%s"

        return _NAMED.sub(placeholder, text), values

    @staticmethod
    def constants(column: str, values: Iterable[str]) -> str:
        """`column IN ('a', 'b')`, the code's own values in the text (config.sql.sql_constants)."""
        return f"{column} IN {sql_constants(values)}"

    def among(self, column: str, values: Iterable) -> str:
        """`column IN (...)`; matches nothing for no values (IN () is not SQL)."""
        values = list(values)
        if not values:
            return "1 = 0"
        return f"{column} IN ({', '.join(self.value(v) for v in values)})"


# --- placement, filters, position: queue_alerts_q, QueueFilters.q and QueuePosition.after_q in SQL ---


def _own_filter(sql: _Sql, queue: Queue) -> str:
    """selectors._own_filter: the queue's own filter within its tenant ("" for none)."""
    if queue.is_default:
        return ""
    parts = []
    if queue.alert_types:
        parts.append(sql.among("a.type", queue.alert_types))
    if queue.min_severity is not None:
        parts.append(f"a.severity >= {sql.value(queue.min_severity)}")
    return " AND ".join(parts)


def _placement(sql: _Sql, queue: Queue, siblings: Iterable[Queue]) -> list[str]:
    from desk.selectors import queue_specificity

    key = queue_specificity(queue)
    parts = [f"a.tenant_id = {sql.value(queue.tenant_id)}"]
    if own := _own_filter(sql, queue):
        parts.append(own)
    for other in siblings:
        if other.tenant_id == queue.tenant_id and other.pk != queue.pk and queue_specificity(other) < key:
            if theirs := _own_filter(sql, other):
                parts.append(f"NOT ({theirs})")
    return parts


def _filters(sql: _Sql, filters, tenant_id: int) -> list[str]:
    parts = []
    if filters.type in AlertType.values:
        parts.append(f"a.type = {sql.value(filters.type)}")
    if filters.severity in Severity.values:
        parts.append(f"a.severity = {sql.value(filters.severity)}")
    if filters.status in ACTIVE_STATUSES:
        parts.append(f"a.status = {sql.value(filters.status)}")
    if filters.assignee_id is not None:
        parts.append(f"a.assignee_id = {sql.value(filters.assignee_id)}")
    if filters.unassigned:
        parts.append("a.assignee_id IS NULL")
    if filters.customer is not None:  # selectors.customer_ids_by_external_id, as a subquery
        tenant, external_id = sql.value(tenant_id), sql.value(filters.customer)
        parts.append(
            f"a.customer_id IN (SELECT c.id FROM {_CUSTOMERS} c WHERE c.tenant_id = {tenant} AND c.external_id = {external_id})"  # noqa: S608, E501
        )
    return parts


def _after(sql: _Sql, after) -> str:
    """QueuePosition.after_q: the alerts after this position in queue order (NULL due times last)."""
    s, due, seen, pk = after.severity, after.sla_due_at, after.first_seen_at, after.pk
    same_due = "a.sla_due_at IS NULL" if due is None else f"a.sla_due_at = {sql.value(due)}"
    later = f"(a.first_seen_at > {sql.value(seen)} OR (a.first_seen_at = {sql.value(seen)} AND a.id > {sql.value(pk)}))"
    out = f"a.severity < {sql.value(s)} OR (a.severity = {sql.value(s)} AND {same_due} AND {later})"
    if due is not None:
        out += f" OR (a.severity = {sql.value(s)} AND (a.sla_due_at > {sql.value(due)} OR a.sla_due_at IS NULL))"
    return f"({out})"


@dataclass(frozen=True)
class CaseSight:
    """The reader's case scope (selectors.case_scope_q) as the ids it is made of."""

    user_id: int
    supervised: tuple[int, ...]  # tenants where they see every case
    granted_queues: tuple[int, ...]  # queues granted to them outside those
    member_of: tuple[int, ...]  # where a case shared with them counts


def _case_scope(sql: _Sql, sight: CaseSight) -> str:
    from desk.selectors import CASE_WORK_PERM, _grant_sql

    content_type = ContentType.objects.get_for_model(Case).pk  # cached by the process
    codename = CASE_WORK_PERM.split(".", 1)[1]
    supervised, granted = sql.among("c.tenant_id", sight.supervised), sql.among("c.queue_id", sight.granted_queues)
    values = (sight.user_id, content_type, codename, sight.user_id, content_type, codename)
    grant = _grant_sql().replace("%s", "{}").format(*(sql.value(v) for v in values))
    shared = f"(c.id IN ({grant}) AND {sql.among('c.tenant_id', sight.member_of)})"
    return f"({supervised} OR {granted} OR {shared})"


def customer_open_case_sql(sight: CaseSight, *, customer_column: str) -> tuple[str, list]:
    """A subquery for a statement the ORM writes (RawSQL): the open case of the customer in
    `customer_column` that the reader sees (selectors.case_scope_q), as "id:status", or NULL."""
    sql = _Sql()
    text = (
        f"(SELECT CAST(c.id AS TEXT) || ':' || c.status FROM {_CASES} c WHERE {_case_scope(sql, sight)}"  # noqa: S608 (table names from model metadata)
        f" AND c.customer_id = {customer_column} AND {sql.among('c.status', OPEN_CASE_STATUSES)} ORDER BY c.id LIMIT 1)"
    )
    return sql.positional(text)


# --- the page -----------------------------------------------------------------------------------------


class RowCustomer:
    """What a queue row shows of the customer: the client's account id and the masked contacts."""

    __slots__ = ("pk", "external_id", "email_masked", "phone_masked")

    def __init__(self, pk, external_id, email_masked, phone_masked):
        self.pk, self.external_id, self.email_masked, self.phone_masked = pk, external_id, email_masked, phone_masked


class RowAssignee:
    __slots__ = ("pk", "username")

    def __init__(self, pk, username):
        self.pk, self.username = pk, username


class RowAlert:
    """What a queue row shows of an alert (desk_tags.queue_rows), and its queue-order key. Read-only:
    the page shows it; anything that acts on the alert fetches it through the access functions."""

    __slots__ = (
        "pk", "tenant", "tenant_id", "customer_id", "customer", "type", "severity", "status", "reason",
        "first_seen_at", "sla_due_at", "assignee_id", "assignee", "open_case",
    )  # fmt: skip

    def __init__(
        self, *, pk, tenant, tenant_id, customer_id, customer, type, severity, status, reason,  # noqa: A002
        first_seen_at, sla_due_at, assignee_id, assignee, open_case,
    ):  # fmt: skip
        self.pk, self.tenant, self.tenant_id, self.customer_id, self.customer = (
            pk, tenant, tenant_id, customer_id, customer
        )  # fmt: skip
        self.type, self.severity, self.status, self.reason = type, severity, status, reason
        self.first_seen_at, self.sla_due_at = first_seen_at, sla_due_at
        self.assignee_id, self.assignee, self.open_case = assignee_id, assignee, open_case

    @property
    def id(self) -> int:
        return self.pk


def queue_rows_page(
    *, queue: Queue, siblings: Iterable[Queue], after=None, size: int, filters, cases: CaseSight
) -> tuple[list[RowAlert], object]:
    """One keyset page of the queue's active alerts in queue order, as queue_alerts_page reads it, with
    each row's open case among those the reader sees (`cases`), in one statement: the rows, and the
    position of the next page (None on the last)."""
    from desk.selectors import QueuePosition

    sql = _Sql()
    case_scope = _case_scope(sql, cases)
    open_statuses = sql.constants("c.status", OPEN_CASE_STATUSES)
    # The open case the alert is in, among those the reader sees: "id:how it was opened".
    open_case = (
        f"(SELECT CAST(c.id AS TEXT) || ':' || c.opened_via FROM {_CASES} c"  # noqa: S608 (as below)
        f" JOIN {_CASE_ALERTS} ca ON ca.case_id = c.id"
        f" WHERE {case_scope} AND ca.alert_id = a.id AND {open_statuses} ORDER BY c.id LIMIT 1)"
    )
    where = _placement(sql, queue, siblings)
    where.append(sql.constants("a.status", ACTIVE_STATUSES))
    where += _filters(sql, filters, queue.tenant_id)
    if after is not None:
        where.append(_after(sql, after))
    statement = (
        f"SELECT a.id, a.customer_id, a.type, a.severity, a.status, a.reason, a.first_seen_at, a.sla_due_at,"  # noqa: S608
        f" a.assignee_id, {open_case}, cu.external_id, cu.email_masked, cu.phone_masked, u.username"
        f" FROM {_ALERTS} a"
        f" LEFT OUTER JOIN {_CUSTOMERS} cu ON a.customer_id = cu.id"
        f" LEFT OUTER JOIN {_USERS} u ON a.assignee_id = u.id"
        f" WHERE {' AND '.join(where)}"
        " ORDER BY a.severity DESC, a.sla_due_at ASC NULLS LAST, a.first_seen_at ASC, a.id ASC"
        f" LIMIT {int(size) + 1}"
    )  # table names from model metadata; every value is a parameter
    with connection.cursor() as cursor:
        timestamps_in_c(cursor)
        cursor.execute(statement, sql.params)
        fetched = cursor.fetchall()
    more, fetched = len(fetched) > size, fetched[:size]
    # As the ORM gives them: SQLite's datetimes come back naive.
    seen_at = field_column(Alert._meta.get_field("first_seen_at"), [row[6] for row in fetched])
    due_at = field_column(Alert._meta.get_field("sla_due_at"), [row[7] for row in fetched])
    tenant = queue.tenant
    rows = []
    for n, (
        pk,
        customer_id,
        type_,
        severity,
        status,
        reason,
        seen,
        due,
        assignee_id,
        case,
        ext,
        email,
        phone,
        username,
    ) in enumerate(fetched):
        seen, due = seen_at[n], due_at[n]
        open_case = None
        if case is not None:
            case_id, _, opened_via = case.partition(":")
            open_case = Case(pk=int(case_id), opened_via=opened_via)
        rows.append(
            RowAlert(
                pk=pk,
                tenant=tenant,
                tenant_id=tenant.pk,
                customer_id=customer_id,
                customer=None if customer_id is None else RowCustomer(customer_id, ext, email, phone),
                type=type_,
                severity=severity,
                status=status,
                reason=reason,
                first_seen_at=seen,
                sla_due_at=due,
                assignee_id=assignee_id,
                assignee=None if assignee_id is None else RowAssignee(assignee_id, username),
                open_case=open_case,
            )  # fmt: skip
        )
    if more:
        last = rows[-1]
        return rows, QueuePosition(last.severity, last.sla_due_at, last.first_seen_at, last.pk)
    return rows, None


def queue_count_groups(*, tenant_ids: Sequence[int], now: datetime) -> list[tuple]:
    """The tenants' active alerts counted by (tenant, type, severity): (tenant id, type, severity,
    active, unassigned, breaching) a group, read from the queue-order index alone."""
    sql = _Sql()
    statement = (
        "SELECT a.tenant_id, a.type, a.severity, COUNT(*),"  # noqa: S608 (table names from model metadata)
        " SUM(CASE WHEN a.assignee_id IS NULL THEN 1 ELSE 0 END),"
        f" SUM(CASE WHEN a.sla_due_at < {sql.value(now)} THEN 1 ELSE 0 END)"
        f" FROM {_ALERTS} a WHERE {sql.among('a.tenant_id', tenant_ids)}"
        f" AND {sql.constants('a.status', ACTIVE_STATUSES)}"
        " GROUP BY a.tenant_id, a.type, a.severity"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, sql.params)
        return cursor.fetchall()

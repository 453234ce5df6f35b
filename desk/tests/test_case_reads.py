"""The case page's reads written in SQL (config.sql.ModelRead) give what the ORM gave: the same rows,
in the same order, every loaded field equal (the backend's and the field's converters applied),
the same fields deferred, and the related objects already there (no query to reach them)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import BooleanField, Count, ExpressionWrapper, Min, Q
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.models import Alert
from alerts.selectors import ENCRYPTED_CUSTOMER_FIELDS
from alerts.tests.factories import AlertFactory
from config.sql import ModelRead
from desk.models import ACTION_PENDING_STATES, AccountAction, ActionState, Case, CaseReveal, PlaybookCheck
from desk.selectors import (
    TIMELINE_KINDS,
    case_actions,
    case_alert_summary,
    case_alerts_for,
    case_get_for,
    case_playbook_checks,
    case_reveals_active,
    case_timeline_page,
    case_verifications,
)
from desk.services import case_claim, case_open, case_reveal
from desk.tests.factories import account_actions_make
from desk.tests.test_case_selectors import _grow
from desk.verification import verification_request

pytestmark = pytest.mark.django_db

RELATED = ("tenant", "customer", "queue", "assignee", "requested_by", "approved_by", "checked_by", "actor", "author",
           "raised_by", "alert")  # fmt: skip


def _state(obj, depth=0) -> dict:
    """What an instance holds: its class, loaded field values, deferred fields, and the related
    objects already cached on it (compared the same way)."""
    if obj is None:
        return {}
    deferred = obj.get_deferred_fields()
    values = {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields if f.attname not in deferred}
    related = {}
    for name in RELATED:
        field = next((f for f in obj._meta.concrete_fields if f.name == name), None)
        if field is not None and field.is_cached(obj) and depth == 0:
            related[name] = _state(field.get_cached_value(obj), depth + 1)
    return {"class": type(obj), "values": values, "deferred": deferred, "related": related}


def _same(ours, orm) -> None:
    ours, orm = [_state(o) for o in ours], [_state(o) for o in orm]
    for a, b in zip(ours, orm, strict=True):
        for key in a:
            assert a[key] == b[key], key


def test_model_read_is_select_related_with_only(case_a, agent, supervisor):
    account_actions_make(case_a, agent, ActionState.SENT, 2)
    approved = account_actions_make(case_a, agent, ActionState.PENDING_APPROVAL)[0]
    AccountAction.objects.filter(pk=approved.pk).update(approved_by=supervisor)
    read = ModelRead(AccountAction, fields=["state", "params", "requested_at"], related={"approved_by": ["username"]})
    ours = read.rows("t.case_id = %s", [case_a.pk], "ORDER BY t.id")
    orm = list(
        AccountAction.objects.filter(case=case_a)
        .select_related("approved_by")
        .only("state", "params", "requested_at", "approved_by__username")
        .order_by("id")
    )
    _same(ours, orm)
    assert [a.approved_by for a in ours].count(None) == 2  # a null key is cached as None: no query
    with CaptureQueriesContext(connection) as queries:
        assert [a.approved_by and a.approved_by.username for a in ours][-1] == supervisor.username
    assert len(queries) == 0
    assert read.by_ids([]) == []
    assert [a.pk for a in read.by_ids([orm[0].pk, orm[2].pk], "ORDER BY t.id DESC")] == [orm[2].pk, orm[0].pk]


@pytest.mark.parametrize("assigned", [False, True])
def test_case_get_for_reads_what_the_orm_read(case_a, agent, supervisor, assigned):
    if assigned:
        case_claim(actor=agent, case=case_a)
    orm = (
        Case.objects.select_related("tenant", "customer", "queue", "assignee")
        .defer(*(f"customer__{name}" for name in ENCRYPTED_CUSTOMER_FIELDS))
        .get(pk=case_a.pk)
    )
    ours = case_get_for(user=agent, case_id=str(case_a.pk))
    _same([ours], [orm])
    with CaptureQueriesContext(connection) as queries:
        assert (ours.tenant, ours.customer.email_masked, ours.queue.pk) == (orm.tenant, orm.customer.email_masked,
                                                                           orm.queue_id)  # fmt: skip
    assert len(queries) == 0


@pytest.mark.parametrize("case_id", ["0", "-1", "abc", "", None, "1" * 30, str(2**63)])
def test_case_get_for_answers_404_for_a_made_up_id(case_a, agent, case_id):
    with pytest.raises(Http404):
        case_get_for(user=agent, case_id=case_id)


def test_case_actions_as_the_orm_picked_them(case_a, agent, supervisor, tenant_a):
    other, _ = case_open(actor=agent, alert=AlertFactory(customer__tenant=tenant_a))
    account_actions_make(other, agent, ActionState.PENDING_APPROVAL, 3)  # another case's: never listed
    account_actions_make(case_a, agent, ActionState.PENDING_APPROVAL, 4, minutes_ago=60)
    account_actions_make(case_a, agent, ActionState.SENT, 6)
    account_actions_make(case_a, agent, ActionState.WAITING, 2)
    account_actions_make(case_a, agent, ActionState.CONFIRMED, 5)

    def orm(limit, pending):  # the ORM statement these replaced
        of_case = AccountAction.objects.filter(case=case_a).order_by("-id").values("id")
        waits = Q(state__in=ACTION_PENDING_STATES)
        return list(
            AccountAction.objects.filter(Q(pk__in=of_case.filter(waits)[:pending]) | Q(pk__in=of_case[:limit]))
            .select_related("requested_by", "approved_by")
            .annotate(waits=ExpressionWrapper(waits, output_field=BooleanField()))
            .order_by("-waits", "-id")
        )

    for limit, pending in ((10, 50), (3, 2), (0, 0), (20, 1), (1, 20)):
        _same(case_actions(case=case_a, limit=limit, pending=pending), orm(limit, pending))
    assert not case_actions(case=other, limit=0, pending=0)


def test_case_alerts_and_their_summary_as_the_orm_read_them(case_a, alert_a, agent):
    for severity in (1, 4, 2, 4):
        case_open(actor=agent, alert=AlertFactory(customer=case_a.customer, severity=severity))
    AlertFactory(customer=case_a.customer)  # the customer's, not on the case
    ordered = Alert.objects.filter(cases=case_a).select_related("tenant").order_by("-severity", "first_seen_at", "id")
    alerts, total = case_alerts_for(case=case_a, limit=3, summary=case_alert_summary(case=case_a))
    _same(alerts, list(ordered[:3]))
    assert total == 5
    summary = case_alert_summary(case=case_a)
    rows = Alert.objects.filter(cases=case_a).order_by().values("type").annotate(n=Count("id"), at=Min("first_seen_at"))
    assert summary.total == sum(r["n"] for r in rows) and summary.types == {r["type"] for r in rows}
    assert summary.first_seen_at == min(r["at"] for r in rows) and summary.first_seen_at.tzinfo is not None


def test_the_other_side_reads_as_the_orm_read_them(case_a, alert_a, agent, supervisor):
    _grow(case_a, alert_a, agent, supervisor, rounds=2)
    verification_request(actor=agent, case=case_a, method="otp", channel="sms")
    _same(
        case_verifications(case=case_a, limit=5),
        list(case_a.verifications.select_related("requested_by").order_by("-id")[:5]),
    )
    checks = PlaybookCheck.objects.filter(case=case_a).select_related("checked_by")
    _same(list(case_playbook_checks(case=case_a).values()), list(checks))
    case_reveal(actor=supervisor, case=case_a, field="phone", reason_code="other", reason_text="why")
    now = timezone.now()
    for at in (now, now + timedelta(days=1)):
        orm = CaseReveal.objects.filter(case=case_a, actor=supervisor, expires_at__gt=at).order_by("id")
        _same(list(case_reveals_active(case=case_a, user=supervisor, now=at).values()),
              list({r.field: r for r in orm}.values()))  # fmt: skip


def test_each_timeline_line_holds_what_the_orm_read(case_a, alert_a, agent, supervisor):
    from desk.selectors import _TIMELINE_READS

    _grow(case_a, alert_a, agent, supervisor, rounds=2)
    items, _ = case_timeline_page(case=case_a, size=10_000)
    assert {item.kind for item in items} == set(TIMELINE_KINDS)
    for item in items:
        read = _TIMELINE_READS[item.kind]
        model = read.model
        _, _, read_fields, _, read_related = read._parts
        fields = [f.name for f in read_fields]
        related = {fk.name: [f.name for f in other_fields] for (fk, _, other_fields, _) in read_related}
        only = fields + [f"{name}__{f}" for name, names in related.items() for f in names]
        rows = model.objects.select_related(*related) if related else model.objects  # (): every key
        orm = rows.only(*only).get(pk=item.pk)
        ours = _TIMELINE_READS[item.kind].by_ids([item.pk])[0]
        _same([ours], [orm])
        assert (orm.alert if item.kind == "alert" else orm) == item.obj

"""The staff queue API: GET /api/v1/queues/ and GET /api/v1/queues/{id}/alerts/ (need-to-know,
audited, keyset pages, a query budget that does not grow with the page)."""

from datetime import timedelta

import pytest
from django.db.models import F
from django.test import Client

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.models import Alert, AlertStatus, AlertType, Severity
from alerts.tests.factories import T0, AlertFactory, CustomerFactory
from audit.models import Action, AuditEvent
from desk.models import Queue
from desk.selectors import QueuePosition
from desk.services import queue_create, queue_grant

pytestmark = pytest.mark.django_db
LIST = "/api/v1/queues/"


def alerts_url(queue_id) -> str:
    return f"/api/v1/queues/{queue_id}/alerts/"


@pytest.fixture
def floor(tenant_a, tenant_b, agent):
    """Tenant A: default queue (granted to the agent) and a takeover queue (not granted); tenant B's default."""
    default_a = Queue.objects.get(tenant=tenant_a, is_default=True)
    takeover = queue_create(
        tenant=tenant_a, slug="takeover", name="Takeover", alert_types=[AlertType.ACCOUNT_TAKEOVER], min_severity=3
    )
    queue_grant(queue=default_a, user=agent)
    customer = CustomerFactory(tenant=tenant_a)
    AlertFactory(customer=customer, severity=Severity.LOW, first_seen_at=T0)
    AlertFactory(customer=customer, severity=Severity.CRITICAL, first_seen_at=T0 + timedelta(hours=2))
    AlertFactory(customer=customer, severity=Severity.CRITICAL, first_seen_at=T0 + timedelta(hours=1))
    AlertFactory(customer=customer, severity=Severity.HIGH, status=AlertStatus.ACKNOWLEDGED)
    AlertFactory(customer=customer, severity=Severity.HIGH, status=AlertStatus.RESOLVED)  # not active
    AlertFactory(customer=customer, type=AlertType.ACCOUNT_TAKEOVER, rule="takeover", severity=Severity.CRITICAL)
    AlertFactory(customer=CustomerFactory(tenant=tenant_b), severity=Severity.CRITICAL)
    return {"default_a": default_a, "takeover": takeover, "default_b": Queue.objects.get(tenant=tenant_b)}


def test_an_agent_lists_the_queues_granted_with_counts_and_the_view_is_recorded(otp_client, agent, floor):
    response = otp_client.get(LIST)
    assert response.status_code == 200
    assert response.json() == [
        {
            "id": floor["default_a"].pk,
            "tenant": "tenant-a",
            "slug": "default",
            "name": "Default",
            "counts": {"active": 4, "unassigned": 4, "breaching": 0},
        }
    ]
    record = AuditEvent.objects.get(actor=agent, action=Action.LIST, target_type="desk.queue")
    assert record.metadata["ids"] == [str(floor["default_a"].pk)]


def test_a_supervisor_lists_every_queue_of_the_tenant_and_a_bpo_admin_every_tenant(supervisor, admin_user, floor):
    body = verified_client(supervisor).get(LIST).json()
    assert {(q["tenant"], q["slug"]): q["counts"]["active"] for q in body} == {
        ("tenant-a", "default"): 4,
        ("tenant-a", "takeover"): 1,
    }
    assert {(q["tenant"], q["slug"]) for q in verified_client(admin_user).get(LIST).json()} == {
        ("tenant-a", "default"),
        ("tenant-a", "takeover"),
        ("tenant-b", "default"),
    }


def test_an_agent_without_grants_lists_nothing(tenant_b, floor):
    ungranted = make_staff("agent-no-queue", role=Role.AGENT, tenants=[tenant_b])
    assert verified_client(ungranted).get(LIST).json() == []


def test_a_queues_active_alerts_in_queue_order(otp_client, floor):
    response = otp_client.get(alerts_url(floor["default_a"].pk))
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["severity"], r["first_seen_at"][:16]) for r in results] == [
        (4, "2026-11-20T10:00"),
        (4, "2026-11-20T11:00"),
        (3, "2026-11-20T09:00"),
        (1, "2026-11-20T09:00"),
    ]
    assert {r["tenant"] for r in results} == {"tenant-a"} and response.json()["next"] is None
    assert all(r["type"] != "account_takeover" for r in results)  # the takeover queue takes that one


def test_cursor_pages_walk_the_whole_queue_once_in_order(otp_client, tenant_a, agent, floor):
    customer = CustomerFactory(tenant=tenant_a)
    for _ in range(7):  # ties on severity and time: the id breaks them
        AlertFactory(customer=customer, severity=Severity.MEDIUM, first_seen_at=T0)
    expected = list(
        Alert.objects.filter(tenant=tenant_a, status__in=["open", "acknowledged"])
        .exclude(type="account_takeover")
        .order_by("-severity", F("sla_due_at").asc(nulls_last=True), "first_seen_at", "id")
        .values_list("pk", flat=True)
    )
    seen, url = [], alerts_url(floor["default_a"].pk) + "?page_size=3"
    while url:
        body = otp_client.get(url).json()
        assert len(body["results"]) <= 3
        seen += [r["id"] for r in body["results"]]
        url = body["next"]
    assert seen == expected
    # Each page is recorded with the alerts it showed.
    records = AuditEvent.objects.filter(actor=agent, action=Action.LIST, target_type="alerts.alert")
    assert sorted(int(i) for r in records for i in r.metadata["ids"]) == sorted(expected)


def test_foreign_ungranted_and_missing_queues_answer_the_same_404(otp_client, floor):
    answers = [
        otp_client.get(alerts_url(queue_id))
        for queue_id in (floor["default_b"].pk, floor["takeover"].pk, 999999)  # other tenant, ungranted, missing
    ]
    assert {(a.status_code, a.content) for a in answers} == {(404, b'{"detail":"No such queue."}')}


def test_a_supervisor_of_another_tenant_gets_404(tenant_b, floor):
    other = make_staff("sup-b", role=Role.SUPERVISOR, tenants=[tenant_b])
    assert verified_client(other).get(alerts_url(floor["default_a"].pk)).status_code == 404


def test_a_revoked_grant_or_a_removed_membership_answers_404(otp_client, agent, tenant_a, floor):
    from accounts.services import membership_remove

    url = alerts_url(floor["default_a"].pk)
    assert otp_client.get(url).status_code == 200
    membership_remove(user=agent, tenant=tenant_a)
    assert otp_client.get(url).status_code == 404
    assert otp_client.get(LIST).json() == []


@pytest.mark.parametrize("path", [LIST, alerts_url(1)])
def test_password_only_and_anonymous_sessions_are_refused(password_only_client, floor, path):
    path = path.replace("/1/", f"/{floor['default_a'].pk}/")
    response = password_only_client.get(path)
    assert response.status_code == 403
    assert response.json() == {"detail": "Two-factor authentication is required."}
    response = Client().get(path)
    assert (response.status_code, response.json()) == (403, {"detail": "Authentication credentials were not provided."})


@pytest.mark.parametrize(
    "cursor",
    [
        "abc",
        "!!!",
        "x" * 300,
        QueuePosition(9, None, T0, 1).encode(),
        QueuePosition(4, T0, T0, 0).encode(),
        QueuePosition(4, None, T0, 2**63).encode(),
        QueuePosition(4, None, T0.replace(tzinfo=None), 1).encode(),
        QueuePosition(4, T0.replace(tzinfo=None), T0, 1).encode(),
        "WzQsbnVsbCwiMjAyNi0xMS0yMFQwOTowMDowMCswMDowMCIsIjEiXQ",  # [4,null,"2026-11-20T09:00:00+00:00","1"]
        "WzQsIjIwMjYtMTEtMjBUMDk6MDA6MDArMDA6MDAiLDFd",  # [4,"2026-11-20T09:00:00+00:00",1]: the old shape
        "WzQsNSw2XQ",  # [4,5,6]
        "e30",  # {}
    ],
)
def test_a_malformed_cursor_is_a_404_never_a_500(otp_client, floor, cursor):
    response = otp_client.get(alerts_url(floor["default_a"].pk), {"cursor": cursor})
    assert response.status_code == 404 and response.json() == {"detail": "Invalid cursor"}


@pytest.mark.parametrize("queue_id", ["abc", "-1", "1.5", "99999999999999999999999"])
def test_a_malformed_queue_id_is_a_404(otp_client, floor, queue_id):
    assert otp_client.get(f"/api/v1/queues/{queue_id}/alerts/").status_code == 404


def test_unsafe_methods_are_refused(otp_client, floor):
    assert otp_client.post(LIST, {}, content_type="application/json").status_code == 405
    assert otp_client.delete(alerts_url(floor["default_a"].pk)).status_code == 405


def test_query_budget_does_not_grow_with_the_page_or_the_data(
    otp_client, agent, tenant_a, floor, django_assert_max_num_queries
):
    for alert_type in ("recovery", "password", "third_party"):  # more queues take no more queries
        queue_grant(
            queue=queue_create(tenant=tenant_a, slug=alert_type, name="x", alert_types=[alert_type]), user=agent
        )
    url = alerts_url(floor["default_a"].pk)
    otp_client.get(url)
    otp_client.get(LIST)
    with django_assert_max_num_queries(10) as small:
        assert len(otp_client.get(url).json()["results"]) <= 4
    with django_assert_max_num_queries(10) as small_list:
        otp_client.get(LIST)
    AlertFactory.create_batch(40, customer=CustomerFactory(tenant=tenant_a), severity=Severity.LOW)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert len(otp_client.get(url + "?page_size=40").json()["results"]) == 40
    with django_assert_max_num_queries(len(small_list.captured_queries)):
        assert len(otp_client.get(LIST).json()) == 4


def test_both_endpoints_are_in_the_schema(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    assert {"/api/v1/queues/", "/api/v1/queues/{queue_id}/alerts/"} <= set(paths)


def test_queue_order_is_severity_then_sla_due_time_then_age_and_cursors_walk_it(otp_client, tenant_a, floor):
    """The contract's order; an alert without a due time comes last of its severity, and a cursor
    from any position (a due time or none) continues exactly after it."""
    Alert.objects.filter(tenant=tenant_a).delete()
    customer = CustomerFactory(tenant=tenant_a)
    made = {
        name: AlertFactory(customer=customer, severity=severity, first_seen_at=T0 + timedelta(minutes=seen),
                           sla_due_at=None if due is None else T0 + timedelta(minutes=due))
        for name, severity, due, seen in [
            ("high-due-late-old", Severity.HIGH, 90, 0),
            ("high-due-soon-new", Severity.HIGH, 30, 50),
            ("high-no-due", Severity.HIGH, None, -100),
            ("high-due-soon-old", Severity.HIGH, 30, 10),
            ("critical-due-late", Severity.CRITICAL, 500, 0),
            ("low-due-first", Severity.LOW, 1, 0),
            ("high-no-due-new", Severity.HIGH, None, 0),
        ]
    }  # fmt: skip
    expected = [
        made[n].pk
        for n in (
            "critical-due-late", "high-due-soon-old", "high-due-soon-new", "high-due-late-old",
            "high-no-due", "high-no-due-new", "low-due-first",
        )
    ]  # fmt: skip
    assert [r["id"] for r in otp_client.get(alerts_url(floor["default_a"].pk)).json()["results"]] == expected
    for size in (1, 2, 3):
        seen, url = [], alerts_url(floor["default_a"].pk) + f"?page_size={size}"
        while url:
            body = otp_client.get(url).json()
            seen += [r["id"] for r in body["results"]]
            url = body["next"]
        assert seen == expected

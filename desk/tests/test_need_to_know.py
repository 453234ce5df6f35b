"""Need-to-know: an agent sees and works only the alerts of the queues granted to them, on every
surface that reads alerts (the staff API, the alert page and its steps, the desk's count); an
alert in an ungranted queue of their own tenant answers exactly as another tenant's does."""

import json

import pytest

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.models import AlertStatus, AlertType, Severity
from alerts.tests.factories import AlertFactory, CustomerFactory
from desk.models import Queue
from desk.services import queue_create, queue_grant, queue_revoke

pytestmark = pytest.mark.django_db


@pytest.fixture
def floor(tenant_a, tenant_b):
    """Tenant A with a takeover queue beside its default one, an alert in each, and another tenant's."""
    takeover = queue_create(tenant=tenant_a, slug="takeover", name="Takeover", alert_types=[AlertType.ACCOUNT_TAKEOVER])
    routine = AlertFactory(customer=CustomerFactory(tenant=tenant_a), severity=Severity.MEDIUM)
    critical = AlertFactory(
        customer=CustomerFactory(tenant=tenant_a), type=AlertType.ACCOUNT_TAKEOVER, rule="account_takeover",
        severity=Severity.CRITICAL,
    )  # fmt: skip
    foreign = AlertFactory(customer=CustomerFactory(tenant=tenant_b))
    return {"takeover": takeover, "routine": routine, "critical": critical, "foreign": foreign}


@pytest.fixture
def specialist(tenant_a, floor):
    """An agent of tenant A granted the takeover queue only."""
    user = make_staff("specialist", role=Role.AGENT, tenants=[tenant_a])
    queue_grant(queue=floor["takeover"], user=user)
    return user


def _surfaces(client, alert):
    """Every way an agent reads or works one alert: (what, status code)."""
    return [
        ("api detail", client.get(f"/api/v1/alerts/{alert.pk}/").status_code),
        ("api acknowledge", client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {}, "application/json").status_code),
        ("api claim", client.post(f"/api/v1/alerts/{alert.pk}/claim/", {}, "application/json").status_code),
        ("page", client.get(f"/alerts/{alert.pk}/").status_code),
        ("page acknowledge", client.post(f"/alerts/{alert.pk}/acknowledge/").status_code),
    ]


def test_an_alert_in_an_ungranted_queue_is_as_missing_as_another_tenants(specialist, floor):
    client = verified_client(specialist)
    for name in ("routine", "foreign"):
        assert {code for _, code in _surfaces(client, floor[name])} == {404}, name
    floor["routine"].refresh_from_db()
    assert floor["routine"].status == AlertStatus.OPEN and floor["routine"].assignee is None
    missing = client.get("/api/v1/alerts/999999/")
    assert client.get(f"/api/v1/alerts/{floor['routine'].pk}/").json() == missing.json()


def test_the_agent_lists_and_works_its_granted_queue(specialist, floor):
    client = verified_client(specialist)
    assert [a["id"] for a in client.get("/api/v1/alerts/").json()["results"]] == [floor["critical"].pk]
    assert client.get(f"/alerts/{floor['critical'].pk}/").status_code == 200
    response = client.post(f"/api/v1/alerts/{floor['critical'].pk}/claim/", {}, "application/json")
    assert (response.status_code, response.json()["assignee"]) == (200, "specialist")


def test_revoking_the_grant_hides_the_queue_at_once(specialist, floor):
    queue_revoke(queue=floor["takeover"], user=specialist)
    client = verified_client(specialist)
    assert client.get("/api/v1/alerts/").json()["results"] == []
    assert client.get(f"/alerts/{floor['critical'].pk}/").status_code == 404


def test_supervisors_see_every_queue_of_their_tenant_and_nothing_else(supervisor, floor):
    client = verified_client(supervisor)
    listed = {a["id"] for a in client.get("/api/v1/alerts/").json()["results"]}
    assert listed == {floor["routine"].pk, floor["critical"].pk}
    assert client.get(f"/alerts/{floor['foreign'].pk}/").status_code == 404


def test_an_agent_with_a_membership_and_no_grant_sees_no_alert(tenant_a, floor):
    idle = make_staff("idle", role=Role.AGENT, tenants=[tenant_a])
    client = verified_client(idle)
    assert client.get("/api/v1/alerts/").json()["results"] == []
    assert {code for _, code in _surfaces(client, floor["critical"])} == {404}


def test_the_default_queue_takes_what_no_other_queue_takes(agent, floor):
    client = verified_client(agent)  # the shared agent holds tenant A's default queue only
    assert Queue.objects.get(tenant=floor["routine"].tenant, is_default=True).slug == "default"
    assert [a["id"] for a in client.get("/api/v1/alerts/").json()["results"]] == [floor["routine"].pk]


# --- cases: every URL that takes a case (or concern) id answers a foreign id as a missing one ----------


def _case_urls():
    """Every pattern of the URLconf that takes a case id, a concern id, or opens a case from an alert."""
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(resolver, prefix=""):
        for entry in resolver.url_patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                yield prefix + str(entry.pattern)

    return sorted(
        p
        for p in walk(get_resolver())
        if "<int:case_id>" in p or "<int:concern_id>" in p or p.endswith("<int:alert_id>/case/")
    )


def _answers(client, pattern, **ids):
    url = "/" + pattern
    for name, value in ids.items():
        url = url.replace(f"<int:{name}>", str(value))
    response = client.get(url)
    if response.status_code == 405:  # a step: POST it, with a body that would otherwise do something
        body = {
            "body": "x", "status": "open", "kind": "phishing", "username": "agent", "field": "email", "reason": "x",
            "reason_code": "other", "alert_type": "two_factor", "step": "caller_verified",
        }  # fmt: skip
        if "/api/" in url:
            response = client.post(url, json.dumps(body), content_type="application/json")
        else:
            response = client.post(url, body)
    return response.status_code, response.content if "/api/" in url else b""


def test_the_case_walk_sees_every_case_url():
    urls = _case_urls()
    assert "cases/<int:case_id>/" in urls and "api/v1/cases/<int:case_id>/reveal/" in urls
    assert "alerts/<int:alert_id>/case/" in urls and "api/v1/alerts/<int:alert_id>/case/" in urls
    assert len(urls) >= 22, urls  # the API steps, the page steps, the alert and concern ones


def test_every_case_url_answers_a_foreign_or_ungranted_id_as_a_missing_one(specialist, floor, agent, agent_b):
    from desk.models import CaseNote, CaseReveal, SecurityConcern
    from desk.services import case_open, concern_raise

    routine, _ = case_open(actor=agent, alert=floor["routine"])  # tenant A's default queue
    foreign, _ = case_open(actor=agent_b, alert=floor["foreign"])  # tenant B
    concern = concern_raise(actor=agent, case=routine, kind="phishing", note="")
    foreign_concern = concern_raise(actor=agent_b, case=foreign, kind="phishing", note="")
    before = (CaseNote.objects.count(), CaseReveal.objects.count(), SecurityConcern.objects.count())
    client = verified_client(specialist)  # works the takeover queue only
    for pattern in _case_urls():
        missing = _answers(client, pattern, case_id=999999, concern_id=999999, alert_id=999999)
        assert missing[0] == 404, (pattern, missing)
        for ids in (
            {"case_id": routine.pk, "concern_id": concern.pk, "alert_id": floor["routine"].pk},  # ungranted queue
            {"case_id": foreign.pk, "concern_id": foreign_concern.pk, "alert_id": floor["foreign"].pk},  # tenant B
        ):
            assert _answers(client, pattern, **ids) == missing, (pattern, ids)
    assert (CaseNote.objects.count(), CaseReveal.objects.count(), SecurityConcern.objects.count()) == before

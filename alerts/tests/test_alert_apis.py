"""The staff alert API (need-to-know, audited), the OpenAPI schema and the offline docs."""

import pytest
from django.test import Client

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.models import Alert, AlertType
from alerts.tests.factories import AccountEventFactory, AlertFactory, CustomerFactory
from audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db
LIST = "/api/v1/alerts/"


@pytest.fixture
def raised(tenant_a, tenant_b):
    AlertFactory(customer=CustomerFactory(tenant=tenant_a, external_id="alice"))
    bob = CustomerFactory(tenant=tenant_a, external_id="bob")
    AlertFactory(
        customer=bob,
        type=AlertType.THIRD_PARTY,
        rule="third_party",
        evidence=[AccountEventFactory(customer=bob, type="third_party.authorized", context={"app_name": "Tool"})],
    )
    AlertFactory(customer=CustomerFactory(tenant=tenant_b, external_id="zed"))
    return {a.tenant_id: a for a in Alert.objects.all()}


def test_staff_list_their_tenants_alerts_masked_and_the_view_is_recorded(otp_client, agent, raised, tenant_a):
    from alerts.models import Customer

    Customer.objects.filter(external_id="alice").update(email="alice.secret@example.com")
    response = otp_client.get(LIST)
    assert response.status_code == 200
    results = response.json()["results"]
    assert {r["tenant"] for r in results} == {"tenant-a"} and len(results) == 2
    assert "alice.secret" not in response.content.decode()
    record = AuditEvent.objects.get(actor=agent, action=Action.LIST, target_type="alerts.alert")
    assert set(record.metadata["ids"]) == {str(r["id"]) for r in results} and record.tenant_id == tenant_a.pk


def test_filters_and_their_refusals(otp_client, raised):
    assert [r["type"] for r in otp_client.get(LIST, {"type": "third_party"}).json()["results"]] == ["third_party"]
    assert otp_client.get(LIST, {"min_severity": 4}).json()["results"] == []
    for bad in ({"status": "exploded"}, {"min_severity": "9"}, {"type": "nope"}):
        response = otp_client.get(LIST, bad)
        assert response.status_code == 400, bad


def test_detail_with_evidence_and_another_tenants_alert_is_404(otp_client, raised, tenant_a, tenant_b):
    mine = raised[tenant_a.pk]
    body = otp_client.get(f"{LIST}{mine.pk}/").json()
    assert body["id"] == mine.pk and body["evidence"] and body["evidence"][0]["type"]
    assert otp_client.get(f"{LIST}{raised[tenant_b.pk].pk}/").status_code == 404
    assert otp_client.get(f"{LIST}999999/").status_code == 404


def test_bpo_admin_sees_every_tenant(admin_user, raised):
    results = verified_client(admin_user).get(LIST).json()["results"]
    assert {r["tenant"] for r in results} == {"tenant-a", "tenant-b"}


def test_a_supervisor_in_another_tenant_sees_nothing_of_this_one(tenant_b, raised):
    other = make_staff("sup-b", role=Role.SUPERVISOR, tenants=[tenant_b])
    assert {r["tenant"] for r in verified_client(other).get(LIST).json()["results"]} == {"tenant-b"}


def test_password_only_and_anonymous_sessions_get_no_alerts(password_only_client, raised):
    for client in (password_only_client, Client()):
        response = client.get(LIST)
        assert response.status_code == 403 and "results" not in response.content.decode()


def test_list_query_budget_does_not_grow_with_the_page(otp_client, tenant_a, django_assert_max_num_queries):
    AlertFactory.create_batch(30, customer__tenant=tenant_a)
    otp_client.get(LIST)
    with django_assert_max_num_queries(14):
        assert len(otp_client.get(LIST).json()["results"]) == 30


def test_schema_and_docs_are_public_and_offline(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/events/", "/api/v1/alerts/", "/api/v1/alerts/{alert_id}/"} <= set(paths)
    assert set(paths["/api/v1/events/"]["post"]["responses"]) == {"202", "400", "401", "403", "413", "415", "429"}
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "cdn" not in html.lower() and "/static/drf_spectacular_sidecar/" in html
    assert "<script>" not in html  # the page keeps the strict CSP


def test_filtering_by_another_tenants_slug_shows_nothing(otp_client, raised, tenant_b):
    response = otp_client.get(LIST, {"tenant": tenant_b.slug})
    assert response.status_code == 200 and response.json()["results"] == []


def test_a_deactivated_tenants_alerts_disappear_for_its_staff(otp_client, raised, tenant_a):
    from accounts.services import tenant_set_active

    tenant_set_active(tenant=tenant_a, is_active=False)
    assert otp_client.get(LIST).json()["results"] == []
    assert otp_client.get(f"{LIST}{raised[tenant_a.pk].pk}/").status_code == 404

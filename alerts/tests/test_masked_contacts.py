"""Masked contacts are kept beside the encrypted ones, written wherever contacts are written, so that
a list of alerts shows them without decrypting anything; and the alert list's query count does not
depend on the page."""

import importlib
from datetime import timedelta
from unittest import mock

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from accounts.testing import make_staff
from alerts.models import Alert, Customer
from alerts.services import alert_acknowledge, alert_claim, customers_upsert
from alerts.tests.factories import T0, AlertFactory, CustomerFactory

pytestmark = pytest.mark.django_db
LIST = "/api/v1/alerts/"


def _no_decrypting(token):
    raise AssertionError("decrypted personal data to show a list")


class TestWritten:
    def test_created_and_updated_customers_keep_their_masked_contacts(self, tenant_a):
        account = {"external_id": "cust-1", "email": "jane.doe@example.com", "phone": "+14155550100"}
        (pk,) = customers_upsert(tenant=tenant_a, accounts=[account]).values()
        assert Customer.objects.values_list("email_masked", "phone_masked").get(pk=pk) == ("j***@e***", "+***00")
        customers_upsert(tenant=tenant_a, accounts=[{**account, "email": "m.smith@other.org", "phone": "+4930123499"}])
        assert Customer.objects.values_list("email_masked", "phone_masked").get(pk=pk) == ("m***@o***", "+***99")
        customers_upsert(tenant=tenant_a, accounts=[{"external_id": "cust-1", "email": ""}])  # an address removed
        assert Customer.objects.values_list("email_masked", "phone_masked").get(pk=pk) == ("", "+***99")

    def test_the_migration_fills_them_for_customers_stored_before(self, tenant_a):
        customer = CustomerFactory(tenant=tenant_a, email="old.timer@example.com", phone="+14155550177")
        bare = CustomerFactory(tenant=tenant_a)
        Customer.objects.filter(pk=customer.pk).update(email_masked="", phone_masked="")
        migration = importlib.import_module("alerts.migrations.0010_fill_masked_contacts_and_sla")
        migration.fill_masked(apps, None)
        assert Customer.objects.values_list("email_masked", "phone_masked").get(pk=customer.pk) == (
            "o***@e***",
            "+***77",
        )
        assert Customer.objects.values_list("email_masked", "phone_masked").get(pk=bare.pk) == ("", "")

    def test_the_migration_times_active_alerts_from_their_creation(self, tenant_a, agent):
        open_, acknowledged, closed = (AlertFactory(customer__tenant=tenant_a, severity=4) for _ in range(3))
        alert_acknowledge(alert=acknowledged, actor=agent)
        Alert.objects.filter(pk=closed.pk).update(status="resolved")
        Alert.objects.update(first_response_at=None, first_response_due_at=None, resolution_due_at=None)
        importlib.import_module("alerts.migrations.0010_fill_masked_contacts_and_sla").fill_sla(apps, None)
        due = {a.pk: a for a in Alert.objects.all()}
        assert due[open_.pk].sla_due_at == T0 + timedelta(minutes=15)
        assert due[acknowledged.pk].sla_due_at == T0 + timedelta(minutes=240)
        assert due[acknowledged.pk].first_response_at == due[acknowledged.pk].acknowledged_at
        assert due[closed.pk].sla_due_at is None and due[closed.pk].first_response_due_at is None


def _page(tenant, n, staff):
    for i in range(n):
        customer = CustomerFactory(tenant=tenant, email=f"person{i}@example.com", phone=f"+1415555{i:04d}")
        Customer.objects.filter(pk=customer.pk).update(email_masked=f"p***@e*** {i}", phone_masked="+***00")
        alert = AlertFactory(customer=customer)
        alert_claim(alert=alert, actor=staff[i % len(staff)])  # assignees differ: no per-row user query


class TestRead:
    def test_a_page_of_alerts_and_an_alert_decrypt_nothing(self, otp_client, tenant_a, agent):
        _page(tenant_a, 5, [agent])
        with mock.patch("alerts.crypto.decrypt", side_effect=_no_decrypting):
            response = otp_client.get(LIST)
            assert response.status_code == 200
            first = response.json()["results"][0]
            detail = otp_client.get(f"{LIST}{first['id']}/")
        assert detail.status_code == 200
        assert first["customer"]["email"].startswith("p***@e***") and first["customer"]["phone"] == "+***00"
        assert first["customer"]["external_id"].startswith("account-") and first["assignee"] == "agent"
        assert "person" not in response.content.decode() + detail.content.decode()

    def test_the_list_costs_the_same_queries_for_3_alerts_or_40(self, otp_client, tenant_a, agent, supervisor):
        staff = [agent, supervisor] + [make_staff(f"agent-{n}", role=Role.AGENT, tenants=[tenant_a]) for n in range(3)]
        _page(tenant_a, 3, staff)
        otp_client.get(LIST)  # warm the session and the permission caches
        with CaptureQueriesContext(connection) as small:
            assert len(otp_client.get(LIST).json()["results"]) == 3
        _page(tenant_a, 37, staff)
        with CaptureQueriesContext(connection) as large:
            assert len(otp_client.get(LIST).json()["results"]) == 40
        assert len(large) == len(small)

    def test_the_list_stays_within_its_query_budget(self, otp_client, tenant_a, agent, django_assert_max_num_queries):
        _page(tenant_a, 30, [agent])
        otp_client.get(LIST)
        with django_assert_max_num_queries(14):
            assert len(otp_client.get(LIST).json()["results"]) == 30

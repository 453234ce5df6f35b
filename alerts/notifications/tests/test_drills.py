"""Delivery tests (seed best practice 7): fired by a tenant admin or on schedule, timed per
channel; and the tenant's notification settings."""

import io
import json
from datetime import time, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.test import Client, TestCase
from django.utils import timezone

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.models import Customer, DeliveryDrill, Notification, NotificationSettings, OutboxMessage
from alerts.notifications import services
from alerts.notifications.models import Purpose, State
from alerts.notifications.selectors import delivery_drill_list_for, delivery_drill_results
from alerts.notifications.tests.helpers import account, feed
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def test_customer(tenant_a):
    feed(tenant_a, "login.succeeded", account_=account("drill-target", channels={"push": True}), device_id="d")
    customer = Customer.objects.get(external_id="drill-target")
    services.notification_settings_update(tenant=tenant_a, drill_customer=customer)
    return customer


def run_drill(**kwargs):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return services.delivery_drill_start(**kwargs)


class TestDrill:
    def test_a_tenant_admin_fires_a_test_on_every_channel_on_file_and_sees_the_timings(
        self, tenant_a, tenant_admin, test_customer
    ):
        drill = run_drill(tenant=tenant_a, actor=tenant_admin)
        results = delivery_drill_results(drill=DeliveryDrill.objects.get(pk=drill.pk))
        assert [r["channel"] for r in results] == ["push", "sms", "email", "voice"]
        assert {r["state"] for r in results} == {State.DELIVERED}
        assert all(0 <= r["delivered_ms"] < 60_000 and r["handed_ms"] <= r["delivered_ms"] for r in results)
        rows = Notification.objects.filter(drill=drill)
        assert {(r.purpose, r.alert_id, r.customer_id) for r in rows} == {(Purpose.TEST, None, test_customer.pk)}
        assert OutboxMessage.objects.filter(notification__drill=drill).count() == 4
        assert "test" in OutboxMessage.objects.filter(notification__drill=drill).first().body.lower()
        assert AuditEvent.objects.filter(actor=tenant_admin, target_type="alerts.deliverydrill").exists()

    def test_agents_and_supervisors_may_not_fire_one(self, tenant_a, agent, supervisor, test_customer):
        for user in (agent, supervisor):
            with pytest.raises(PermissionDenied):
                services.delivery_drill_start(tenant=tenant_a, actor=user)
        assert not DeliveryDrill.objects.exists()

    def test_without_a_test_customer_there_is_no_drill(self, tenant_a, tenant_admin):
        with pytest.raises(ValidationError):
            services.delivery_drill_start(tenant=tenant_a, actor=tenant_admin)

    def test_another_tenants_customer_cannot_be_the_test_customer(self, tenant_a, tenant_b, test_customer):
        with pytest.raises(ValidationError):
            services.notification_settings_update(tenant=tenant_b, drill_customer=test_customer)
        with pytest.raises(ValidationError):
            services.delivery_drill_start(tenant=tenant_b, customer=test_customer)

    def test_scheduled_drills_run_when_due(self, tenant_a, test_customer):
        services.notification_settings_update(tenant=tenant_a, drill_every_hours=6)
        assert services.delivery_drills_due_run() == 1
        assert services.delivery_drills_due_run() == 0  # not due again yet
        assert services.delivery_drills_due_run(now=timezone.now() + timedelta(hours=7)) == 1
        assert set(DeliveryDrill.objects.values_list("started_by", flat=True)) == {None}


class TestDrillPages:
    def test_supervisors_see_the_record_and_admins_run_one(self, tenant_a, supervisor, tenant_admin, test_customer):
        admin_client = verified_client(tenant_admin)
        with TestCase.captureOnCommitCallbacks(execute=True):
            assert admin_client.post("/drills/run/").status_code == 302
        page = verified_client(supervisor).get("/drills/")
        assert page.status_code == 200
        text = page.content.decode()
        assert "push: delivered after" in text and "Run a delivery test" not in text
        assert "Run a delivery test" in admin_client.get("/drills/").content.decode()

    def test_refusals(self, tenant_a, tenant_b, agent, supervisor, password_only_client, test_customer):
        assert verified_client(agent).get("/drills/").status_code == 404
        assert verified_client(agent).post("/drills/run/").status_code == 404
        assert verified_client(supervisor).post("/drills/run/").status_code == 403
        assert password_only_client.get("/drills/").status_code in (302, 403)
        assert Client().post("/drills/run/").status_code == 302  # to the login page
        assert not DeliveryDrill.objects.exists()

    def test_another_tenants_drills_are_not_listed(self, tenant_a, tenant_b, test_customer):
        run_drill(tenant=tenant_a)
        other = make_staff("sup-b", role=Role.SUPERVISOR, tenants=[tenant_b])
        assert list(delivery_drill_list_for(user=other)) == []
        assert "drill-target" not in verified_client(other).get("/drills/").content.decode()


class TestDrillCommand:
    def test_set_the_test_customer_fire_and_print_per_channel(self, tenant_a, test_customer):
        out = io.StringIO()
        call_command("delivery_drill", "tenant-a", "--set-customer", "drill-target", "--every-hours", "24", stdout=out)
        assert NotificationSettings.objects.get(tenant=tenant_a).drill_every_hours == 24
        out = io.StringIO()
        with TestCase.captureOnCommitCallbacks(execute=True):
            call_command("delivery_drill", "tenant-a", "--json", "--wait", "0", stdout=out)
        (report,) = json.loads(out.getvalue())
        assert [r["channel"] for r in report["results"]] == ["push", "sms", "email", "voice"]
        out = io.StringIO()
        call_command("delivery_drill", "tenant-a", "--history", "5", stdout=out)
        assert "sms    delivered  delivered after" in out.getvalue()


class TestSettings:
    def test_settings_are_checked_and_audited(self, tenant_a, tenant_admin):
        services.notification_settings_update(
            tenant=tenant_a,
            actor=tenant_admin,
            critical=["type:password", "event:mfa.disabled"],
            quiet_start=time(22),
        )
        row = NotificationSettings.objects.get(tenant=tenant_a)
        assert row.critical == ["type:password", "event:mfa.disabled"]
        assert AuditEvent.objects.filter(target_type="alerts.notificationsettings", actor=tenant_admin).exists()
        for bad in (
            {"critical": ["type:nope"]}, {"critical": "type:login"}, {"time_zone": "Asia/Tokyo"},
            {"channel_order": ["pigeon"]}, {"answer_link_days": -1}, {"push_webhook_secret": "x"},
        ):  # fmt: skip
            with pytest.raises(ValidationError):
                services.notification_settings_update(tenant=tenant_a, **bad)
        # The time zone is the message settings' (one source of truth), not a notification setting.
        assert NotificationSettings.objects.get(tenant=tenant_a).quiet_start == time(22)

    def test_the_push_secret_is_shown_once_and_stored_encrypted(self, tenant_a):
        secret = services.notification_push_secret_rotate(tenant=tenant_a)
        assert NotificationSettings.objects.get(tenant=tenant_a).push_webhook_secret == secret
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT push_webhook_secret FROM alerts_notificationsettings")
            assert secret not in cursor.fetchone()[0]

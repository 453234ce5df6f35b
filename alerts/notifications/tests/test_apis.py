"""GET /api/v1/alerts/{id}/notifications/, `outbox_show` and the desk's outbox page, with their
refusals."""

import io
import json

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.models import Alert, Notification
from alerts.notifications import services
from alerts.notifications.tests.helpers import account, feed
from audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db


def url(alert_id) -> str:
    return f"/api/v1/alerts/{alert_id}/notifications/"


@pytest.fixture
def alert_a(tenant_a):
    feed(tenant_a, "mfa.disabled", account_=account(channels={"email": True}))
    services.notifications_send(notification_ids=list(Notification.objects.values_list("pk", flat=True)))
    return Alert.objects.get(tenant=tenant_a)


@pytest.fixture
def alert_b(tenant_b):
    feed(tenant_b, "mfa.disabled", account_=account("bob", channels={"email": True}))
    return Alert.objects.get(tenant=tenant_b)


class TestAlertNotificationsApi:
    def test_an_alerts_notifications_without_addresses_or_content(self, otp_client, agent, alert_a):
        response = otp_client.get(url(alert_a.pk))
        assert response.status_code == 200
        body = response.json()
        assert [n["channel"] for n in body] == ["sms", "email", "voice"]  # critical: every channel on file
        assert {tuple(sorted(n)) for n in body} == {("channel", "created_at", "id", "purpose", "sent_at", "state")}
        assert {(n["state"], n["purpose"]) for n in body} == {("delivered", "alert")}
        assert all(n["sent_at"] for n in body)
        text = response.content.decode()
        assert "jane" not in text and "+1415" not in text and "Was this you" not in text
        assert AuditEvent.objects.filter(actor=agent, action=Action.VIEW, target_id=str(alert_a.pk)).exists()

    def test_a_bounce_is_told_as_failed_the_contracts_word(self, otp_client, alert_a):
        from alerts.models import Notification
        from alerts.notifications.models import State

        Notification.objects.filter(alert=alert_a, channel="email").update(state=State.BOUNCED)
        states = {n["channel"]: n["state"] for n in otp_client.get(url(alert_a.pk)).json()}
        assert states == {"sms": "delivered", "email": "failed", "voice": "delivered"}

    def test_another_tenants_alert_is_404(self, otp_client, alert_a, alert_b):
        assert otp_client.get(url(alert_b.pk)).status_code == 404
        assert otp_client.get(url(10**6)).status_code == 404

    def test_an_agent_without_the_alerts_queue_gets_404(self, tenant_a, alert_a):
        ungranted = make_staff("agent-nogrant", role=Role.AGENT, tenants=[tenant_a], default_queue=False)
        assert verified_client(ungranted).get(url(alert_a.pk)).status_code == 404

    def test_a_supervisor_and_a_bpo_admin_see_it(self, supervisor, admin_user, alert_a):
        for user in (supervisor, admin_user):
            assert verified_client(user).get(url(alert_a.pk)).status_code == 200

    def test_password_only_and_anonymous_sessions_are_refused(self, password_only_client, alert_a):
        for client in (password_only_client, Client()):
            response = client.get(url(alert_a.pk))
            assert response.status_code == 403 and "channel" not in response.content.decode()

    @pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "99999999999999999999999", "0"])
    def test_malformed_ids_are_4xx(self, otp_client, alert_a, bad):
        assert otp_client.get(f"/api/v1/alerts/{bad}/notifications/").status_code == 404

    def test_only_get(self, otp_client, alert_a):
        before = list(Notification.objects.values_list("pk", "state"))
        assert otp_client.post(url(alert_a.pk)).status_code in (403, 405)
        assert otp_client.delete(url(alert_a.pk)).status_code in (403, 405)
        assert list(Notification.objects.values_list("pk", "state")) == before

    def test_query_budget_does_not_grow_with_the_notifications(
        self, otp_client, alert_a, django_assert_max_num_queries
    ):
        otp_client.get(url(alert_a.pk))
        with django_assert_max_num_queries(14):
            otp_client.get(url(alert_a.pk))


class TestOutboxShow:
    def test_prints_what_the_outbox_stored(self, alert_a, alert_b):
        out = io.StringIO()
        call_command("outbox_show", "--alert", str(alert_a.pk), stdout=out)
        text = out.getvalue()
        assert "email to jane.doe@example.com" in text and "sms to +14155550100" in text
        assert "Subject: " in text and "never ask you for a code or password" in text

    def test_json_and_the_customer_filter(self, alert_a, alert_b):
        services.notifications_send(notification_ids=list(Notification.objects.values_list("pk", flat=True)))
        out = io.StringIO()
        call_command("outbox_show", "--to-customer", str(alert_b.customer_id), "--json", stdout=out)
        items = json.loads(out.getvalue())
        assert {i["customer"] for i in items} == {alert_b.customer_id} and len(items) == 3
        assert set(items[0]) >= {"channel", "recipient", "subject", "body"}

    def test_an_empty_outbox(self, db):
        out = io.StringIO()
        call_command("outbox_show", stdout=out)
        assert out.getvalue().strip() == "The outbox is empty."


class TestOutboxPage:
    def test_a_bpo_admin_sees_what_was_sent_in_development(self, admin_user, alert_a):
        response = verified_client(admin_user).get("/outbox/")
        assert response.status_code == 200
        assert "jane.doe@example.com" in response.content.decode()
        assert AuditEvent.objects.filter(actor=admin_user, target_type="alerts.outboxmessage").exists()

    def test_filters(self, admin_user, alert_a):
        client = verified_client(admin_user)
        assert "jane.doe" not in client.get("/outbox/", {"alert": alert_a.pk + 1}).content.decode()
        assert client.get("/outbox/", {"customer": "x"}).status_code == 400

    def test_tenant_staff_get_404(self, agent, supervisor, alert_a):
        for user in (agent, supervisor):
            assert verified_client(user).get("/outbox/").status_code == 404

    def test_password_only_sessions_do_not_reach_it(self, alert_a):
        admin = make_staff("admin-pw", bpo_admin=True)
        client = Client()
        client.force_login(admin)
        response = client.get("/outbox/")
        assert response.status_code in (302, 403) and "jane" not in response.content.decode()

    def test_not_in_production_nor_without_the_outbox_backend(self, admin_user, alert_a):
        client = verified_client(admin_user)
        with override_settings(NOTIFICATION_OUTBOX_PAGE=False):
            assert client.get("/outbox/").status_code == 404
        real = {c: "alerts.notifications.channels.TwilioSmsBackend" for c in ("email", "sms", "push", "voice")}
        with override_settings(NOTIFICATION_BACKENDS=real):
            assert client.get("/outbox/").status_code == 404

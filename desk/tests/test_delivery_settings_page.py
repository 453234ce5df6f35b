"""The delivery settings page: a tenant's admins (and BPO admins) choose what customers are told
of, what is critical, the channel order, quiet hours and the answer window; each save is checked
and audited and takes effect in planning; every other caller gets 404 (or the OTP step) and
changes nothing."""

import re
from datetime import UTC, datetime, time

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.models import MessageSettings, Notification, NotificationSettings
from alerts.notifications.models import CHANNEL_ORDER_DEFAULT
from alerts.notifications.tests.helpers import account, feed
from audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(tenant_admin):
    return verified_client(tenant_admin)


def url(tenant_or_id):
    return reverse("desk:delivery_settings", kwargs={"tenant_id": getattr(tenant_or_id, "pk", tenant_or_id)})


def valid(**overrides):
    data = {
        "notify_types": ["login", "password", "two_factor", "recovery", "account_takeover"],
        "min_severity": "2",
        "critical": ["type:account_takeover", "event:mfa.disabled", "rule:recovery"],
        "first": "push",
        "second": "email",
        "third": "sms",
        "fourth": "voice",
        "delivery_window_minutes": "10",
        "quiet_start": "22:00",
        "quiet_end": "07:00",
        "answer_link_days": "3",
        "answer_window_minutes": "30",
        "no_answer_action": "nothing",
        "previous_contact_days": "60",
        "drill_every_hours": "12",
    }
    data.update(overrides)
    return data


def settings_audits():
    return AuditEvent.objects.filter(target_type="alerts.notificationsettings", action=Action.UPDATE)


def test_the_page_shows_the_defaults_and_is_recorded_as_seen(admin_client, tenant_a):
    response = admin_client.get(url(tenant_a))
    assert response.status_code == 200
    page = response.content.decode()
    checked = set(re.findall(r'<input type="checkbox" name="critical" value="([^"]+)"[^>]*checked', page))
    assert checked == set(NotificationSettings().critical) and "type:account_takeover" in checked
    form = response.context["form"]
    assert form["answer_link_days"].value() == 7
    assert [form[s].value() for s in ("first", "second", "third", "fourth")] == list(CHANNEL_ORDER_DEFAULT)
    assert "event:mfa.disabled" in form["critical"].value()
    assert AuditEvent.objects.filter(tenant=tenant_a, target_type="alerts.notificationsettings").exists()
    assert not settings_audits().exists()


def test_a_save_changes_the_settings_is_audited_and_takes_effect(admin_client, tenant_a, tenant_admin):
    response = admin_client.post(url(tenant_a), valid())
    assert response.status_code == 302 and response.url == url(tenant_a)
    row = NotificationSettings.objects.get(tenant=tenant_a)
    assert row.channel_order == ["push", "email", "sms", "voice"]
    assert (row.quiet_start, row.quiet_end, row.answer_link_days, row.min_severity) == (time(22), time(7), 3, 2)
    assert row.critical == ["type:account_takeover", "event:mfa.disabled", "rule:recovery"]
    audit = settings_audits().get()
    assert audit.actor == tenant_admin and "channel_order" in audit.changes

    # Quiet hours in the message settings' time zone: a password change at 00:30 in Paris waits.
    MessageSettings.objects.create(tenant=tenant_a, time_zone="Europe/Paris")
    feed(
        tenant_a,
        "password.changed",
        account_=account(channels={"email": True}),
        now=datetime(2026, 11, 20, 23, 30, tzinfo=UTC),
    )
    assert Notification.objects.get().not_before == datetime(2026, 11, 21, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"second": "push"}, "Give each channel once"),
        ({"quiet_end": ""}, "both ends of the quiet hours"),
        ({"quiet_end": "22:00"}, "same time"),
        ({"answer_link_days": "0"}, "greater than or equal to 1"),
        ({"answer_link_days": "many"}, "whole number"),
        ({"critical": ["type:nope"]}, "Select a valid choice"),
        ({"notify_types": ["pigeon"]}, "Select a valid choice"),
        ({"first": "fax"}, "Select a valid choice"),
        ({"no_answer_action": "panic"}, "Select a valid choice"),
        ({"quiet_start": "25:00"}, "valid time"),
    ],
)
def test_bad_input_is_refused_with_its_reason_and_changes_nothing(admin_client, tenant_a, overrides, message):
    response = admin_client.post(url(tenant_a), valid(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not NotificationSettings.objects.filter(tenant=tenant_a).exists()
    assert not settings_audits().exists()


def test_a_bpo_admin_sets_any_tenants_delivery(admin_user, tenant_b):
    client = verified_client(admin_user)
    assert client.post(url(tenant_b), valid()).status_code == 302
    assert NotificationSettings.objects.get().tenant == tenant_b


def test_another_tenant_or_no_tenant_is_missing(admin_client, tenant_b):
    for target in (tenant_b, 999_999):
        assert admin_client.get(url(target)).status_code == 404
        assert admin_client.post(url(target), valid()).status_code == 404
    assert not NotificationSettings.objects.exists() and not settings_audits().exists()


@pytest.mark.parametrize("role", [Role.AGENT, Role.SUPERVISOR])
def test_roles_other_than_admin_get_404(tenant_a, role):
    client = verified_client(make_staff(f"staff-{role}", role=role, tenants=[tenant_a]))
    assert client.get(url(tenant_a)).status_code == 404
    assert client.post(url(tenant_a), valid()).status_code == 404
    assert not NotificationSettings.objects.exists()


def test_a_password_only_session_or_anonymous_reaches_none_of_it(tenant_a, tenant_admin):
    half = Client()
    half.force_login(tenant_admin)  # password step only, no OTP
    for client, step in ((half, "accounts:mfa_verify"), (Client(), "accounts:login")):
        for response in (client.get(url(tenant_a)), client.post(url(tenant_a), valid())):
            assert response.status_code == 302 and response.url.startswith(reverse(step))
    assert not NotificationSettings.objects.exists()


def test_the_message_list_links_to_the_delivery_settings(admin_client, tenant_a):
    page = admin_client.get(reverse("desk:message_list", kwargs={"tenant_id": tenant_a.pk})).content.decode()
    assert url(tenant_a) in page


# --- Push to the tenant's app ------------------------------------------------------------------


def test_the_push_webhook_and_receipts_are_set_on_the_page(admin_client, tenant_a):
    data = valid(push_webhook_url="https://app.acme.example/push", push_receipts="on")
    assert admin_client.post(url(tenant_a), data).status_code == 302
    row = NotificationSettings.objects.get(tenant=tenant_a)
    assert (row.push_webhook_url, row.push_receipts) == ("https://app.acme.example/push", True)
    response = admin_client.post(url(tenant_a), valid(push_webhook_url="not a url"))
    assert response.status_code == 400 and "Enter a valid URL" in response.content.decode()


def test_a_new_push_secret_is_shown_once_not_cached_and_audited_without_its_value(admin_client, tenant_a):
    rotate = reverse("desk:push_secret_rotate", kwargs={"tenant_id": tenant_a.pk})
    response = admin_client.post(rotate)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    secret = NotificationSettings.objects.get(tenant=tenant_a).push_webhook_secret
    assert len(secret) >= 40 and secret in response.content.decode()
    again = admin_client.get(url(tenant_a)).content.decode()
    assert secret not in again and "A signing secret is set." in again
    audit = AuditEvent.objects.get(target_type="alerts.notificationsettings", action=Action.UPDATE)
    assert secret not in str(audit.changes) and admin_client.get(rotate).status_code == 405


def test_the_push_secret_cannot_be_rotated_by_others(tenant_a, tenant_b, admin_client):
    rotate = reverse("desk:push_secret_rotate", kwargs={"tenant_id": tenant_b.pk})
    assert admin_client.post(rotate).status_code == 404
    agent = verified_client(make_staff("agent-x", role=Role.AGENT, tenants=[tenant_a]))
    assert agent.post(reverse("desk:push_secret_rotate", kwargs={"tenant_id": tenant_a.pk})).status_code == 404
    assert not NotificationSettings.objects.exclude(push_webhook_secret="").exists()


def test_tenant_webhook_push_sets_the_push_webhook_and_prints_its_secret_once(tenant_a, capsys):
    from django.core.management import CommandError, call_command

    call_command("tenant_webhook", tenant_a.slug, "https://app.acme.example/push", "--push", "--receipts")
    printed = capsys.readouterr().out.strip().splitlines()
    row = NotificationSettings.objects.get(tenant=tenant_a)
    assert (row.push_webhook_url, row.push_receipts, row.push_webhook_secret) == (
        "https://app.acme.example/push",
        True,
        printed[-1],
    )
    with pytest.raises(CommandError):
        call_command("tenant_webhook", tenant_a.slug, "https://x.example/", "--receipts")
    with pytest.raises(CommandError):
        call_command("tenant_webhook", tenant_a.slug, "not a url", "--push")
    assert NotificationSettings.objects.get(tenant=tenant_a).push_webhook_secret == printed[-1]

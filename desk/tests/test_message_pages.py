"""The customer-message pages: tenant admins (and BPO admins) see and edit their tenant's messages
with a live preview; every save is checked and audited; every other caller gets 404 (or the OTP
step) and changes nothing."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.models import MessageSettings, NotificationTemplate
from alerts.notifications.checks import template_check
from alerts.notifications.template_services import message_settings_save
from audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db

SMS = (
    "{tenant}: new sign-in, {where}, {when}. Not you? {link} and change your password. "
    "We never ask for codes or passwords."
)


@pytest.fixture
def admin_client(tenant_admin):
    return verified_client(tenant_admin)


def edit_url(tenant, kind="login", channel="sms", locale="en"):
    return reverse(
        "desk:message_edit", kwargs={"tenant_id": tenant.pk, "alert_type": kind, "channel": channel, "locale": locale}
    )


def list_url(tenant):
    return reverse("desk:message_list", kwargs={"tenant_id": tenant.pk})


def preview_url(tenant):
    return reverse("desk:message_preview", kwargs={"tenant_id": tenant.pk})


def settings_url(tenant):
    return reverse("desk:message_settings", kwargs={"tenant_id": tenant.pk})


def reset_url(tenant, kind="login", channel="sms", locale="en"):
    kwargs = {"tenant_id": tenant.pk, "alert_type": kind, "channel": channel, "locale": locale}
    return reverse("desk:message_reset", kwargs=kwargs)


def template_audits():
    return AuditEvent.objects.filter(target_type__in=["alerts.notificationtemplate", "alerts.messagesettings"]).exclude(
        action__in=[Action.VIEW, Action.LIST]
    )


# --- The permitted case ------------------------------------------------------------------------


def test_the_list_shows_every_alert_and_channel_with_its_state(admin_client, tenant_a, django_assert_max_num_queries):
    with django_assert_max_num_queries(20):
        response = admin_client.get(list_url(tenant_a))
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('class="state state-default"') == 9 * 4
    assert "Possible account takeover" in page and "Delivery test" in page
    assert AuditEvent.objects.filter(tenant=tenant_a, target_type="alerts.notificationtemplate").exists()


def test_the_list_costs_the_same_queries_with_many_templates(admin_client, tenant_a, tenant_admin):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as empty:
        admin_client.get(list_url(tenant_a))
    for kind in ("login", "location", "password", "recovery"):
        admin_client.post(edit_url(tenant_a, kind=kind), {"subject": "", "body": SMS})
    with CaptureQueriesContext(connection) as full:
        response = admin_client.get(list_url(tenant_a))
    assert response.content.decode().count('class="state state-own"') == 4
    assert len(full) == len(empty)


def test_the_editor_shows_the_message_sent_now_and_its_preview(admin_client, tenant_a):
    response = admin_client.get(edit_url(tenant_a))
    assert response.status_code == 200
    page = response.content.decode()
    assert "The built-in message." in page
    assert "We never ask for codes or passwords." in page  # the default, in the form
    assert 'data-testid="check-ok"' in page
    assert "2 segments: " in page and "GSM-7 characters" in page  # this sample
    assert 'src="/static/js/message_templates.js"' in page
    assert "<script>" not in page  # the CSP allows no inline script


def test_saving_a_good_template_stores_it_and_records_the_change(admin_client, tenant_a, tenant_admin):
    response = admin_client.post(edit_url(tenant_a, locale="fr_be"), {"subject": "", "body": SMS})
    assert response.status_code == 302  # to the canonical locale first
    response = admin_client.post(edit_url(tenant_a, locale="fr-BE"), {"subject": "", "body": SMS, "action": "save"})
    assert response.status_code == 302 and response.url == edit_url(tenant_a, locale="fr-BE")
    template = NotificationTemplate.objects.get(tenant=tenant_a)
    assert (template.locale, template.body, template.updated_by) == ("fr-BE", SMS, tenant_admin)
    (record,) = template_audits()
    assert (record.action, record.actor, record.tenant) == (Action.CREATE, tenant_admin, tenant_a)
    page = admin_client.get(edit_url(tenant_a, locale="fr-BE")).content.decode()
    assert "Your wording, last changed by tenant-admin" in page


def test_a_template_the_check_refuses_is_shown_with_its_errors_and_not_saved(admin_client, tenant_a):
    body = SMS + " Reply with the code we sent you."
    response = admin_client.post(edit_url(tenant_a), {"subject": "", "body": body})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Asks for a password or a code" in page
    assert "Reply with the code we sent you." in page  # the draft is kept in the form
    assert not NotificationTemplate.objects.exists() and not template_audits().exists()


def test_check_and_preview_without_script_saves_nothing(admin_client, tenant_a):
    response = admin_client.post(edit_url(tenant_a), {"subject": "", "body": SMS, "action": "preview"})
    assert response.status_code == 200
    assert 'data-testid="check-ok"' in response.content.decode()
    assert not NotificationTemplate.objects.exists()


def test_the_preview_fragment_fills_the_draft_and_counts_segments(admin_client, tenant_a):
    data = {"alert_type": "login", "channel": "sms", "locale": "en", "subject": "", "body": SMS + " 🔒"}
    response = admin_client.post(preview_url(tenant_a), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Tenant A: new sign-in, Lyon, France," in page  # sample facts, never a customer's
    assert "UCS-2, because of 🔒 (lock)" in page
    worst = template_check(alert_type="login", channel="sms", locale="en", subject="", body=data["body"]).sms
    assert worst.segments > 2
    assert f"Too long for an SMS: up to {worst.segments} segments" in page
    assert f'data-testid="sms-worst">{worst.segments} segments' in page
    assert not NotificationTemplate.objects.exists()
    email = {"alert_type": "login", "channel": "email", "locale": "fr", "subject": "{tenant}", "body": "x"}
    page = admin_client.post(preview_url(tenant_a), email).content.decode()
    assert "Tenant A" in page and "Add the answer link {link}" in page


def test_going_back_to_the_builtin_message(admin_client, tenant_a):
    admin_client.post(edit_url(tenant_a), {"subject": "", "body": SMS})
    response = admin_client.post(reset_url(tenant_a))
    assert response.status_code == 302
    assert not NotificationTemplate.objects.exists()
    assert list(template_audits().order_by("pk").values_list("action", flat=True)) == [Action.CREATE, Action.DELETE]


def test_message_settings_are_saved_and_audited(admin_client, tenant_a):
    data = {
        "display_name": "Acme Bank",
        "official_domain": "acme-bank.example",
        "support_phone": "+44 20 7946 0000",
        "support_url": "https://acme-bank.example/help",
        "time_zone": "Europe/Paris",
        "default_locale": "fr",
    }
    response = admin_client.post(settings_url(tenant_a), data)
    assert response.status_code == 302
    assert MessageSettings.objects.get(tenant=tenant_a).official_domain == "acme-bank.example"
    assert template_audits().get().action == Action.CREATE
    page = admin_client.get(list_url(tenant_a)).content.decode()
    assert "Messages for customers in <strong>fr</strong>" in page  # the default language is shown first


def test_a_bpo_admin_edits_any_tenants_messages(admin_user, tenant_b):
    client = verified_client(admin_user)
    assert client.get(list_url(tenant_b)).status_code == 200
    assert client.post(edit_url(tenant_b), {"subject": "", "body": SMS}).status_code == 302
    assert NotificationTemplate.objects.get().tenant == tenant_b


def test_home_goes_to_the_tenant_worked_in_and_the_menu_shows_the_page(admin_client, tenant_a):
    response = admin_client.get(reverse("desk:messages"))
    assert response.status_code == 302 and response.url == list_url(tenant_a)
    assert 'href="/messages/"' in admin_client.get(list_url(tenant_a)).content.decode()


# --- Refused cases -------------------------------------------------------------------------------


def every_request(tenant):
    """Every page and step, with input that would succeed for an admin of `tenant`."""
    return [
        ("get", list_url(tenant), {}),
        ("get", edit_url(tenant), {}),
        ("post", edit_url(tenant), {"subject": "", "body": SMS}),
        ("post", preview_url(tenant), {"alert_type": "login", "channel": "sms", "locale": "en", "body": SMS}),
        ("post", reset_url(tenant), {}),
        ("post", settings_url(tenant), {"display_name": "Evil", "time_zone": "UTC", "default_locale": "en"}),
    ]


def assert_nothing_saved():
    assert not NotificationTemplate.objects.exists()
    assert not MessageSettings.objects.exists()
    assert not template_audits().exists()


def test_another_tenants_messages_are_missing(admin_client, tenant_b):
    for method, url, data in every_request(tenant_b):
        assert getattr(admin_client, method)(url, data).status_code == 404, url
    assert admin_client.get(reverse("desk:message_list", kwargs={"tenant_id": 999_999})).status_code == 404
    assert_nothing_saved()


@pytest.mark.parametrize("role", [Role.AGENT, Role.SUPERVISOR])
def test_roles_other_than_admin_get_404_everywhere(tenant_a, role):
    client = verified_client(make_staff(f"staff-{role}", role=role, tenants=[tenant_a]))
    for method, url, data in every_request(tenant_a):
        assert getattr(client, method)(url, data).status_code == 404, url
    assert client.get(reverse("desk:messages")).status_code == 404
    assert "Customer messages" not in client.get(reverse("accounts:security")).content.decode()
    assert_nothing_saved()


def test_a_password_only_session_reaches_none_of_it(tenant_a, tenant_admin):
    client = Client()
    client.force_login(tenant_admin)  # password step only, no OTP
    for method, url, data in every_request(tenant_a):
        response = getattr(client, method)(url, data)
        assert response.status_code == 302 and response.url.startswith(reverse("accounts:mfa_verify")), url
    assert_nothing_saved()


def test_anonymous_is_sent_to_sign_in(client, tenant_a):
    for method, url, data in every_request(tenant_a):
        response = getattr(client, method)(url, data)
        assert response.status_code == 302 and response.url.startswith(reverse("accounts:login")), url
    assert_nothing_saved()


@pytest.mark.parametrize(
    ("kind", "channel", "locale"),
    [("lottery", "sms", "en"), ("login", "fax", "en"), ("login", "sms", "english-please"), ("login", "sms", "x1")],
)
def test_an_unknown_message_is_missing(admin_client, tenant_a, kind, channel, locale):
    url = edit_url(tenant_a, kind=kind, channel=channel, locale=locale)
    assert admin_client.get(url).status_code == 404
    assert admin_client.post(url, {"subject": "", "body": SMS}).status_code == 404
    assert admin_client.post(reset_url(tenant_a, kind=kind, channel=channel, locale=locale)).status_code == 404
    assert_nothing_saved()


@pytest.mark.parametrize(
    "data",
    [
        {"alert_type": "lottery", "channel": "sms", "locale": "en", "body": SMS},
        {"alert_type": "login", "channel": "fax", "locale": "en", "body": SMS},
        {"alert_type": "login", "channel": "sms", "locale": "??", "body": SMS},
        {"channel": "sms", "locale": "en", "body": SMS},
        {"alert_type": "login", "channel": "sms", "locale": "en", "body": "x" * 5000},
        {"alert_type": "login", "channel": "email", "locale": "en", "subject": "s" * 300, "body": SMS},
    ],
)
def test_malformed_preview_requests_are_400(admin_client, tenant_a, data):
    assert admin_client.post(preview_url(tenant_a), data).status_code == 400
    assert_nothing_saved()


def test_malformed_edits_and_settings_are_400_and_save_nothing(admin_client, tenant_a):
    assert admin_client.post(edit_url(tenant_a), {"subject": "", "body": "x" * 5000}).status_code == 400
    assert admin_client.post(edit_url(tenant_a), {"subject": "", "body": ""}).status_code == 400
    assert admin_client.post(edit_url(tenant_a, channel="email"), {"body": SMS}).status_code == 400  # no subject
    assert admin_client.get(list_url(tenant_a), {"locale": "not a locale"}).status_code == 400
    bad_settings = {"official_domain": "evil.example/login", "time_zone": "UTC", "default_locale": "en"}
    response = admin_client.post(settings_url(tenant_a), bad_settings)
    assert response.status_code == 400 and "Give a domain name" in response.content.decode()
    assert admin_client.post(settings_url(tenant_a), {}).status_code == 400
    assert admin_client.get(preview_url(tenant_a)).status_code == 405
    assert_nothing_saved()


def test_a_template_linking_to_a_domain_no_longer_official_is_marked_on_the_list(admin_client, tenant_a, tenant_admin):
    message_settings_save(tenant=tenant_a, actor=tenant_admin, official_domain="acme-bank.example")
    body = SMS + " https://acme-bank.example/help"
    assert admin_client.post(edit_url(tenant_a), {"subject": "", "body": body}).status_code == 302
    message_settings_save(tenant=tenant_a, actor=tenant_admin, official_domain="acme.example")
    page = admin_client.get(list_url(tenant_a)).content.decode()
    assert page.count('class="state state-failing"') == 1

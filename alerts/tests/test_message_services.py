"""Saving a template runs the check and records the change with its before and after text, in one
transaction; a refused template changes nothing and records nothing. Message settings the same."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import Role
from alerts.models import MessageSettings, NotificationTemplate
from alerts.notifications.template_services import (
    TemplateCheckError,
    message_settings_save,
    notification_template_reset,
    notification_template_save,
)
from audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db

BODY = "{tenant}: new sign-in, {where}. Not you? {link} We never ask for codes or passwords."


def save(tenant, actor, **overrides):
    values = {"alert_type": "login", "channel": "sms", "locale": "en", "subject": "", "body": BODY}
    return notification_template_save(tenant=tenant, actor=actor, **{**values, **overrides})


def audits(tenant, target_type="alerts.notificationtemplate"):
    return list(AuditEvent.objects.filter(tenant=tenant, target_type=target_type).order_by("pk"))


def test_saving_creates_then_updates_and_records_before_and_after(tenant_a, tenant_admin):
    template = save(tenant_a, tenant_admin, locale="fr_ca")
    assert (template.locale, template.updated_by, template.body) == ("fr-CA", tenant_admin, BODY)
    edited = BODY.replace("new sign-in", "sign-in")
    save(tenant_a, tenant_admin, locale="fr-CA", body=edited + "\r\n")
    template.refresh_from_db()
    assert template.body == edited
    created, updated = audits(tenant_a)
    assert (created.action, created.actor, created.actor_role) == (Action.CREATE, tenant_admin, Role.ADMIN)
    assert created.changes["body"] == {"before": None, "after": BODY}
    assert updated.action == Action.UPDATE
    assert updated.changes == {"body": {"before": BODY, "after": edited}}
    assert updated.metadata == {"alert_type": "login", "channel": "sms", "locale": "fr-CA"}
    assert updated.target_label == "SMS message for login from a new device (fr-CA)"


def test_saving_the_same_text_again_records_nothing(tenant_a, tenant_admin):
    save(tenant_a, tenant_admin)
    save(tenant_a, tenant_admin)
    assert len(audits(tenant_a)) == 1


def test_a_refused_template_changes_nothing_and_records_nothing(tenant_a, tenant_admin):
    save(tenant_a, tenant_admin)
    with pytest.raises(TemplateCheckError) as refused:
        save(tenant_a, tenant_admin, body=BODY + " Reply with the code we sent you.")
    assert "Asks for a password or a code" in refused.value.message_dict["body"][0]
    assert not refused.value.result.ok
    assert NotificationTemplate.objects.get(tenant=tenant_a).body == BODY
    assert len(audits(tenant_a)) == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"alert_type": "lottery"}, "alert_type"), ({"channel": "fax"}, "channel"), ({"locale": "en_US_x"}, "locale")],
)
def test_an_unknown_kind_channel_or_locale_is_refused(tenant_a, tenant_admin, overrides, field):
    with pytest.raises(ValidationError) as refused:
        save(tenant_a, tenant_admin, **overrides)
    assert field in refused.value.message_dict
    assert not NotificationTemplate.objects.exists()


def test_a_role_without_the_permission_or_another_tenant_is_refused(
    tenant_a, tenant_b, tenant_admin, agent, supervisor
):
    for actor, tenant in ((agent, tenant_a), (supervisor, tenant_a), (tenant_admin, tenant_b)):
        with pytest.raises(PermissionDenied):
            save(tenant, actor)
        with pytest.raises(PermissionDenied):
            message_settings_save(tenant=tenant, actor=actor, display_name="X")
    assert not NotificationTemplate.objects.exists() and not MessageSettings.objects.exists()


def test_a_bpo_admin_may_save_for_any_tenant(tenant_b, admin_user):
    assert save(tenant_b, admin_user).tenant == tenant_b


def test_reset_removes_the_tenants_wording_and_records_what_it_was(tenant_a, tenant_admin):
    save(tenant_a, tenant_admin)
    assert notification_template_reset(
        tenant=tenant_a, actor=tenant_admin, alert_type="login", channel="sms", locale="en"
    )
    assert not NotificationTemplate.objects.exists()
    assert audits(tenant_a)[-1].action == Action.DELETE
    assert audits(tenant_a)[-1].changes["body"] == {"before": BODY, "after": None}
    assert not notification_template_reset(
        tenant=tenant_a, actor=tenant_admin, alert_type="login", channel="sms", locale="en"
    )


def test_the_check_uses_the_tenants_official_domain(tenant_a, tenant_admin):
    body = BODY + " More: https://acme-bank.example/help"
    with pytest.raises(TemplateCheckError, match="no official domain is set"):
        save(tenant_a, tenant_admin, body=body)
    message_settings_save(tenant=tenant_a, actor=tenant_admin, official_domain="https://Acme-Bank.example/")
    assert save(tenant_a, tenant_admin, body=body).body == body


def test_message_settings_are_normalised_validated_and_audited(tenant_a, tenant_admin):
    settings = message_settings_save(
        tenant=tenant_a,
        actor=tenant_admin,
        display_name="  Acme   Bank ",
        official_domain="ACME-BANK.example.",
        support_phone="+44 20 7946 0000",
        support_url="https://help.acme-bank.example/contact",
        time_zone="Europe/Paris",
        default_locale="fr_fr",
    )
    assert (settings.display_name, settings.official_domain, settings.default_locale) == (
        "Acme Bank",
        "acme-bank.example",
        "fr-FR",
    )
    (record,) = audits(tenant_a, "alerts.messagesettings")
    assert record.action == Action.CREATE and record.changes["official_domain"]["after"] == "acme-bank.example"
    assert tenant_a.message_settings.time_zone == "Europe/Paris"


def test_an_internationalised_official_domain_is_kept_in_its_ascii_form(tenant_a, tenant_admin):
    settings = message_settings_save(tenant=tenant_a, actor=tenant_admin, official_domain="bücher.example")
    assert settings.official_domain == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("official_domain", "acme-bank.example/login"),
        ("official_domain", "user@acme-bank.example"),
        ("official_domain", "localhost"),
        ("support_phone", "call us"),
        ("support_phone", "+44 20 7946 0000 ext 5"),
        ("support_url", "http://acme-bank.example/help"),
        ("support_url", "https://evil.example/help"),
        ("support_url", "https://acme-bank.example@evil.example/"),
        ("support_url", "https://acme-bank.example:8443/"),
        ("time_zone", "Mars/Olympus"),
        ("default_locale", "english"),
        ("display_name", "Acme evil.example"),
        ("display_name", "Call 0800 123 4567"),
        ("display_name", "{link}"),
    ],
)
def test_bad_message_settings_are_refused_and_nothing_is_saved(tenant_a, tenant_admin, field, value):
    values = {"official_domain": "acme-bank.example", field: value}
    with pytest.raises(ValidationError) as refused:
        message_settings_save(tenant=tenant_a, actor=tenant_admin, **values)
    assert list(refused.value.message_dict) == [field]
    assert not MessageSettings.objects.exists()
    assert not audits(tenant_a, "alerts.messagesettings")

"""What a customer's message says: the tenant's template or the built-in default in the best
locale, filled with approximate values only (a browser family, a city and country, the time in
the client's time zone), and `message_render` reading those off a notification's alert."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from django.utils import timezone

from alerts.models import EventType, NotificationTemplate
from alerts.notifications.content import Message, MessageContext, message_build, message_render
from alerts.notifications.sms import is_gsm7, sms_length
from alerts.notifications.template_services import message_settings_save, notification_template_save
from alerts.tests.factories import AccountEventFactory, AlertFactory, CustomerFactory

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 20, 9, 5, tzinfo=UTC)
LINK = "https://alerts.example/r/q7Vd2KpL9sXw4NcT8bYhR3mZ/"
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@pytest.fixture
def acme(tenant_a):
    message_settings_save(
        tenant=tenant_a,
        actor=None,
        display_name="Acme Bank",
        official_domain="acme-bank.example",
        support_phone="+44 20 7946 0000",
        support_url="https://acme-bank.example/help",
        time_zone="Europe/Paris",
        default_locale="en",
    )
    return tenant_a


def facts(**overrides):
    values = {
        "occurred_at": AT,
        "rule": "new_device",
        "event_type": EventType.LOGIN_SUCCEEDED,
        "device": "Chrome on Windows",
        "city": "Lyon",
        "country": "FR",
        "answer_url": LINK,
    }
    return MessageContext(**{**values, **overrides})


def build(tenant, *, channel="email", locale="en", kind="login", **overrides):
    return message_build(tenant=tenant, alert_type=kind, channel=channel, locale=locale, context=facts(**overrides))


def test_an_email_says_what_happened_where_and_when_in_the_clients_time_zone(acme):
    message = build(acme)
    assert message.subject == "Acme Bank: new sign-in to your account"
    assert "We noticed a sign-in from a device not seen before on your Acme Bank account." in message.body
    assert "Device: Chrome on Windows" in message.body
    assert "Place (approximate): Lyon, France" in message.body
    assert "Time: 20 November 2026, 10:05 CET" in message.body  # 09:05 UTC in Paris
    assert LINK in message.body
    assert "+44 20 7946 0000 or acme-bank.example/help" in message.body
    assert "Acme Bank staff will never ask you for a code or password." in message.body
    assert message.title == ""


def test_an_sms_is_short_gsm7_and_within_two_segments(acme):
    message = build(acme, channel="sms", city="Łódź", country="PL")
    assert message.subject == "" and message.title == ""
    assert "Lodz, Poland" in message.body  # folded: one Ł would have made the whole SMS UCS-2
    assert is_gsm7(message.body)
    assert sms_length(message.body).segments <= 2
    assert message.body.startswith("Acme Bank: new sign-in, Chrome on Windows, Lodz, Poland, 20 Nov, 10:05 CET.")
    assert "Not you? " + LINK + " and change your password." in message.body


def test_a_push_has_a_title_and_a_call_has_words_to_speak_and_no_link(acme):
    push = build(acme, channel="push")
    assert push.title == push.subject == "New sign-in to your account"
    assert LINK in push.body
    voice = build(acme, channel="voice")
    assert LINK not in voice.body and "http" not in voice.body
    assert "plus 4 4, 2 0, 7 9 4 6, 0 0 0 0" in voice.body  # the number, digit by digit
    assert "on 20 November 2026, 10:05 CET" in voice.body


def test_the_customers_locale_then_its_language_then_the_tenants_default_then_english(acme):
    assert build(acme, locale="fr-CA").subject == "Acme Bank : nouvelle connexion à votre compte"
    assert "Lyon (FR)" in build(acme, locale="fr").body
    assert "20 novembre 2026, 10:05 CET" in build(acme, locale="fr").body
    assert build(acme, locale="de").subject == "Acme Bank: new sign-in to your account"
    message_settings_save(tenant=acme, actor=None, display_name="Acme Bank", official_domain="acme-bank.example",
                          time_zone="Europe/Paris", default_locale="fr")  # fmt: skip
    assert build(acme, locale="de").subject.startswith("Acme Bank : nouvelle connexion")
    assert build(acme, locale="").subject.startswith("Acme Bank : nouvelle connexion")
    assert build(acme, locale="en-GB").subject == "Acme Bank: new sign-in to your account"


@pytest.mark.parametrize("locale", ["es", "es-MX"])
def test_a_language_without_a_wording_gets_one_language_throughout(acme, locale):
    message = build(acme, locale=locale, device="", city="", country="")  # no Spanish wording: English
    assert "We noticed a sign-in from a device not seen before on your Acme Bank account." in message.body
    assert "Device: an unknown device" in message.body and "Place (approximate): an unknown place" in message.body
    assert "Time: 20 November 2026, 10:05 CET" in message.body
    assert not any(word in message.body for word in ("desconocido", "noviembre", "inicio de sesión"))
    assert "Date : 20 novembre 2026" in build(acme, locale="fr-CA").body  # a wording in its language: its forms


def test_the_tenants_own_template_wins_for_its_locale_and_the_locales_under_it(acme):
    notification_template_save(
        tenant=acme, actor=None, alert_type="login", channel="sms", locale="fr",
        body="{tenant}: connexion depuis {where}. Pas vous? {link} Nous ne demandons jamais code ni mot de passe.",
        subject="",
    )  # fmt: skip
    assert build(acme, channel="sms", locale="fr-BE").body.startswith("Acme Bank: connexion depuis Lyon (FR).")
    assert build(acme, channel="sms", locale="en").body.startswith("Acme Bank: new sign-in")


def test_a_tenant_template_that_no_longer_passes_the_check_is_not_sent(acme):
    notification_template_save(
        tenant=acme, actor=None, alert_type="login", channel="email", locale="en", subject="Sign-in",
        body="We noticed {what}. {link} Help: https://acme-bank.example/help or {support}. "
        "{tenant} staff will never ask you for a code or password.",
    )  # fmt: skip
    assert build(acme).subject == "Sign-in"
    # The official domain changes: the template now links elsewhere, so the default is sent.
    message_settings_save(tenant=acme, actor=None, display_name="Acme Bank", official_domain="acme.example",
                          time_zone="Europe/Paris")  # fmt: skip
    assert build(acme).subject == "Acme Bank: new sign-in to your account"
    # A row written around the service (SQL, a bad import) is refused the same way.
    NotificationTemplate.objects.create(
        tenant=acme, alert_type="login", channel="sms", locale="en", body="Reply with your code to {link}",
        updated_at=timezone.now(),
    )  # fmt: skip
    assert "Reply with your code" not in build(acme, channel="sms").body


def test_values_from_outside_cannot_carry_links_or_numbers(acme):
    message = build(
        acme, kind="third_party", rule="third_party", event_type=EventType.THIRD_PARTY_AUTHORIZED,
        details={"app_name": "Call 0800123456 or visit evil.example"}, city="https://evil.example",
    )  # fmt: skip
    assert "evil.example" not in message.body and "0800123456" not in message.body
    assert "We noticed the app “Call or visit evil example” given access on your Acme Bank" in message.body


def test_a_tenant_without_settings_gets_its_name_utc_and_no_official_domain(tenant_a):
    message = build(tenant_a)
    assert message.subject == "Tenant A: new sign-in to your account"
    assert "Time: 20 November 2026, 09:05 UTC" in message.body
    assert "the contact details in the official Tenant A app or website" in message.body


# --- The adapter: message_render(notification=...) ---------------------------------------------


def notification(alert, *, channel="email", purpose="alert", locale="en"):
    """A stand-in for the delivery core's Notification: the attributes message_render reads."""
    alert.customer.locale = locale
    return SimpleNamespace(
        tenant=alert.tenant, alert=alert, customer=alert.customer, channel=channel, purpose=purpose,
        answer_url=lambda: LINK,
    )  # fmt: skip


@pytest.fixture
def takeover_alert(acme):
    customer = CustomerFactory(tenant=acme, email="jane@example.com", phone="+33612345678")
    login = AccountEventFactory(
        customer=customer, type=EventType.LOGIN_SUCCEEDED, occurred_at=AT, ip="81.2.69.160",
        context={"user_agent": CHROME, "device_id": "dev-SECRET-42", "geo": {"country": "FR", "city": "Lyon"}},
    )  # fmt: skip
    change = AccountEventFactory(
        customer=customer, type=EventType.PASSWORD_CHANGED, occurred_at=AT.replace(minute=20), ip=None,
        context={"initiated_by": "user"},
    )  # fmt: skip
    return AlertFactory(
        customer=customer, type="password", rule="password_change", reason="The account's password was changed.",
        evidence=[login, change],
    )  # fmt: skip


def test_message_render_reads_the_alerts_newest_event_device_and_place(takeover_alert, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):  # settings, evidence, templates
        message = message_render(notification=notification(takeover_alert))
    assert isinstance(message, Message)
    assert message.subject == "Acme Bank: password change on your account"
    assert "We noticed that your password was changed on your Acme Bank account." in message.body
    assert "Device: Chrome on Windows" in message.body and "Lyon, France" in message.body
    assert "10:20 CET" in message.body  # the newest event, in the client's time zone
    assert LINK in message.body
    for secret in ("81.2.69.160", "dev-SECRET-42", "jane@example.com", "+33612345678", "Mozilla"):
        assert secret not in message.body


def test_message_render_places_an_ip_without_geo_offline_and_never_shows_it(acme):
    event = AccountEventFactory(
        customer=CustomerFactory(tenant=acme), type=EventType.LOGIN_SUCCEEDED, occurred_at=AT, ip="81.2.69.160",
        context={"user_agent": CHROME},
    )  # fmt: skip
    alert = AlertFactory(customer=event.customer, type="login", rule="new_device", evidence=[event])
    message = message_render(notification=notification(alert, channel="sms"))
    assert "United Kingdom" in message.body or ", GB" in message.body  # 81.2.69.160 is a British address
    assert "81.2.69.160" not in message.body


def test_message_render_per_channel_locale_and_purpose(takeover_alert):
    voice = message_render(notification=notification(takeover_alert, channel="voice", locale="fr-FR"))
    assert voice.body.startswith("Bonjour. Ceci est un appel de sécurité automatique de Acme Bank.")
    assert LINK not in voice.body
    test = message_render(notification=notification(takeover_alert, channel="sms", purpose="test"))
    assert test.body.startswith("Acme Bank: this is a test of your security alerts.")
    previous = message_render(notification=notification(takeover_alert, channel="email", purpose="previous_contact"))
    assert previous.subject == "Acme Bank: password change on your account"
    assert previous.body.startswith(
        "You get this message because this address was on your Acme Bank account until recently.\n\nWe noticed"
    )
    with pytest.raises(ValueError, match="verification"):
        message_render(notification=notification(takeover_alert, purpose="verification"))


def test_message_render_of_an_alert_without_evidence_uses_its_last_seen_time(acme):
    alert = AlertFactory(customer=CustomerFactory(tenant=acme), evidence=[], last_seen_at=AT)
    message = message_render(notification=notification(alert))
    assert "an unknown device" in message.body and "an unknown place" in message.body
    assert "20 November 2026, 10:05 CET" in message.body

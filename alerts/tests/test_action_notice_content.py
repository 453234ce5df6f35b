"""The notice told to a customer's contacts on file before a contact-detail change the desk asked for
takes effect (issue 11) says WHICH contact is changing, on every channel and on the answer page its
link opens: the email address or the phone number on the account. Never the value, old or new."""

import logging
import re

import pytest

from alerts.models import Notification
from alerts.notifications.content import message_render
from alerts.notifications.models import Purpose
from alerts.notifications.services import action_notice_plan
from alerts.notifications.sms import is_gsm7, sms_length
from alerts.notifications.template_services import message_settings_save
from alerts.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

EMAIL, PHONE = "jane.doe@example.com", "+33612345678"
REFERENCE = "6f1c1d52-3a5e-4b7e-9a43-0c2a4b9e8d11"

SAYS = {
    ("en", "email"): "a change of the email address on your account",
    ("en", "phone"): "a change of the phone number on your account",
    ("fr", "email"): "une modification de l'adresse e-mail de votre compte",
    ("fr", "phone"): "une modification du numéro de téléphone de votre compte",
}
GENERIC = {"en": "a change of the contact details on your account", "fr": "une modification des coordonnées"}


@pytest.fixture
def acme(tenant_a):
    message_settings_save(
        tenant=tenant_a, actor=None, display_name="Acme Bank", official_domain="acme-bank.example",
        support_phone="+44 20 7946 0000", support_url="https://acme-bank.example/help", time_zone="Europe/Paris",
        default_locale="en",
    )  # fmt: skip
    return tenant_a


def _customer(tenant, locale="en"):
    # Every channel on file: email and the phone (SMS, voice), and the tenant's app (push).
    return CustomerFactory(tenant=tenant, email=EMAIL, phone=PHONE, locale=locale, channels={"push": True})


def _notices(tenant, customer, field):
    ids = action_notice_plan(tenant_id=tenant.pk, customer_id=customer.pk, reference=REFERENCE, field=field)
    return list(Notification.objects.filter(pk__in=ids).select_related("tenant", "customer").order_by("channel"))


@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize("field", ["email", "phone"])
def test_every_channel_says_which_contact_is_changing_and_never_its_value(acme, locale, field):
    customer = _customer(acme, locale)
    rows = _notices(acme, customer, field)
    assert sorted(r.channel for r in rows) == ["email", "push", "sms", "voice"]
    assert {r.notice_field for r in rows} == {field}
    other = "phone" if field == "email" else "email"
    for row in rows:
        message = message_render(notification=row)
        said = SAYS[(locale, field)]
        if row.channel == "sms":
            said = said.replace("ç", "c")  # folded to GSM-7 in a GSM-7 template; é stays (it is GSM-7)
            assert is_gsm7(message.body) and sms_length(message.body).segments <= 2
        assert said in message.body, (row.channel, message.body)
        assert SAYS[(locale, other)] not in message.body
        if row.channel == "email":
            assert said in message.subject  # the inbox line says it too
        for value in (EMAIL, "jane.doe", PHONE, "612345678", customer.email_masked, customer.phone_masked):
            assert value not in f"{message.subject} {message.title} {message.body}"


def test_a_notice_that_names_no_contact_keeps_the_general_words(acme):
    (email, *_) = _notices(acme, _customer(acme), "")
    assert email.channel == "email" and email.notice_field == ""
    assert GENERIC["en"] in message_render(notification=email).body


def test_the_english_sms_reads_plainly(acme):
    sms = next(r for r in _notices(acme, _customer(acme), "phone") if r.channel == "sms")
    body = message_render(notification=sms).body
    assert re.fullmatch(
        r"Acme Bank: someone asked us for a change of the phone number on your account, \d+ \w+, \d\d:\d\d CET\. "
        r"Not you\? https?://\S+/r/\S+/ and answer No\. We never ask for codes or passwords\.",
        body,
    ), body


def test_an_unknown_field_is_refused_and_plans_nothing(acme):
    customer = _customer(acme)
    for bad in ("address", "Email", None, "phone "):
        with pytest.raises(ValueError):
            action_notice_plan(tenant_id=acme.pk, customer_id=customer.pk, reference=REFERENCE, field=bad)
    assert not Notification.objects.filter(purpose=Purpose.ACTION_NOTICE).exists()


@pytest.mark.parametrize(
    ("field", "says"),
    [
        ("phone", "the phone number on your account"),
        ("email", "the email address on your account"),
        ("", "the contact details on your account"),
    ],
)
def test_the_answer_page_says_which_contact_would_change(acme, client, field, says, caplog):
    email = next(r for r in _notices(acme, _customer(acme), field) if r.channel == "email")
    with caplog.at_level(logging.DEBUG):
        page = client.get(f"/r/{email.answer_token()}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert f"a request to our support team to change {says}" in html
    assert f'data-testid="changing">{says[:1].upper()}{says[1:]}</dd>' in html
    for value in (EMAIL, "jane.doe", PHONE, "612345678"):
        assert value not in html and value not in caplog.text

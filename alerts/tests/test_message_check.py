"""The template check refuses what a phisher's message would say: a request for a password or a
code, personal data, links anywhere but the answer page and the official domain, phone numbers
outside {support}; and wants the disclaimer and the answer link, within the channel's length."""

import pytest

from alerts.notifications.checks import has_disclaimer, secret_requests, template_check

OFFICIAL = "acme-bank.example"
DISCLAIMER = "{tenant} staff will never ask you for a code or password."
GOOD_BODY = "We noticed {what} on your {tenant} account. Not you? {link} Help: {support}. " + DISCLAIMER


def check(
    body=GOOD_BODY, *, channel="email", subject="{tenant}: new sign-in", kind="login", locale="en", domain=OFFICIAL
):
    if channel in ("sms", "voice"):
        subject = ""
    return template_check(
        alert_type=kind, channel=channel, locale=locale, subject=subject, body=body, official_domain=domain
    )


def body_errors(result) -> str:
    return " | ".join(result.errors.get("body", []))


def test_a_good_template_passes_on_every_channel_that_takes_a_link():
    for channel in ("email", "sms", "push"):
        assert check(channel=channel).errors == {}, channel


# --- Requests for a password or a code, and the disclaimer -----------------------------------

REQUESTS = [
    "Reply with the code we just sent you.",
    "Send us your code to confirm it was you.",
    "Enter your password below to unlock your account.",
    "Please tell our agent the 6-digit code when they call.",
    "What is your password?",
    "We need your one-time code to stop the payment.",
    "Confirm your PIN by replying to this message.",
    "Don't forget to send us your code.",
    "Never share your code with anyone except us: reply with it now.",
    "Never share your code with anyone but us.",
    "We will never ask for your password, but please reply with the code.",
    "Our agent will call you and ask for your code.",
    "Reply with your c0de.",
    "Send your p a s s w o r d to support.",
    "Texte us the OTP.".replace("Texte", "Text"),
    "Envoyez-nous le code reçu par SMS.",
    "Répondez avec votre mot de passe.",
    "Responda con su código.",
    "Envíenos su contraseña.",
    "Bitte senden Sie uns Ihren Code.",
    "Informe sua senha ao atendente.",
]


@pytest.mark.parametrize("request_text", REQUESTS)
def test_a_request_for_a_password_or_code_is_refused(request_text):
    result = check(GOOD_BODY + " " + request_text)
    assert "Asks for a password or a code" in body_errors(result), request_text


@pytest.mark.parametrize("request_text", REQUESTS[:6])
def test_a_request_in_the_subject_is_refused_too(request_text):
    result = check(subject=request_text)
    assert any("Asks for a password or a code" in m for m in result.errors.get("subject", [])), request_text


DISCLAIMERS = [
    "{tenant} staff will never ask you for a code or password.",
    "We will never ask for your code or your password.",
    "Nobody from {tenant} will ever ask you for a PIN or a password.",
    "We never ask for codes or passwords.",
    "Le personnel de {tenant} ne vous demandera jamais de code ni de mot de passe.",
    "Nous ne demandons jamais code ni mot de passe.",
    "El personal de {tenant} nunca le pedirá un código ni una contraseña.",
    "Mitarbeiter von {tenant} fragen Sie nie nach einem Code oder Passwort.",
    "A equipe da {tenant} nunca vai pedir sua senha ou código.",
]


@pytest.mark.parametrize("disclaimer", DISCLAIMERS)
def test_the_disclaimer_is_recognised_and_is_not_a_request(disclaimer):
    body = "We noticed {what}. Not you? {link} Help: {support}. " + disclaimer
    assert check(body).errors == {}, disclaimer
    assert has_disclaimer(disclaimer)
    assert secret_requests(disclaimer) == []


ADVICE = [
    "Do not share them with anyone, even someone who says they work for {tenant}.",
    "Never enter your password on a page you opened from a message.",
    "Open the {tenant} app, or type the official website address yourself, and change your password.",
    "If you received a sign-in code you did not ask for, keep it to yourself.",
    "Not you? Tap {link} and change your password.",
    "You need to change your password.",
    "Reply YES if it was you.",
    "Ne le donnez à personne.",
    "No comparta su código con nadie.",
]


@pytest.mark.parametrize("advice", ADVICE)
def test_advice_about_passwords_and_codes_is_not_a_request(advice):
    assert secret_requests(advice) == [], advice
    assert check(GOOD_BODY + " " + advice).errors == {}, advice


def test_a_message_without_the_disclaimer_is_refused():
    result = check("We noticed {what}. Not you? {link} Help: {support}.")
    assert "staff will never ask for a code or password" in body_errors(result)
    # Naming only one of the two is not the disclaimer.
    assert not has_disclaimer("We will never ask for your password.")


# --- Personal data ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["email", "phone", "name", "first_name", "ip", "address", "external_id", "account"])
def test_placeholders_for_personal_data_do_not_exist(name):
    result = check(GOOD_BODY + f" Hello {{{name}}}.")
    assert f"{{{name}}} would put the customer's personal data in the message" in body_errors(result)


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("{link.__class__}", "is not a placeholder: placeholders are plain names"),
        ("{0}", "is not a placeholder"),
        ("{link!r}", "is not a placeholder"),
        ("{when:>9999}", "is not a placeholder"),
        ("{tenant[0]}", "is not a placeholder"),
        ("{ link }", "without spaces"),
        ("{customer_secret}", "is not a placeholder. Use one of"),
        ("{password}", "would put a secret in the message"),
        ("a lone { brace", "is not closed"),
        ("a lone } brace", "has no opening"),
    ],
)
def test_the_template_language_knows_named_placeholders_only(snippet, message):
    assert message in body_errors(check(GOOD_BODY + " " + snippet))


def test_literal_braces_are_written_doubled():
    assert check(GOOD_BODY + " {{not a placeholder}}").errors == {}


@pytest.mark.parametrize("text", ["Call +44 20 7946 0000 now.", "Call 0800 123 4567.", "Call (212) 555-0199 today."])
def test_phone_numbers_go_through_support_only(text):
    assert "looks like a phone number" in body_errors(check(GOOD_BODY + " " + text))


def test_invisible_characters_are_refused():
    assert "Invisible or control characters (U+200B)" in body_errors(check(GOOD_BODY + " acme\u200bbank"))


# --- Links ------------------------------------------------------------------------------------

REFUSED_LINKS = [
    ("https://evil.example/login", "leads to evil.example"),
    ("Visit evil.example now.", "leads to evil.example"),
    ("www.evil.example", "leads to www.evil.example"),
    ("https://acme-bank.example@evil.example/", "the part before “@” is ignored"),
    ("acme-bank.example@evil.example", "everything before “@” is ignored"),
    ("https://acme-bank.example.evil.example/", "which is not acme-bank.example"),
    ("https://bit.ly/3xYz", "link shorteners hide where a link leads"),
    ("tinyurl.com/acme", "link shorteners"),
    ("https://аcme-bank.example/", "imitates acme-bank.example"),  # Cyrillic а
    ("https://xn--cme-bank-06g.example/", "imitates acme-bank.example"),  # the same in punycode
    ("https://acrne-bank.example/", "imitates acme-bank.example"),  # rn for m
    ("http://acme-bank.example/help", "links must use https"),
    ("https://acme-bank.example:8443/", "port number"),
    ("javascript:alert(1)", "a javascript: link"),
    ("tel:+15550100", "a tel: link"),
    ("mailto:help@evil.example", "a mailto: link"),
    ("Write to help@evil.example.", "leads to evil.example"),
    ("evil。example", "leads to evil.example"),  # an ideographic full stop is a dot to a browser
    ("evil．example", "leads to evil.example"),  # so is a full-width one
    ("https://203.0.113.7/", "an IP address"),
    ("Go to 203.0.113.7 now.", "an IP address"),
    ("https://{link}", "is not a valid address"),  # a link built around a placeholder
    ("{tenant}.com", "leads to x.com"),
    ("{link}evil.example", "leads to xevil.example"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED_LINKS)
def test_links_anywhere_but_the_answer_page_and_the_official_domain_are_refused(text, message):
    assert message in body_errors(check(GOOD_BODY + " " + text)), text


@pytest.mark.parametrize(
    "text",
    [
        "https://acme-bank.example/help",
        "https://www.acme-bank.example/security",
        "help.acme-bank.example",
        "Write to help@acme-bank.example.",
        "HTTPS://ACME-BANK.EXAMPLE/",
    ],
)
def test_links_to_the_official_domain_are_allowed(text):
    assert check(GOOD_BODY + " " + text).errors == {}, text


@pytest.mark.parametrize("text", ["Data: what we saw.", "SMS: a text follows.", "About: this alert.", "File: none."])
def test_a_word_before_a_colon_is_prose_not_a_link(text):
    assert check(GOOD_BODY + " " + text).errors == {}, text


def test_without_an_official_domain_only_the_answer_link_may_be_used():
    result = check(GOOD_BODY + " https://acme-bank.example/help", domain="")
    assert "no official domain is set" in body_errors(result)
    assert check(GOOD_BODY, domain="").errors == {}


# --- Channels ---------------------------------------------------------------------------------


def test_the_answer_link_is_required_where_the_channel_carries_one():
    body = "We noticed {what}. Help: {support}. " + DISCLAIMER
    for channel in ("email", "sms", "push"):
        assert "Add the answer link {link}" in body_errors(check(body, channel=channel)), channel
    assert check(body, channel="sms", kind="test").errors == {}  # a delivery test asks for no answer


def test_a_call_cannot_carry_a_link_and_must_give_support():
    result = check(GOOD_BODY, channel="voice")
    assert "A call cannot carry a link" in body_errors(result)
    assert "Add {support}" in body_errors(check("We noticed {what}. " + DISCLAIMER, channel="voice"))
    assert check("We noticed {what}. A text with a link follows. Help: {support}. " + DISCLAIMER, channel="voice").ok


def test_subjects_where_the_channel_has_one_and_nowhere_else():
    assert "An e-mail needs a subject." in check(subject="").errors["subject"]
    assert "A push needs a title." in check(channel="push", subject=" ").errors["subject"]
    result = template_check(
        alert_type="login", channel="sms", locale="en", subject="Hi", body=GOOD_BODY, official_domain=OFFICIAL
    )
    assert result.errors["subject"] == ["SMS messages have no subject."]
    assert "belongs in the message" in " ".join(check(subject="{tenant} {link}").errors["subject"])


def test_an_unknown_locale_is_refused():
    assert check(locale="english please").errors["locale"]


# --- SMS length -------------------------------------------------------------------------------


def test_an_sms_is_budgeted_with_the_longest_values_and_refused_beyond_two_segments():
    result = check(GOOD_BODY, channel="sms")
    assert result.ok and result.sms.encoding == "GSM-7" and result.sms.segments == 2
    longer = check(GOOD_BODY + " Thank you for banking with us, we value your trust very much indeed.", channel="sms")
    assert longer.sms.segments == 3
    assert "Too long for an SMS: up to 3 segments" in body_errors(longer)


def test_one_emoji_halves_the_room_and_the_message_names_it():
    result = check(GOOD_BODY + " 🔒", channel="sms")
    assert result.sms.encoding == "UCS-2"
    assert result.sms.ucs2_characters == ["🔒"]
    message = body_errors(result)
    assert "uses UCS-2 because of 🔒 (lock)" in message
    assert "67 characters instead of 153" in message


def test_a_curly_quote_names_itself_and_a_euro_sign_stays_gsm7():
    short = "{tenant}: new sign-in. Not you? {link} We never ask for codes or passwords."
    assert check(short, channel="sms").sms.encoding == "GSM-7"
    assert check(short + " Fees: 0€", channel="sms").sms.encoding == "GSM-7"
    straight = check(short.replace("We never", "We'll never"), channel="sms")
    assert (straight.sms.encoding, straight.sms.segments) == ("GSM-7", 2)  # the answer link alone is ~110
    # The same words with a curly apostrophe: UCS-2, and three segments with the longest values.
    curly = check(short.replace("We never", "We’ll never"), channel="sms")
    assert (curly.sms.encoding, curly.sms.ucs2_characters, curly.sms.segments) == ("UCS-2", ["’"], 3)
    assert "because of ’ (right single quotation mark)" in body_errors(curly)

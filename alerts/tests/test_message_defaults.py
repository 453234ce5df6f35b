"""Every built-in message passes the template check, exists for every kind on every channel in
English (the last fallback), and says what the seed article asks: what happened, what to do,
how to reach official support, the answer link (a call says one follows), the disclaimer."""

import pytest

from alerts.models import MessageChannel, MessageKind
from alerts.notifications import placeholders
from alerts.notifications.checks import template_check
from alerts.notifications.defaults import ACTION_NOTICE_KIND, BUILTIN_LOCALES, DEFAULTS, TEST_KIND, default_text
from alerts.notifications.sms import is_gsm7

EVERY = [(locale, kind, channel) for locale in BUILTIN_LOCALES for kind in MessageKind.values
         for channel in MessageChannel.values]  # fmt: skip


# The notice told before a contact change the desk asked for takes effect: built in, not editable.
NOTICES = [(locale, ACTION_NOTICE_KIND, channel) for locale in BUILTIN_LOCALES for channel in MessageChannel.values]


def test_there_is_a_default_for_every_kind_channel_and_builtin_locale():
    assert set(DEFAULTS) == set(EVERY) | set(NOTICES)
    assert len(EVERY) == 2 * 9 * 4


@pytest.mark.parametrize(("locale", "kind", "channel"), NOTICES)
@pytest.mark.parametrize("domain", ["acme-bank.example", ""])
def test_the_action_notice_passes_the_check_and_carries_the_link(locale, kind, channel, domain):
    text = default_text(locale=locale, kind=kind, channel=channel)
    result = template_check(
        alert_type=kind, channel=channel, locale=locale, subject=text.subject, body=text.body, official_domain=domain
    )
    assert result.errors == {}
    names = placeholders.parse(text.body).names
    assert "when" in names and ("link" in names) == (channel != "voice")
    if channel == "sms":
        assert is_gsm7(placeholders.parse(text.body).literal_text())


@pytest.mark.parametrize(("locale", "kind", "channel"), EVERY)
@pytest.mark.parametrize("domain", ["acme-bank.example", ""])
def test_every_default_passes_the_check(locale, kind, channel, domain):
    text = default_text(locale=locale, kind=kind, channel=channel)
    result = template_check(
        alert_type=kind, channel=channel, locale=locale, subject=text.subject, body=text.body, official_domain=domain
    )
    assert result.errors == {}


@pytest.mark.parametrize(("locale", "kind", "channel"), EVERY)
def test_every_default_says_what_happened_and_how_to_answer(locale, kind, channel):
    text = default_text(locale=locale, kind=kind, channel=channel)
    names = placeholders.parse(text.body).names
    if kind == TEST_KIND:
        assert "link" not in names
        return
    assert {"device", "where", "when"} <= names  # what happened: device, approximate place, time
    if channel == "voice":
        assert "link" not in names and "support" in names
        assert "link" in text.body.lower() or "lien" in text.body.lower()  # says that a link follows
    else:
        assert "link" in names
    if channel in ("email", "voice"):
        assert "support" in names
        assert ("1." in text.body and "3." in text.body) or channel == "voice"  # steps, numbered


@pytest.mark.parametrize(
    ("locale", "kind"), [(locale, kind) for locale in BUILTIN_LOCALES for kind in MessageKind.values]
)
def test_default_sms_are_written_in_the_gsm7_alphabet(locale, kind):
    text = default_text(locale=locale, kind=kind, channel="sms")
    assert is_gsm7(placeholders.parse(text.body).literal_text())

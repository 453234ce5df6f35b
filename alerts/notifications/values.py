"""The values a message template's placeholders stand for, phrased for the customer's language and
the channel: what happened, the device, the approximate place, the time in the client's time zone,
the official support contact. Only masked or approximate values exist here: a browser family,
never a device id or user agent; a city and country, never an IP address or coordinates.

Values come from fixed phrases or are cleaned to plain words and capped in length, so a value
cannot carry a link or a phone number into a message (a client's `app_name` or city is data from
outside), and the template check can budget each value's length (`caps_for`).
"""

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import translation
from django.utils.formats import date_format

from alerts.notifications.locales import language_of
from alerts.notifications.sms import gsm7_fold

# The longest each value may be (characters), so that a template's worst case is known at save time;
# SMS and push get shorter forms of the client's name, the place, the time and the support contact.
VALUE_CAPS = {"tenant": 40, "what": 90, "device": 26, "where": 32, "when": 40, "support": 80}
SHORT_CAPS = {**VALUE_CAPS, "tenant": 20, "where": 28, "when": 23, "support": 20}
SHORT_CHANNELS = ("sms", "push")

# The answer link is never cut (a cut link is a broken one), so the check budgets its full length:
# the public address (NOTIFICATION_PUBLIC_URL, at least 32 characters assumed) + "/r/" + the signed
# token + "/". The token (Notification.answer_token: id . nonce : timestamp : signature) is at most
# 10 + 1 + 12 + 1 + 6 + 1 + 43 characters.
ANSWER_TOKEN_MAX = 74
PUBLIC_URL_ASSUMED = 32


def link_budget() -> int:
    from django.conf import settings

    base = (getattr(settings, "NOTIFICATION_PUBLIC_URL", "") or "").rstrip("/")
    return max(len(base), PUBLIC_URL_ASSUMED) + len("/r/") + ANSWER_TOKEN_MAX + len("/")


def caps_for(channel: str) -> dict[str, int]:
    """The longest each value can be on this channel (the link: its budget, none in a call)."""
    caps = SHORT_CAPS if channel in SHORT_CHANNELS else VALUE_CAPS
    return {**caps, "link": 0 if channel == "voice" else link_budget()}


@dataclass(frozen=True)
class Brand:
    """How a tenant's messages name it and send customers to it (alerts.MessageSettings)."""

    name: str
    official_domain: str = ""  # ASCII (IDNA) form, lower case, no scheme
    support_phone: str = ""
    support_url: str = ""
    time_zone: str = "UTC"
    default_locale: str = "en"


@dataclass(frozen=True)
class MessageContext:
    """What a message says happened, as facts (the adapter in content.py reads them off an alert).

    `rule` and `event_type` choose the words for {what}; `details` holds the few type-specific facts
    that phrasing uses (`factor`, `fields`, `app_name`, `channel`), nothing else.
    """

    occurred_at: datetime | None = None
    rule: str = ""
    event_type: str = ""
    details: dict = field(default_factory=dict)
    device: str = ""  # a browser family: "Chrome on Windows" (alerts.rules.agent_family)
    city: str = ""
    country: str = ""  # ISO 3166-1 alpha-2
    answer_url: str = ""
    also: tuple = ()  # (alert type, rule) of the other alerts one coalesced message tells of


# -- Words, per language ------------------------------------------------------------------------

# {what}: follows "We noticed" / "Nous avons remarqué" / "Hemos detectado".
WHAT: dict[str, dict[str, str]] = {
    "en": {
        "new_device": "a sign-in from a device not seen before",
        "location": "a sign-in from a place not seen before",
        "brute_force": "many failed attempts to sign in",
        "rapid_profile_change": "several changes to your contact details in a short time",
        "contact_email": "a change of the email address on your account{now}",
        "contact_phone": "a change of the phone number on your account{now}",
        "contact_both": "a change of the email address and phone number on your account",
        "account_change": "a change of the contact details on your account",
        "account_change_email": "a change of the email address on your account",
        "account_change_phone": "a change of the phone number on your account",
        "transaction_outlier": "a payment much larger than usual",
        "password_changed": "that your password was changed",
        "password_reset": "a request to reset your password",
        "mfa_disabled": "that two-step verification was turned off",
        "mfa_enrolled": "a new two-step verification method",
        "mfa_failures": "several failed two-step verification checks",
        "otp_unrequested": "a sign-in code sent to you that you did not ask for",
        "recovery_requested": "an account recovery request",
        "recovery_completed": "a completed account recovery",
        "third_party": "a new app given access",
        "third_party_named": "the app “{app}” given access",
        "account_takeover": "several security changes in a short time",
        "login": "a sign-in",
        "suspicious": "unusual activity",
        "password": "a change to your password",
        "two_factor": "a change to your two-step verification",
        "recovery": "an account recovery",
        "test": "nothing: this is a test message",
    },
    "fr": {
        "new_device": "une connexion depuis un appareil jamais vu",
        "location": "une connexion depuis un lieu jamais vu",
        "brute_force": "de nombreuses tentatives de connexion échouées",
        "rapid_profile_change": "plusieurs modifications de vos coordonnées en peu de temps",
        "contact_email": "une modification de l'adresse e-mail de votre compte{now}",
        "contact_phone": "une modification du numéro de téléphone de votre compte{now}",
        "contact_both": "une modification de l'adresse e-mail et du numéro de téléphone de votre compte",
        "account_change": "une modification des coordonnées de votre compte",
        "account_change_email": "une modification de l'adresse e-mail de votre compte",
        "account_change_phone": "une modification du numéro de téléphone de votre compte",
        "transaction_outlier": "un paiement bien plus élevé que d'habitude",
        "password_changed": "que votre mot de passe a été modifié",
        "password_reset": "une demande de réinitialisation de votre mot de passe",
        "mfa_disabled": "que la validation en deux étapes a été désactivée",
        "mfa_enrolled": "une nouvelle méthode de validation en deux étapes",
        "mfa_failures": "plusieurs échecs de validation en deux étapes",
        "otp_unrequested": "l'envoi d'un code de connexion que vous n'avez pas demandé",
        "recovery_requested": "une demande de récupération de compte",
        "recovery_completed": "une récupération de compte effectuée",
        "third_party": "une nouvelle application autorisée",
        "third_party_named": "l'application « {app} » autorisée",
        "account_takeover": "plusieurs changements de sécurité en peu de temps",
        "login": "une connexion",
        "suspicious": "une activité inhabituelle",
        "password": "une modification de votre mot de passe",
        "two_factor": "une modification de votre validation en deux étapes",
        "recovery": "une récupération de compte",
        "test": "rien : ceci est un message de test",
    },
    "es": {
        "new_device": "un inicio de sesión desde un dispositivo nuevo",
        "location": "un inicio de sesión desde un lugar nuevo",
        "brute_force": "muchos intentos fallidos de iniciar sesión",
        "rapid_profile_change": "varios cambios en sus datos de contacto en poco tiempo",
        "contact_email": "un cambio de la dirección de correo de su cuenta{now}",
        "contact_phone": "un cambio del número de teléfono de su cuenta{now}",
        "contact_both": "un cambio de la dirección de correo y del número de teléfono de su cuenta",
        "account_change": "un cambio de los datos de contacto de su cuenta",
        "account_change_email": "un cambio de la dirección de correo de su cuenta",
        "account_change_phone": "un cambio del número de teléfono de su cuenta",
        "transaction_outlier": "un pago mucho mayor de lo habitual",
        "password_changed": "que se cambió su contraseña",
        "password_reset": "una solicitud para restablecer su contraseña",
        "mfa_disabled": "que se desactivó la verificación en dos pasos",
        "mfa_enrolled": "un nuevo método de verificación en dos pasos",
        "mfa_failures": "varios fallos de verificación en dos pasos",
        "otp_unrequested": "el envío de un código de acceso que usted no pidió",
        "recovery_requested": "una solicitud de recuperación de cuenta",
        "recovery_completed": "una recuperación de cuenta completada",
        "third_party": "una nueva aplicación con acceso",
        "third_party_named": "la aplicación «{app}» con acceso",
        "account_takeover": "varios cambios de seguridad en poco tiempo",
        "login": "un inicio de sesión",
        "suspicious": "actividad inusual",
        "password": "un cambio de su contraseña",
        "two_factor": "un cambio en su verificación en dos pasos",
        "recovery": "una recuperación de cuenta",
        "test": "nada: este es un mensaje de prueba",
    },
}

WORDS: dict[str, dict[str, str]] = {
    "en": {"on": "on", "unknown_device": "an unknown device", "unknown_place": "an unknown place", "or": "or",
           "and": "and",
           "no_support": "the contact details in the official {tenant} app or website",
           "no_support_short": "the official app"},
    "fr": {"on": "sur", "unknown_device": "un appareil inconnu", "unknown_place": "un lieu inconnu", "or": "ou",
           "and": "et",
           "no_support": "les coordonnées de l'application ou du site officiel de {tenant}",
           "no_support_short": "l'appli officielle"},
    "es": {"on": "en", "unknown_device": "un dispositivo desconocido", "unknown_place": "un lugar desconocido",
           "or": "o", "and": "y", "no_support": "los datos de contacto de la aplicación o el sitio oficial de {tenant}",
           "no_support_short": "la app oficial"},
}  # fmt: skip

# After a contact change's {what}: the new address, masked ("j***@e***"), or a phone's last digits.
NOW_WORDS: dict[str, dict[str, str]] = {
    "en": {"email": ", now {value}", "phone": ", now ending in {value}"},
    "fr": {"email": ", désormais {value}", "phone": ", désormais terminé par {value}"},
    "es": {"email": ", ahora {value}", "phone": ", ahora terminado en {value}"},
}
_MASKED_EMAIL = re.compile(r"^(\w)\*\*\*@(\w)\*\*\*$", re.ASCII)
_MASKED_PHONE_END = re.compile(r"\*\*\*(\d{2})$")


def masked_contact(field: str, masked: str) -> str:
    """The masked form of a new email ("j***@e***") or a phone's last two digits, rebuilt from the
    stored masked value (audit.masking.mask) with nothing but letters, digits, stars and one @: no
    link, address or phone number can form. "" when the stored value is not of that shape."""
    masked = str(masked or "")
    if field == "email" and (found := _MASKED_EMAIL.match(masked)):
        return f"{found.group(1)}***@{found.group(2)}***"
    if field == "phone" and (found := _MASKED_PHONE_END.search(masked)):
        return found.group(1)
    return ""


VALUE_LANGUAGES = tuple(WHAT)

# Voice reads digits one by one: a phone number is spoken in groups, "4 4, 2 0, 7 9 4 6".
_DIGITS_WORDS = {"en": "plus", "fr": "plus", "es": "más"}


def device_cap(locale: str) -> int:
    """The longest {device} can be in this language: every browser and system agent_family names."""
    from alerts.rules.login import _BROWSERS, _SYSTEMS

    words = WORDS[_lang(locale)]
    longest = max(len(f"{browser} {words['on']} {system}") for _, browser in _BROWSERS for _, system in _SYSTEMS)
    return min(VALUE_CAPS["device"], max(longest, len(words["unknown_device"])))


def _lang(locale: str) -> str:
    language = language_of(locale)
    return language if language in WHAT else "en"


def what_key(*, alert_type: str, rule: str = "", event_type: str = "", details: dict | None = None) -> str:
    """Which phrase of WHAT tells what happened."""
    details = details or {}
    if alert_type == "account_change":
        # A notice before a contact-detail change the desk asked for: which contact, never its value.
        field = details.get("field")
        return f"account_change_{field}" if field in ("email", "phone") else alert_type
    if alert_type == "test":
        return alert_type
    if rule == "password_change" or (not rule and alert_type == "password"):
        if event_type == "password.reset_requested":
            return "password_reset"
        return "password_changed" if event_type == "password.changed" else "password"
    if rule == "mfa_change":
        return {"mfa.disabled": "mfa_disabled", "mfa.enrolled": "mfa_enrolled"}.get(event_type, "two_factor")
    if rule == "recovery":
        return {"recovery.requested": "recovery_requested", "recovery.completed": "recovery_completed"}.get(
            event_type, "recovery"
        )
    if rule == "contact_change":
        fields = set(details.get("fields") or []) if isinstance(details.get("fields"), list) else set()
        if {"email", "phone"} <= fields:
            return "contact_both"
        return "contact_phone" if "phone" in fields else "contact_email"
    if rule == "third_party" or (not rule and alert_type == "third_party"):
        return "third_party_named" if clean_words(details.get("app_name", ""), cap=30) else "third_party"
    if rule in WHAT["en"]:
        return rule
    if alert_type in WHAT["en"]:
        return alert_type
    return {"two_factor": "two_factor", "location": "location", "account_takeover": "account_takeover"}.get(
        alert_type, "suspicious"
    )


def what_phrases(*, alert_type: str, locale: str) -> list[str]:
    """Every phrase {what} may take for this alert type (the check budgets the longest)."""
    lang = _lang(locale)
    keys = {
        "login": ["new_device", "login"],
        "location": ["location", "login"],
        "suspicious": [
            "brute_force",
            "rapid_profile_change",
            "transaction_outlier",
            "mfa_failures",
            "suspicious",
            "contact_email",
            "contact_phone",
            "contact_both",
        ],
        "password": ["password_changed", "password_reset", "password"],
        "two_factor": ["mfa_disabled", "mfa_enrolled", "mfa_failures", "otp_unrequested", "two_factor"],
        "recovery": ["recovery_requested", "recovery_completed", "recovery"],
        "third_party": ["third_party", "third_party_named"],
        "account_takeover": ["account_takeover"],
        "test": ["test"],
        "account_change": ["account_change", "account_change_email", "account_change_phone"],
    }.get(alert_type, ["suspicious"])
    longest_now = max((NOW_WORDS[lang][f].replace("{value}", "x***@x***") for f in ("email", "phone")), key=len)
    return [WHAT[lang][key].replace("{app}", "x" * 30).replace("{now}", longest_now) for key in keys]


_CLEAN = re.compile(r"[^\w\s'’\-]", re.UNICODE)


def clean_words(text: str, *, cap: int) -> str:
    """Plain words only: letters, digits, spaces, hyphens and apostrophes; no dots, slashes, @ or
    colons (so no link, address or e-mail can form), no long digit runs (no phone number), at most
    `cap` characters."""
    text = unicodedata.normalize("NFKC", str(text or ""))
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = _CLEAN.sub(" ", text)
    text = re.sub(r"\d{5,}", "", text)
    text = re.sub(r"\s+", " ", text).strip(" -'")
    return text[:cap].rstrip(" -'")


def what_text(*, alert_type: str, locale: str, context: MessageContext, channel: str = "") -> str:
    key = what_key(alert_type=alert_type, rule=context.rule, event_type=context.event_type, details=context.details)
    phrase = WHAT[_lang(locale)][key]
    if "{app}" in phrase:
        phrase = phrase.replace("{app}", clean_words(context.details.get("app_name", ""), cap=30))
    if "{now}" in phrase:
        # What the contact became, masked: the owner of the previous address sees it is not theirs.
        # Not spoken in a call (stars read aloud help nobody).
        field = "phone" if key == "contact_phone" else "email"
        value = masked_contact(field, context.details.get(f"now_{field}", "")) if channel != "voice" else ""
        now = NOW_WORDS[_lang(locale)][field].replace("{value}", value) if value else ""
        phrase = phrase.replace("{now}", now)
    if context.also and channel in ("email", "voice"):
        # One message for several alerts raised together: each said, in e-mail and calls (an SMS or
        # a push has no room for more; its link answers them all the same).
        others = [
            WHAT[_lang(locale)][what_key(alert_type=t, rule=r)].replace("{app}", "").replace("{now}", "")
            for t, r in context.also
        ]
        phrase = f" {WORDS[_lang(locale)]['and']} ".join(dict.fromkeys([phrase, *others]))
    return phrase


def device_text(*, device: str, locale: str) -> str:
    """ "Chrome on Windows" (alerts.rules.agent_family) in the customer's language ("Chrome sur
    Windows"); the browser or the system alone when the other is unknown; never a device id."""
    words = WORDS[_lang(locale)]
    browser, _, system = clean_words(device, cap=60).partition(" on ")
    browser = "" if browser in ("", "Other browser") else browser
    system = "" if system in ("", "other system") else system
    if browser and system:
        text = f"{browser} {words['on']} {system}"
    else:
        text = browser or system or words["unknown_device"]
    return text[: VALUE_CAPS["device"]]


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    from countryinfo import all_countries

    table = {}
    for country in all_countries():  # ~1 s once per process, as alerts.geo.centroids
        try:
            code, name = country.iso(2), country.name()
        except (KeyError, AttributeError, TypeError, ValueError):  # noqa: S112 (a few territories lack one)
            continue
        if code and name:
            table.setdefault(code.upper(), name.title() if name.islower() else name)  # GB: not "Wales"
    return table


def country_name(code: str) -> str:
    """The English name of a country from its ISO code (countryinfo's data, offline), else the code."""
    code = (code or "").upper()
    return _country_names().get(code, code)


def where_cap(locale: str, channel: str) -> int:
    """The longest {where} can be: "City, Country" (or "City, CC") in English, "City (CC)" elsewhere."""
    if _lang(locale) == "en":
        return caps_for(channel)["where"]
    return max(20 + len(" (XX)"), len(WORDS[_lang(locale)]["unknown_place"]))


def where_text(*, city: str, country: str, locale: str) -> str:
    """ "Lyon, France" in English; "Lyon (FR)" in other languages (country names are only known in
    English here, and a code reads the same in every language). Never more precise than a city."""
    words = WORDS[_lang(locale)]
    city = clean_words(city, cap=20)
    code = clean_words(country, cap=2).upper() if country and len(country.strip()) == 2 else ""
    if not code and not city:
        return words["unknown_place"]
    if _lang(locale) == "en" and code:
        name = clean_words(country_name(code), cap=60)
        text = f"{city}, {name}" if city else name
        return text if len(text) <= SHORT_CAPS["where"] else (f"{city}, {code}" if city else code)
    if city and code:
        return f"{city} ({code})"
    return city or code


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _zone_label(moment: datetime) -> str:
    label = moment.tzname() or ""
    if label.isalpha():
        return label
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def when_text(*, moment: datetime | None, time_zone: str, locale: str, channel: str) -> str:
    """The time in the client's time zone, named ("CET", else "UTC+05:30"); month names in the
    customer's language. Short for SMS and push, spelled out for email and voice."""
    if moment is None:
        return ""
    local = moment.astimezone(_zone(time_zone))
    pattern = "j M, H:i" if channel in ("sms", "push") else "j F Y, H:i"
    text = _date_text(local.replace(second=0, microsecond=0, tzinfo=None), pattern, _lang(locale))
    return f"{text} {_zone_label(local)}"[: caps_for(channel)["when"]]


@lru_cache(maxsize=4096)
def _date_text(local: datetime, pattern: str, language: str) -> str:
    """A local wall-clock minute (naive: an aware key would equal the same instant in another
    zone) in words. Cached: the messages of a burst of alerts share their minute."""
    with translation.override(language):
        return date_format(local, pattern)


def _spoken_phone(phone: str, locale: str) -> str:
    plus = phone.strip().startswith("+")
    groups = [" ".join(group) for group in re.findall(r"\d+", phone)]
    spoken = ", ".join(groups)
    return f"{_DIGITS_WORDS.get(_lang(locale), 'plus')} {spoken}" if plus else spoken


def support_text(*, brand: Brand, locale: str, channel: str) -> str:
    """The official support contact, as configured for the tenant: a phone number and a page on the
    official domain. Voice speaks the number digit by digit; SMS and push give the number alone
    when there is one (it is shorter than the page's address)."""
    words = WORDS[_lang(locale)]
    phone, url = brand.support_phone.strip(), brand.support_url.strip()
    if channel == "voice":
        if phone:
            return _spoken_phone(phone, locale)
        return words["no_support"].replace("{tenant}", tenant_text(brand, channel))
    page = re.sub(r"^https://", "", url).rstrip("/")
    if channel in SHORT_CHANNELS:
        cap = SHORT_CAPS["support"]
        short = phone if phone and len(phone) <= cap else page if page and len(page) <= cap else ""
        return short or words["no_support_short"]
    if phone and page:
        return f"{phone} {words['or']} {page}"
    return phone or page or words["no_support"].replace("{tenant}", tenant_text(brand, channel))


def tenant_text(brand: Brand, channel: str = "email") -> str:
    """The client's name as customers know it, cut at a word when SMS or push has less room."""
    cap = caps_for(channel)["tenant"]
    name = clean_words(brand.name, cap=200) or "Support"
    if len(name) <= cap:
        return name
    cut = name[: cap + 1].rsplit(" ", 1)[0]
    return cut if 0 < len(cut) <= cap else name[:cap]


def message_values(
    *, alert_type: str, channel: str, locale: str, context: MessageContext, brand: Brand
) -> dict[str, str]:
    """The placeholders' values for one message. In an SMS they are folded to the GSM-7 alphabet
    by the caller when the template's own text is GSM-7 (see content.message_build)."""
    place_known = bool(context.city or context.country)
    return {
        "tenant": tenant_text(brand, channel),
        "what": what_text(alert_type=alert_type, locale=locale, context=context, channel=channel),
        "device": device_text(device=context.device, locale=locale),
        "where": where_text(city=context.city, country=context.country, locale=locale)
        if place_known
        else WORDS[_lang(locale)]["unknown_place"],
        "when": when_text(moment=context.occurred_at, time_zone=brand.time_zone, locale=locale, channel=channel),
        "link": "" if channel == "voice" else context.answer_url,  # never cut: a cut link is a broken one
        "support": support_text(brand=brand, locale=locale, channel=channel),
    }


def fold_values(values: dict[str, str]) -> dict[str, str]:
    return {name: gsm7_fold(value) for name, value in values.items()}

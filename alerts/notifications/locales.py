"""Locales as BCP 47 tags ("fr", "fr-CA", "zh-Hant-TW"), and the order in which a message's
language is looked for: the customer's exact locale, its language, the tenant's default locale
(and its language), then English, in which every built-in default exists."""

import re

FALLBACK_LOCALE = "en"

_TAG = re.compile(r"^([a-z]{2,3})(?:-([a-z]{4}))?(?:-([a-z]{2}|\d{3}))?$")


def locale_normalize(value: str) -> str | None:
    """The canonical form of a BCP 47 language tag of the shape language[-Script][-REGION]
    ("fr_ca" → "fr-CA", "ZH-hant-tw" → "zh-Hant-TW"), or None when it is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip().replace("_", "-").lower()
    match = _TAG.match(text)
    if not match or len(text) > 35:
        return None
    language, script, region = match.groups()
    out = language
    if script:
        out += "-" + script.title()
    if region:
        out += "-" + region.upper()
    return out


def language_of(locale: str) -> str:
    normal = locale_normalize(locale or "")
    return normal.split("-")[0] if normal else ""


def _widen(locale: str) -> list[str]:
    """fr-Latn-CA → [fr-Latn-CA, fr-Latn, fr]."""
    parts = locale.split("-")
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]


def locale_chain(locale: str, *, tenant_default: str = "") -> list[str]:
    chain: list[str] = []
    for candidate in (locale, tenant_default, FALLBACK_LOCALE):
        normal = locale_normalize(candidate or "")
        if normal:
            chain.extend(tag for tag in _widen(normal) if tag not in chain)
    return chain

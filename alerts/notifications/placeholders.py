"""The template language tenant admins write in: text with named placeholders, nothing else.

    We noticed {what} on your {tenant} account. Was this you? {link}

Why not Django's template language or `str.format`: both reach into the objects they are given.
Django templates follow attribute and key lookups and run filters and tags (`{{ customer.email }}`,
`{% include %}`), and `str.format` follows attributes and indexes (`{link.__class__}`, `{0[x]}`)
and takes format specs that can pad a value to any width. A template here is written by a tenant
admin and sent to thousands of customers, so its language can do exactly one thing: put one of
a few prepared strings where a name stands. The parser below knows `{name}` with a name from the
list, `{{` and `}}` for literal braces, and refuses everything else with a message; rendering
substitutes strings from a dict of strings, so no object is ever in reach.
"""

import re
from dataclasses import dataclass

# Every placeholder there is, with what it holds. Only masked or approximate values exist.
PLACEHOLDERS: dict[str, str] = {
    "tenant": "the client's name, as customers know it",
    "what": "what happened, in a few words",
    "device": "the browser and system (e.g. Chrome on Windows), never a device id",
    "where": "the approximate place (city and country), never an IP address",
    "when": "the date and time, in the client's time zone",
    "link": "the signed “Was this you?” answer link",
    "support": "the client's official support contact",
}

# Names an admin might reach for that would put personal data (or a secret) in a message.
PERSONAL: dict[str, str] = {
    name: "the customer's personal data"
    for name in (
        "email", "email_address", "phone", "phone_number", "mobile", "name", "full_name", "first_name", "last_name",
        "display_name", "customer", "customer_name", "user", "username", "account", "account_id", "account_number",
        "external_id", "address", "postal_address", "street", "postcode", "zip", "ip", "ip_address", "dob",
        "birthday", "date_of_birth", "ssn", "iban", "card", "card_number", "pan", "balance", "amount", "payee",
        "device_id", "session_id", "user_agent", "lat", "lon", "latitude", "longitude", "city",
    )
} | {name: "a secret" for name in ("password", "code", "otp", "pin", "token", "secret", "cvv")}  # fmt: skip

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Literal:
    text: str


@dataclass(frozen=True)
class Field:
    name: str
    start: int  # where `{name}` stands in the template's text
    end: int


Part = Literal | Field


@dataclass(frozen=True)
class Parsed:
    parts: tuple[Part, ...]
    errors: tuple[str, ...]

    @property
    def names(self) -> set[str]:
        return {part.name for part in self.parts if isinstance(part, Field)}

    def literal_text(self, stand_in: str = "") -> str:
        return "".join(part.text if isinstance(part, Literal) else stand_in for part in self.parts)


def _shown(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "…"


def parse(text: str) -> Parsed:
    """Split `text` into literal text and placeholders; every problem found, as messages."""
    parts: list[Part] = []
    errors: list[str] = []
    buffer: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "{" and text.startswith("{{", i):
            buffer.append("{")
            i += 2
        elif ch == "}" and text.startswith("}}", i):
            buffer.append("}")
            i += 2
        elif ch == "{":
            close = text.find("}", i + 1)
            opening = text.find("{", i + 1)
            if close == -1 or (opening != -1 and opening < close):
                errors.append("A “{” is not closed. Write {{ for a literal brace.")
                buffer.append(ch)
                i += 1
                continue
            inner = text[i + 1 : close]
            error = _field_error(inner)
            if error:
                errors.append(error)
            else:
                if buffer:
                    parts.append(Literal("".join(buffer)))
                    buffer = []
                parts.append(Field(inner, i, close + 1))
            i = close + 1
        elif ch == "}":
            errors.append("A “}” has no opening “{”. Write }} for a literal brace.")
            buffer.append(ch)
            i += 1
        else:
            buffer.append(ch)
            i += 1
    if buffer:
        parts.append(Literal("".join(buffer)))
    return Parsed(tuple(parts), tuple(dict.fromkeys(errors)))


def _field_error(inner: str) -> str | None:
    allowed = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    name = inner.strip()
    if not _NAME.fullmatch(name):
        return (
            f"“{{{_shown(inner)}}}” is not a placeholder: placeholders are plain names, without dots, "
            f"brackets, spaces or formats. Use one of {allowed}."
        )
    if name != inner:
        return f"Write {{{name}}} without spaces inside the braces."
    key = name.lower()
    if key in PERSONAL:
        what = PERSONAL[key]
        return (
            f"{{{name}}} would put {what} in the message. Messages carry only masked or approximate values: {allowed}."
        )
    if name not in PLACEHOLDERS:
        return f"{{{name}}} is not a placeholder. Use one of {allowed}."
    return None


def render(parsed: Parsed, values: dict[str, str]) -> str:
    """The text with each placeholder replaced by its value (a string; missing ones by nothing)."""
    return "".join(part.text if isinstance(part, Literal) else str(values.get(part.name, "")) for part in parsed.parts)

"""Strict validation of event bodies, as `contracts/events.md` says.

Hand-written rather than DRF serializers: types are strict (a number is not a string, "true" is
not a boolean), every error carries the item's index and a dotted field path, and a 1,000-event
batch validates in a few milliseconds. Unknown fields are ignored (the contract only grows).
"""

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.core.validators import EmailValidator
from django.utils import timezone

from alerts.models import EventType

EVENT_TYPES = frozenset(EventType.values)
FUTURE_TOLERANCE = timedelta(minutes=5)
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
AMOUNT = re.compile(r"^-?[0-9]{1,18}(\.[0-9]{1,8})?$")
CHANNELS = ("email", "sms", "push", "voice")
# Control characters (NUL cannot even be stored by PostgreSQL); tab and newlines are allowed.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_email = EmailValidator()

# Context fields: name -> (kind, max length or bounds). Type-specific ones are accepted on any type.
CONTEXT_STRINGS = {
    "user_agent": 1000, "device_id": 200, "session_id": 200, "method": 40, "reason": 40, "initiated_by": 40,
    "channel": 40, "factor": 40, "app_name": 200, "app_id": 200, "payee": 200,
}  # fmt: skip


class InvalidFieldError(Exception):
    def __init__(self, field: str, message: str):
        self.field, self.message = field, message


@dataclass
class ValidEvent:
    id: str
    type: str
    occurred_at: datetime
    account: dict
    context: dict
    ip: str | None = None


@dataclass
class Result:
    events: list[ValidEvent] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


def _string(value, path: str, *, max_length: int, min_length: int = 0) -> str:
    if not isinstance(value, str):
        raise InvalidFieldError(path, "must be a string")
    if not (min_length <= len(value) <= max_length):
        raise InvalidFieldError(path, f"must be {min_length} to {max_length} characters long")
    if CONTROL.search(value):
        raise InvalidFieldError(path, "must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape
        raise InvalidFieldError(path, "must be valid Unicode") from None
    return value


def _object(value, path: str) -> dict:
    if not isinstance(value, dict):
        raise InvalidFieldError(path, "must be an object")
    return value


def _number(value, path: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidFieldError(path, "must be a number")
    if not (low <= value <= high):
        raise InvalidFieldError(path, f"must be between {low} and {high}")
    return float(value)


def _string_list(value, path: str, *, max_items: int, max_length: int) -> list[str]:
    if not isinstance(value, list):
        raise InvalidFieldError(path, "must be a list of strings")
    if len(value) > max_items:
        raise InvalidFieldError(path, f"must have at most {max_items} items")
    return [_string(item, f"{path}.{i}", max_length=max_length, min_length=1) for i, item in enumerate(value)]


class InvalidTimestampError(ValueError):
    pass


RFC3339_EXAMPLE = "must be an RFC 3339 timestamp, e.g. 2026-11-21T10:15:00Z"
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# PostgreSQL stores offsets up to 15:59 (Python takes up to 23:59); RFC 3339 has whole minutes only.
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)
UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def rfc3339_parse(value, *, now: datetime | None = None, future_tolerance: timedelta = FUTURE_TOLERANCE) -> datetime:
    """The one parser of client timestamps: an RFC 3339 string with an offset, from 2000 on and not
    more than `future_tolerance` ahead of `now`, with an offset PostgreSQL can store. Returns it in
    UTC; raises InvalidTimestampError with a message for the client."""
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidTimestampError(RFC3339_EXAMPLE)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidTimestampError(RFC3339_EXAMPLE) from None
    if moment.tzinfo is None or "T" not in value.upper():
        raise InvalidTimestampError("must be an RFC 3339 timestamp with a time zone offset")
    offset = moment.utcoffset()
    if offset.seconds % 60 or offset.microseconds or abs(offset) > MAX_UTC_OFFSET:
        raise InvalidTimestampError("must have a UTC offset in whole minutes between -15:59 and +15:59")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 pushed past the calendar by the offset
        moment = EARLIEST - timedelta(days=1) if moment.year < 2000 else datetime.max.replace(tzinfo=UTC)
    if moment < EARLIEST:
        raise InvalidTimestampError("must not be before 2000-01-01T00:00:00Z")
    if moment > (now or timezone.now()) + future_tolerance:
        raise InvalidTimestampError(f"is more than {int(future_tolerance.total_seconds()) // 60} minutes in the future")
    return moment


def unix_seconds_parse(text: str) -> int | None:
    """Unix seconds in ASCII digits (a header), or None. `"²".isdigit()` is true but int() fails."""
    return int(text) if UNIX_SECONDS.fullmatch(text) else None


def _timestamp(value, path: str, now: datetime) -> datetime:
    try:
        return rfc3339_parse(value, now=now)
    except InvalidTimestampError as exc:
        raise InvalidFieldError(path, str(exc)) from None


def _account(value, path: str) -> dict:
    raw = _object(value, path)
    account = {"external_id": _string(raw.get("external_id"), f"{path}.external_id", max_length=128, min_length=1)}
    if "email" in raw and raw["email"] is not None:
        email = _string(raw["email"], f"{path}.email", max_length=254)
        if email:
            try:
                _email(email)
            except Exception:
                raise InvalidFieldError(f"{path}.email", "must be an email address") from None
        account["email"] = email
    if "phone" in raw and raw["phone"] is not None:
        phone = _string(raw["phone"], f"{path}.phone", max_length=16)
        if phone and not E164.match(phone):
            raise InvalidFieldError(f"{path}.phone", "must be an E.164 number, e.g. +14155550100")
        account["phone"] = phone
    if "display_name" in raw and raw["display_name"] is not None:
        account["display_name"] = _string(raw["display_name"], f"{path}.display_name", max_length=200)
    if "locale" in raw and raw["locale"] is not None:
        locale = _string(raw["locale"], f"{path}.locale", max_length=35)
        if locale and not BCP47.match(locale):
            raise InvalidFieldError(f"{path}.locale", "must be a BCP 47 language tag, e.g. en-GB")
        account["locale"] = locale
    if "channels" in raw and raw["channels"] is not None:
        channels = _object(raw["channels"], f"{path}.channels")
        clean = {}
        for name in CHANNELS:
            if name in channels:
                if not isinstance(channels[name], bool):
                    raise InvalidFieldError(f"{path}.channels.{name}", "must be true or false")
                clean[name] = channels[name]
        account["channels"] = clean
    return account


def _context(value, path: str) -> tuple[dict, str | None]:
    raw = _object(value, path)
    context: dict = {}
    ip = None
    if raw.get("ip") is not None:
        text = _string(raw["ip"], f"{path}.ip", max_length=45)
        try:
            ip = str(ipaddress.ip_address(text))
        except ValueError:
            raise InvalidFieldError(f"{path}.ip", "must be an IPv4 or IPv6 address") from None
        context["ip"] = ip
    for name, max_length in CONTEXT_STRINGS.items():
        if raw.get(name) is not None:
            context[name] = _string(raw[name], f"{path}.{name}", max_length=max_length)
    if raw.get("geo") is not None:
        geo_raw = _object(raw["geo"], f"{path}.geo")
        geo = {}
        if geo_raw.get("country") is not None:
            country = _string(geo_raw["country"], f"{path}.geo.country", max_length=2)
            if not COUNTRY.match(country):
                raise InvalidFieldError(f"{path}.geo.country", "must be an ISO 3166-1 alpha-2 code, e.g. FR")
            geo["country"] = country
        if geo_raw.get("city") is not None:
            geo["city"] = _string(geo_raw["city"], f"{path}.geo.city", max_length=100)
        if ("lat" in geo_raw) != ("lon" in geo_raw):
            raise InvalidFieldError(f"{path}.geo", "lat and lon go together")
        if "lat" in geo_raw:
            geo["lat"] = _number(geo_raw["lat"], f"{path}.geo.lat", -90, 90)
            geo["lon"] = _number(geo_raw["lon"], f"{path}.geo.lon", -180, 180)
        context["geo"] = geo
    if raw.get("fields") is not None:
        context["fields"] = _string_list(raw["fields"], f"{path}.fields", max_items=50, max_length=64)
    if raw.get("scopes") is not None:
        context["scopes"] = _string_list(raw["scopes"], f"{path}.scopes", max_items=200, max_length=200)
    if raw.get("amount") is not None:
        amount = _string(raw["amount"], f"{path}.amount", max_length=30)
        try:
            if not AMOUNT.match(amount):
                raise InvalidOperation
            Decimal(amount)
        except InvalidOperation:
            raise InvalidFieldError(f"{path}.amount", 'must be a decimal string, e.g. "125.50"') from None
        context["amount"] = amount
    if raw.get("currency") is not None:
        currency = _string(raw["currency"], f"{path}.currency", max_length=3)
        if not CURRENCY.match(currency):
            raise InvalidFieldError(f"{path}.currency", "must be an ISO 4217 code, e.g. EUR")
        context["currency"] = currency
    return context, ip


def validate_event(raw, now: datetime | None = None) -> ValidEvent:
    now = now or timezone.now()
    item = _object(raw, "")
    event_id = _string(item.get("id"), "id", max_length=128, min_length=1)
    event_type = _string(item.get("type"), "type", max_length=40)
    if event_type not in EVENT_TYPES:
        raise InvalidFieldError("type", f"unknown event type {event_type!r}")
    occurred_at = _timestamp(item.get("occurred_at"), "occurred_at", now)
    account = _account(item.get("account"), "account")
    context, ip = ({}, None) if item.get("context") is None else _context(item["context"], "context")
    return ValidEvent(id=event_id, type=event_type, occurred_at=occurred_at, account=account, context=context, ip=ip)


def validate_body(body, *, max_batch: int) -> Result:
    """A single event object, or {"events": [...]} with 1 to max_batch events. All or nothing:
    every error of every item is reported, and no event is valid unless all are."""
    result = Result()
    if not isinstance(body, dict):
        result.errors.append(
            {"index": 0, "field": "", "message": 'the body must be an event object or {"events": [...]}'}
        )
        return result
    if "events" in body:
        items = body["events"]
        if not isinstance(items, list) or not (1 <= len(items) <= max_batch):
            result.errors.append(
                {"index": 0, "field": "events", "message": f"must be a list of 1 to {max_batch} events"}
            )
            return result
    else:
        items = [body]
    now = timezone.now()
    for index, raw in enumerate(items):
        try:
            result.events.append(validate_event(raw, now))
        except InvalidFieldError as exc:
            result.errors.append({"index": index, "field": exc.field, "message": exc.message})
    if result.errors:
        result.events = []
    return result

"""What rules say and what the alert book remembers: the types that detection, the rules and
alerts/raising.py share (kept here so that the rules and the book do not import each other)."""

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


@dataclass
class Known:
    """An account's alert as rules see it (escalation, the password rule): stored, raised in
    this chunk, or both (a stored active alert folded again)."""

    rule: str
    type: str
    first_seen: datetime
    last_seen: datetime
    key: str
    alert_id: int | None = None  # None until the book writes it
    active: bool = True


@dataclass
class Finding:
    rule: str
    type: str
    severity: int
    reason: str  # one sentence; may quote client text (an app's name, scopes): cut to fit when stored
    subject: str  # what the alert is about, for de-duplication: the account, or a source address
    evidence: list[int] = field(default_factory=list)
    about_customer: bool = True
    related: list[Known] = field(default_factory=list)  # alerts this one links (escalation)


ELLIPSIS = "…"


def cut(text: str, max_length: int) -> str:
    """`text`, cut with an ellipsis to fit a column of `max_length` characters."""
    return text if len(text) <= max_length else text[: max_length - len(ELLIPSIS)].rstrip() + ELLIPSIS


def cut_key(key: str, max_length: int) -> str:
    """A de-duplication key that fits its column and still tells long keys apart (a digest of
    the whole replaces the tail)."""
    if len(key) <= max_length:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{key[: max_length - len(digest) - 1]}#{digest}"


_EARLIEST = datetime.min.replace(tzinfo=UTC)


def before(at: datetime, window: timedelta) -> datetime:
    """`at - window`, held at the earliest representable time instead of overflowing (an event
    dated in year 1 must not stop detection)."""
    try:
        return at - window
    except OverflowError:
        return _EARLIEST

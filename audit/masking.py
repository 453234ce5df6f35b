"""Personal data never enters the audit trail in clear: before/after values of personal fields
are masked the way the desk masks them (enough to tell values apart, not to read them)."""

from typing import Any

SECRET_FIELDS = {"password", "key", "token", "secret", "api_key", "signing_secret"}


def mask(value: Any) -> Any:
    if value is None or value == "":
        return value
    text = str(value)
    if "@" in text:
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain[:1]}***"
    if len(text) <= 4:
        return "***"
    return f"{text[:1]}***{text[-2:]}"


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if hasattr(value, "pk"):
        return value.pk
    return str(value)


def audit_diff(before: dict, after: dict, *, personal: frozenset[str] | set[str] = frozenset()) -> dict:
    """{"field": {"before": ..., "after": ...}} for the fields whose value changed; personal
    fields masked, secrets reduced to "changed"."""
    changes = {}
    for field in sorted(set(before) | set(after)):
        old, new = _plain(before.get(field)), _plain(after.get(field))
        if old == new:
            continue
        if field in SECRET_FIELDS:
            changes[field] = {"changed": True}
        elif field in personal:
            changes[field] = {"before": mask(old), "after": mask(new)}
        else:
            changes[field] = {"before": old, "after": new}
    return changes

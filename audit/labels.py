"""How the review screens name an event's target: "Alert #2 (password change)", "agent.acme",
"Acme Bank", never "alerts.alert 2". Built from what the event stored (type, id and the model's
`audit_label` then), so a deleted or out-of-scope object still reads well and nothing is fetched."""

import functools

from django.apps import apps

# Objects whose label is their name (a username, a tenant's name): shown alone.
NAMED_BY_LABEL = frozenset({"accounts.user", "accounts.tenant"})
# Names for types that are screens, not models, or whose verbose name reads badly.
TYPE_NAMES = {
    "accounts.user": "Staff user",
    "accounts.tenant": "Tenant",
    "accounts.membership": "Membership",
    "alerts.alert": "Alert",
    "alerts.customer": "Customer",
    "audit.auditevent": "Audit trail",
}


@functools.cache
def type_name(target_type: str) -> str:
    """ "Alert" for "alerts.alert"; the model's verbose name for other models; the raw type for
    anything else (a screen's name)."""
    if target_type in TYPE_NAMES:
        return TYPE_NAMES[target_type]
    try:
        model = apps.get_model(target_type)
    except (LookupError, ValueError):
        return target_type
    name = str(model._meta.verbose_name)
    return name[:1].upper() + name[1:]


def target_display(target_type: str, target_id: str, label: str) -> str:
    """One readable name for a target."""
    if not target_type:
        return label
    if target_type in NAMED_BY_LABEL and label:
        return label
    name = type_name(target_type)
    if not target_id:
        return f"{name} ({label})" if label else name
    text = f"{name} #{target_id}"
    # A label that repeats the id ("customer #5", or an alert recorded as "password alert #2") adds nothing.
    if label and f"#{target_id}" not in label:
        text = f"{text} ({label})"
    return text

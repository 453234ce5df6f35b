"""The audit table's rows, rendered in Python: a page of 50 events through the template engine
cost ~1,500 variable lookups (most of the page's server time; see bench/audit_pages.py)."""

from django import template
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from audit.labels import target_display

register = template.Library()

_EMPTY = "—"


# Metadata that says what a step was about (never personal data: kinds, methods, field names).
_STEP_ABOUT = ("action_kind", "method", "channel", "field")


def _details(event) -> SafeString:
    parts = []
    meta = event.metadata if isinstance(event.metadata, dict) else {}
    step = meta.get("event")
    about = " · ".join(str(meta[key]) for key in _STEP_ABOUT if isinstance(meta.get(key), str) and meta[key])
    if isinstance(step, str) and step:  # a named step of a record's history (a case's: desk.services)
        parts.append(format_html("<div>Step: {}{}</div>", step.replace("_", " "), f" ({about})" if about else ""))
    elif about:
        parts.append(format_html("<div>About: {}</div>", about))
    for field, change in event.changes.items():
        if change.get("changed"):
            parts.append(format_html("<div><strong>{}</strong>: changed</div>", field))
        else:
            before, after = change.get("before"), change.get("after")
            parts.append(
                format_html(
                    "<div><strong>{}</strong>: {} → {}</div>",
                    field,
                    "∅" if before is None else before,
                    "∅" if after is None else after,
                )
            )
    ids = event.metadata.get("ids")
    if ids:
        parts.append(format_html("<div>{} shown</div>", len(ids)))
    if event.reason:
        parts.append(format_html("<div>Reason: {}</div>", event.reason))
    return mark_safe("".join(parts))  # noqa: S308 (every part went through format_html)


def _row(event):
    if event.actor_id:
        # By id: the access log keeps paths, and usernames stay out of logs.
        who = format_html(
            '<a href="{}">{}</a>', reverse("audit:actor_activity", args=[event.actor_id]), event.actor_label
        )
    else:
        who = event.actor_label or _EMPTY
    if event.actor_role:
        who = format_html('{} <span class="muted">({})</span>', who, event.actor_role)
    target = target_display(event.target_type, event.target_id, event.target_label)
    if event.target_type and event.target_id:
        url = reverse("audit:target_history", args=[event.target_type, event.target_id])
        target = format_html('<a href="{}">{}</a>', url, target)
    return (
        event.pk,
        event.occurred_at.isoformat(),
        event.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
        event.tenant.name if event.tenant_id else _EMPTY,
        who,
        event.get_action_display(),
        event.get_origin_display(),
        target,
        _details(event),
        event.ip or "",
        event.request_id[:12],
    )


@register.simple_tag
def audit_rows(events):
    if not events:
        return format_html('<tr><td colspan="8">{}</td></tr>', "No events match.")
    return format_html_join(
        "\n",
        '<tr><td>{}</td><td><time datetime="{}">{}</time></td><td>{}</td><td>{}</td>'
        '<td>{}<br><span class="muted">{}</span></td><td>{}</td><td class="details">{}</td>'
        '<td class="muted">{}<br>{}</td></tr>',
        (_row(event) for event in events),
    )


@register.simple_tag
def audit_filter_fields(form):
    """The filter form's fields, with the markup of accounts/_field.html. Django's widget templates
    render every <option> through includes: the tenant and action lists cost most of a page."""
    out = []
    for field in form.visible_fields():
        value = field.value()
        widget = field.field.widget
        attrs = {"id": field.id_for_label, "name": field.html_name}
        if hasattr(field.field, "choices"):
            chosen = "" if value is None else str(value)
            options = format_html_join(
                "",
                '<option value="{}"{}>{}</option>',
                ((key, " selected" if str(key) == chosen else "", label) for key, label in _choices(field.field)),
            )
            control = format_html('<select id="{}" name="{}">{}</select>', attrs["id"], attrs["name"], options)
        else:
            input_type = widget.attrs.get("type") or getattr(widget, "input_type", "text")
            control = format_html(
                '<input type="{}" id="{}" name="{}" value="{}"{}>',
                input_type,
                attrs["id"],
                attrs["name"],
                "" if value is None else value,
                format_html(' maxlength="{}"', field.field.max_length)
                if getattr(field.field, "max_length", None)
                else "",
            )
        errors = format_html_join("", '<p class="error" role="alert">{}</p>', ((e,) for e in field.errors))
        help_text = format_html('<p class="help">{}</p>', field.help_text) if field.help_text else ""
        out.append(
            format_html(
                '<div class="field{}"><label for="{}">{}</label>{}{}{}</div>',
                " has-error" if field.errors else "",
                attrs["id"],
                field.label,
                control,
                help_text,
                errors,
            )
        )
    return mark_safe("".join(out))  # noqa: S308 (every part went through format_html)


def _choices(field):
    for key, label in field.choices:
        yield ("" if key is None else getattr(key, "value", key)), label

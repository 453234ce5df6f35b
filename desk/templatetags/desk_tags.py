"""The queue page's rows and filter controls, rendered in Python. Through the template engine, a
page of 50 rows (an include, two {% url %}, a {% csrf_token %} and some 40 variable lookups a row)
was about half of the queue page's server time, and the filters' widget templates (an include for
every <option>) a large part of the rest (bench/queue_pages.py --profile queue). The markup is the one the
templates wrote, byte for byte: the rows compared side by side on the bench data when they moved
here, the controls against Django's own rendering of the form (desk/tests/test_queue_page.py).

Every value from the data goes through `escape`; ids are ints, times ISO strings."""

from html import escape as _html_escape

from django import template
from django.forms.widgets import Input, Select
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import get_current_timezone

from alerts.models import Alert
from config.links import reverse_cached

register = template.Library()

# Escaped once, not once a row: the labels, and the values that name CSS classes.
_TYPE_LABELS = {value: _html_escape(str(label)) for value, label in Alert._meta.get_field("type").flatchoices}
_SEVERITY_LABELS = {value: _html_escape(str(label)) for value, label in Alert._meta.get_field("severity").flatchoices}
_STATUS_LABELS = {value: _html_escape(str(label)) for value, label in Alert._meta.get_field("status").flatchoices}
_CLASS_NAMES = {value: _html_escape(str(value)) for value in (*_SEVERITY_LABELS, *_STATUS_LABELS)}

# An id no alert has, to reverse a URL once a page and put each row's id in its place.
_ID = 9_876_543_210


class _IdUrl:
    """reverse(name, kwargs={..., id_kwarg: pk}) for many pks, reversed once: the path's converter
    is <int:...>, so the id is the URL's only varying part."""

    def __init__(self, name: str, id_kwarg: str, **kwargs):
        url = reverse_cached(name, kwargs={**kwargs, id_kwarg: _ID})
        self.head, marker, self.tail = url.rpartition(str(_ID))
        if not marker:  # pragma: no cover (a path without the id: reverse as it says)
            raise ValueError(f"{name}: no {id_kwarg} in {url}")

    def __call__(self, pk: int) -> str:
        return f"{self.head}{pk}{self.tail}"


def escape(value) -> str:
    """What Django's autoescape writes for a plain value (its escape is html.escape, quotes
    included), without the lazy-string and safe-string checks a row's dozen values do not need."""
    return _html_escape(str(value))


def _label(labels: dict, value) -> str:
    found = labels.get(value)
    return escape(value) if found is None else found


def _class_name(value) -> str:
    found = _CLASS_NAMES.get(value)
    return escape(value) if found is None else found


def _customer(alert: Alert) -> str:
    customer = alert.customer
    if customer is None:
        return '<span class="muted">Many accounts</span>'
    contact = customer.email_masked or customer.phone_masked
    return f'<strong>{escape(customer.external_id)}</strong>\n      <span class="contact">{escape(contact)}</span>'


def _sla(alert: Alert, row, tz) -> str:
    if not alert.sla_due_at:
        return '<span class="muted">none</span>'
    due = f"<strong>{escape(row.due)}</strong>" if row.breaching else escape(row.due)
    return f'<time datetime="{alert.sla_due_at.astimezone(tz).isoformat()}" data-testid="sla">{due}</time>'


def _case_link(case, case_url) -> str:
    """The link to the customer's open case that the alert is in (when the reader may see it):
    "Case #N · not me" when the customer's own "No" opened it."""
    if case is None:
        return ""
    disowned = case.opened_via == "customer_answer"
    return (
        f'\n      <a href="{case_url(case.pk)}" class="row-case{" disowned" if disowned else ""}"'
        ' data-testid="row-case"'
        f' title="{escape(case.get_opened_via_display())}">Case #{case.pk}{" · not me" if disowned else ""}</a>'
    )


@register.simple_tag(takes_context=True)
def queue_rows(context) -> SafeString:
    """The rows of the queue's table (`rows`: desk.views.QueueRow), or the line that says why there
    are none, as the page and its rows fragment show them."""
    rows = context["rows"]
    if not rows:
        if context.get("filtered"):
            text = "No active alert matches these filters."
        elif context.get("first_page"):
            text = "No active alerts in this queue. New ones appear here as they are raised."
        else:
            text = "No older alerts."
        return mark_safe(f'\n  <tr class="queue-empty"><td colspan="8">{text}</td></tr>\n  ')  # noqa: S308 (constant text)
    detail_url = _IdUrl("desk:alert_detail", "alert_id")
    case_url = _IdUrl("desk:case_detail", "case_id")
    tz = get_current_timezone()  # as the template's |date filter: local time, ISO 8601
    may_work = context.get("may_work")
    if may_work:
        claim_url = _IdUrl("desk:queue_claim", "alert_id", queue_id=context["queue"].pk)
        token = context.get("csrf_token")
        csrf = (
            f'<input type="hidden" name="csrfmiddlewaretoken" value="{escape(token)}">'
            if token and token != "NOTPROVIDED"
            else ""
        )
        return_query = escape(context.get("return_query", ""))
    out = []
    for row in rows:
        alert = row.alert
        pk = alert.pk
        if row.mine:
            assignee = "<strong>you</strong>"
        elif alert.assignee_id is not None and alert.assignee is not None:
            assignee = escape(alert.assignee.username)
        elif may_work:
            assignee = (
                f'<form method="post" action="{claim_url(pk)}" class="inline-form claim-form">{csrf}'
                f'<input type="hidden" name="return_query" value="{return_query}">'
                f'<button type="submit" class="small-button" data-claim aria-label="Claim alert #{pk}">Claim</button>'
                "</form>"
            )
        else:
            assignee = '<span class="muted">nobody</span>'
        status = (
            ""
            if alert.status == "open"
            else f' <span class="row-status status-{_class_name(alert.status)}">'
            f"{_label(_STATUS_LABELS, alert.status)}</span>"
        )
        reason = escape(alert.reason)
        out.append(
            f'\n  <tr class="queue-row{" breaching" if row.breaching else ""}" data-alert-id="{pk}"'
            ' data-testid="queue-row" tabindex="-1">\n'
            f'    <td class="col-type"><a href="{detail_url(pk)}" class="row-link">{_label(_TYPE_LABELS, alert.type)}'
            f'</a> <span class="muted small alert-no">#{pk}</span>{_case_link(row.case, case_url)}</td>\n'
            f'    <td class="col-sev"><span class="badge severity-{_class_name(alert.severity)}">'
            f"{_label(_SEVERITY_LABELS, alert.severity)}</span>{status}</td>\n"
            f'    <td class="col-customer">{_customer(alert)}</td>\n'
            f'    <td class="col-reason" title="{reason}"><span class="clamp">{reason}</span></td>\n'
            f'    <td class="col-age"><time datetime="{alert.first_seen_at.astimezone(tz).isoformat()}">'
            f"{escape(row.age)}</time></td>\n"
            f'    <td class="col-sla">{_sla(alert, row, tz)}</td>\n'
            f'    <td class="col-assignee" data-testid="assignee">{assignee}</td>\n'
            '    <td class="col-viewing" data-viewing></td>\n'
            "  </tr>\n  "
        )
    return mark_safe("".join(out))  # noqa: S308 (every value from the data went through escape)


def _attrs(attrs: dict) -> str:
    """Django's widgets/attrs.html: ` name="value"`, ` name` for True, nothing for False."""
    return "".join(
        f" {escape(name)}" if value is True else f' {escape(name)}="{escape(value)}"'
        for name, value in attrs.items()
        if value is not False
    )


@register.simple_tag
def form_control(field) -> SafeString:
    """A form field's control, as `{{ form.field }}` renders it, byte for byte: the widget's own
    context (attributes, value, options, which is selected) written without the widget templates,
    whose every <option> is an include (the queue's four filters cost more than its 50 rows; the
    case page's seven selects an eighth of the page). A single-choice select and inputs only; any
    other widget is rendered by Django."""
    widget = field.field.widget
    attrs = field.build_widget_attrs({}, widget)
    if field.auto_id and "id" not in widget.attrs:
        attrs.setdefault("id", field.auto_id)
    if isinstance(widget, Select) and not widget.allow_multiple_selected:
        context = widget.get_context(field.html_name, field.value(), attrs)["widget"]
        if any(group_name for group_name, _, _ in context["optgroups"]):
            return field.as_widget()
        options = "".join(
            f'\n  <option value="{escape(option["value"])}"{_attrs(option["attrs"])}>'
            f"{escape(option['label'])}</option>\n"
            for _, group, _ in context["optgroups"]
            for option in group
        )
        return mark_safe(f'<select name="{escape(context["name"])}"{_attrs(context["attrs"])}>{options}\n</select>')  # noqa: S308 (escaped)
    if isinstance(widget, Input) and type(widget).template_name in _PLAIN_INPUT_TEMPLATES:
        context = widget.get_context(field.html_name, field.value(), attrs)["widget"]
        value = "" if context["value"] is None else f' value="{escape(context["value"])}"'
        name = escape(context["name"])
        return mark_safe(f'<input type="{escape(context["type"])}" name="{name}"{value}{_attrs(context["attrs"])}>')  # noqa: S308 (escaped)
    return field.as_widget()


# Input widgets whose template is input.html itself or includes only it.
_PLAIN_INPUT_TEMPLATES = frozenset({"django/forms/widgets/text.html", "django/forms/widgets/checkbox.html"})

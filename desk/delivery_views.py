"""A tenant's delivery settings page: which alerts its customers are told of, which are critical
(every channel on file, whatever the opt-outs, no quiet hours), the channel order for fallback,
quiet hours, how long the "Was this you?" link works and what happens without an answer.

The same people as the customer-message pages (alerts.notifications.template_selectors: the tenant's
admins and BPO admins); everyone else gets 404. Saved through the audited
alerts.notifications.services.notification_settings_update."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import form_errors_add
from alerts.models import AlertType, EventType, Severity
from alerts.notifications.content import brand_for
from alerts.notifications.models import Channel, NoAnswerAction
from alerts.notifications.selectors import notification_settings_get
from alerts.notifications.services import notification_push_secret_rotate, notification_settings_update
from alerts.notifications.template_selectors import message_tenant_get_for
from alerts.rules import RULES
from audit.decorators import audit_shown, shows_data

CHANNEL_SLOTS = ("first", "second", "third", "fourth")


def _rule_label(key: str) -> str:
    names = {"mfa_change": "MFA change", "mfa_failures": "MFA failures", "otp_unrequested": "Unrequested code"}
    return names.get(key) or key.replace("_", " ").capitalize()


def _critical_choices() -> list[tuple[str, str]]:
    return (
        [(f"type:{value}", label) for value, label in AlertType.choices]
        + [(f"rule:{key}", _rule_label(key)) for key in RULES]
        + [(f"event:{value}", value) for value in EventType.values]
    )


class DeliverySettingsForm(forms.Form):
    notify_types = forms.MultipleChoiceField(
        choices=AlertType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Tell customers of",
        help_text="Alert types that notify the customer on the channels they opted into.",
    )
    min_severity = forms.TypedChoiceField(
        choices=Severity.choices, coerce=int, label="From severity", help_text="Lower alerts are not sent."
    )
    critical = forms.MultipleChoiceField(
        choices=_critical_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Critical",
        help_text="Sent to every channel on file whatever the customer's opt-outs, and never held by quiet hours.",
    )
    first = forms.ChoiceField(choices=Channel.choices, label="First channel")
    second = forms.ChoiceField(choices=Channel.choices, label="Then")
    third = forms.ChoiceField(choices=Channel.choices, label="Then")
    fourth = forms.ChoiceField(choices=Channel.choices, label="Last")
    delivery_window_minutes = forms.IntegerField(
        min_value=1,
        max_value=1440,
        label="Delivery window (minutes)",
        help_text="Not delivered within this: the next channel in the order is tried.",
    )
    quiet_start = forms.TimeField(
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        label="Quiet hours from",
        help_text="Non-critical messages wait until the end of the quiet hours.",
    )
    quiet_end = forms.TimeField(
        required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"), label="Quiet hours until"
    )
    answer_link_days = forms.IntegerField(
        min_value=1, max_value=30, label="Answer link works for (days)", help_text='The "Was this you?" link.'
    )
    answer_window_minutes = forms.IntegerField(
        min_value=5,
        max_value=10_080,
        label="Time to answer (minutes)",
        help_text="Then the step chosen under “Without an answer” is taken.",
    )
    no_answer_action = forms.ChoiceField(choices=NoAnswerAction.choices, label="Without an answer")
    previous_contact_days = forms.IntegerField(
        min_value=1,
        max_value=365,
        label="Tell replaced addresses for (days)",
        help_text="An email or phone replaced this recently is told of recoveries and contact changes.",
    )
    push_webhook_url = forms.URLField(
        required=False,
        assume_scheme="https",
        max_length=200,
        label="Push webhook",
        help_text="Your endpoint that shows a push in your app; each request is signed with the push secret.",
    )
    push_receipts = forms.BooleanField(
        required=False,
        label="Your app confirms delivery",
        help_text="It posts a signed receipt when the push is shown; without one in time, the next channel is tried.",
    )
    drill_every_hours = forms.IntegerField(
        min_value=0, max_value=168, label="Delivery drill every (hours)", help_text="0: no scheduled drill."
    )

    def clean(self):
        data = super().clean()
        order = [data.get(slot) for slot in CHANNEL_SLOTS]
        if all(order) and len(set(order)) != len(order):
            raise ValidationError("Give each channel once in the order.", code="channel_order")
        start, end = data.get("quiet_start"), data.get("quiet_end")
        if (start is None) != (end is None):
            raise ValidationError("Give both ends of the quiet hours, or neither.", code="quiet_hours")
        if start is not None and start == end:
            raise ValidationError("Quiet hours must not start and end at the same time.", code="quiet_hours")
        return data

    def changes(self) -> dict:
        data = dict(self.cleaned_data)
        data["channel_order"] = [data.pop(slot) for slot in CHANNEL_SLOTS]
        return data


def _initial(row) -> dict:
    order = list(row.channel_order or ()) + [c for c in Channel.values if c not in (row.channel_order or ())]
    initial = {name: getattr(row, name) for name in DeliverySettingsForm.base_fields if name not in CHANNEL_SLOTS}
    initial.update(dict(zip(CHANNEL_SLOTS, order, strict=False)))
    return initial


def _page(request, tenant, form, *, status=200, new_secret=""):
    audit_shown(request).page("alerts.notificationsettings", tenant=tenant)
    boxes = list(form["critical"])
    critical_groups = [
        (label, [box for box in boxes if box.data["value"].startswith(f"{prefix}:")])
        for prefix, label in (("type", "Alert types"), ("rule", "Detection rules"), ("event", "Account events"))
    ]
    context = {
        "time_zone": brand_for(tenant).time_zone,
        "tenant": tenant,
        "form": form,
        "slots": [form[slot] for slot in CHANNEL_SLOTS],
        "critical_groups": critical_groups,
        "new_secret": new_secret,
        "receipt_path": reverse("alerts:push_receipt"),
        "has_secret": bool(notification_settings_get(tenant=tenant).push_webhook_secret),
    }
    response = render(request, "desk/notificationsettings_edit.html", context, status=status)
    if new_secret:
        response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
@shows_data
def delivery_settings(request, tenant_id: int):
    tenant = message_tenant_get_for(user=request.user, tenant_id=tenant_id)
    if request.method == "GET":
        return _page(request, tenant, DeliverySettingsForm(initial=_initial(notification_settings_get(tenant=tenant))))
    form = DeliverySettingsForm(request.POST)
    if form.is_valid():
        try:
            notification_settings_update(tenant=tenant, actor=request.user, **form.changes())
        except ValidationError as error:
            form_errors_add(form, error)
        else:
            messages.success(request, "Delivery settings saved.")
            return redirect("desk:delivery_settings", tenant_id=tenant.pk)
    return _page(request, tenant, form, status=400)


@require_POST
@shows_data
def push_secret_rotate(request, tenant_id: int):
    """A new push signing secret, shown on this answer only (no-store); the old one stops working."""
    tenant = message_tenant_get_for(user=request.user, tenant_id=tenant_id)
    secret = notification_push_secret_rotate(tenant=tenant, actor=request.user)
    form = DeliverySettingsForm(initial=_initial(notification_settings_get(tenant=tenant)))
    return _page(request, tenant, form, new_secret=secret)

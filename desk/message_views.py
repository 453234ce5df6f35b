"""The customer-message pages: a tenant's messages per kind, channel and locale, the editor with a
preview that follows the typing (static/js/message_templates.js; without script, "Check and
preview" does the same on the server), and the message settings (name, official domain, support
contact, time zone, default locale).

Tenant admins of the tenant and BPO admins only (alerts.notifications.template_selectors); for
everyone else every URL here answers 404. Writes go through the audited services."""

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.forms import form_errors_add
from alerts.models import MessageChannel, MessageKind, MessageSettings
from alerts.notifications import placeholders
from alerts.notifications.checks import CheckResult
from alerts.notifications.content import Wording, brand_for, message_from
from alerts.notifications.locales import locale_normalize
from alerts.notifications.sms import SmsLength, sms_length
from alerts.notifications.template_selectors import (
    message_locales_for,
    message_template_for_edit,
    message_template_table,
    message_tenant_get_for,
    message_tenant_ids_for,
)
from alerts.notifications.template_services import (
    BODY_MAX,
    TemplateCheckError,
    message_settings_save,
    notification_template_reset,
    notification_template_save,
    template_check_for,
    template_key_clean,
)
from alerts.notifications.values import ANSWER_TOKEN_MAX, PUBLIC_URL_ASSUMED, MessageContext
from audit.decorators import audit_shown, shows_data

SUBJECT_LABELS = {MessageChannel.EMAIL: "Subject", MessageChannel.PUSH: "Title"}


class TemplateForm(forms.Form):
    subject = forms.CharField(max_length=200, required=False, strip=False)
    body = forms.CharField(max_length=BODY_MAX, required=False, strip=False, widget=forms.Textarea(attrs={"rows": 14}))


class LocaleForm(forms.Form):
    locale = forms.CharField(max_length=35, label="Language (BCP 47)")

    def clean_locale(self):
        normal = locale_normalize(self.cleaned_data["locale"])
        if normal is None:
            raise ValidationError("Not a language tag: use a BCP 47 tag such as en, fr or fr-CA.")
        return normal


class MessageSettingsForm(forms.Form):
    display_name = forms.CharField(
        max_length=40, required=False, label="Name customers know", help_text="Shown in every message."
    )
    official_domain = forms.CharField(
        max_length=253,
        required=False,
        label="Official domain",
        help_text="The only domain a message may link to, besides the answer page. e.g. acme-bank.example",
    )
    support_phone = forms.CharField(
        max_length=20, required=False, label="Support phone", help_text="International form, e.g. +44 20 7946 0000."
    )
    support_url = forms.CharField(
        max_length=200, required=False, label="Support page", help_text="An https page on the official domain."
    )
    time_zone = forms.CharField(max_length=64, label="Time zone", help_text="Times in messages, e.g. Europe/Paris.")
    default_locale = forms.CharField(
        max_length=35, label="Default language", help_text="For customers whose language has no message."
    )


# --- The preview -----------------------------------------------------------------------------

# Sample facts per kind: what the preview fills a template with (never a real customer's data).
SAMPLE_FACTS = {
    "login": ("new_device", "login.succeeded", {}),
    "location": ("location", "login.succeeded", {}),
    "suspicious": ("brute_force", "login.failed", {}),
    "password": ("password_change", "password.changed", {}),
    "two_factor": ("mfa_change", "mfa.disabled", {}),
    "recovery": ("recovery", "recovery.requested", {}),
    "third_party": ("third_party", "third_party.authorized", {"app_name": "Budget Planner"}),
    "account_takeover": ("account_takeover", "", {}),
    "test": ("", "", {}),
}


def sample_link() -> str:
    """An answer link as long as the real ones (the public address, /r/, a signed token)."""
    base = (getattr(settings, "NOTIFICATION_PUBLIC_URL", "") or "https://alerts.example.com").rstrip("/")
    token = "1234567.q7Vd2KpL9sXw:1xUuiX:" + "kth8l5FIldspHyUldMFh7vnWaQ7tb13vWjHzd93Ik_Y"
    return f"{base}/r/{token}/"


def sample_context(kind: str, now: datetime) -> MessageContext:
    rule, event_type, details = SAMPLE_FACTS.get(kind, ("", "", {}))
    return MessageContext(
        occurred_at=now,
        rule=rule,
        event_type=event_type,
        details=details,
        device="Chrome on Windows",
        city="Lyon",
        country="FR",
        answer_url=sample_link(),
    )


@dataclass(frozen=True)
class Preview:
    channel: str
    subject_label: str
    subject: str
    body: str
    result: CheckResult
    sample_sms: SmsLength | None
    link_budget: int

    @property
    def errors(self) -> list[tuple[str, str]]:
        labels = {"subject": self.subject_label or "Subject", "body": "Message", "locale": "Language"}
        return [(labels.get(name, name), message) for name, items in self.result.errors.items() for message in items]


def preview_build(*, tenant, kind: str, channel: str, locale: str, subject: str, body: str) -> Preview:
    """The template filled with sample facts, and the check's verdict with this tenant's domain."""
    result = template_check_for(
        tenant=tenant, alert_type=kind, channel=channel, locale=locale, subject=subject, body=body
    )
    brand = brand_for(tenant)
    wording = Wording(subject, body, locale, "draft")
    message = message_from(
        wording=wording, kind=kind, channel=channel, context=sample_context(kind, timezone.now()), brand=brand
    )
    return Preview(
        channel=channel,
        subject_label=SUBJECT_LABELS.get(channel, ""),
        subject=message.title or message.subject,
        body=message.body,
        result=result,
        sample_sms=sms_length(message.body) if channel == MessageChannel.SMS else None,
        link_budget=max(len(sample_link()), PUBLIC_URL_ASSUMED + ANSWER_TOKEN_MAX + 4),
    )


# --- Pages -----------------------------------------------------------------------------------


def _key_or_404(alert_type: str, channel: str, locale: str) -> tuple[str, str, str]:
    try:
        return template_key_clean(alert_type=alert_type, channel=channel, locale=locale)
    except ValidationError:
        raise Http404("No such message.") from None


def messages_home(request):
    """The customer messages of the tenant the user works in (or their first tenant): 404 for a
    user who may edit no tenant's messages."""
    allowed = message_tenant_ids_for(user=request.user)
    if not allowed:
        raise Http404("No such page.")
    current = getattr(request.tenant, "pk", None) if request.tenant else None
    return redirect("desk:message_list", tenant_id=current if current in allowed else allowed[0])


def _settings_initial(tenant) -> dict:
    try:
        saved = tenant.message_settings
    except MessageSettings.DoesNotExist:
        return {"display_name": "", "time_zone": "UTC", "default_locale": "en"}
    return {name: getattr(saved, name) for name in MessageSettingsForm.base_fields}


def _list_page(request, tenant, *, locale_form, settings_form, status=200):
    locale = locale_form.cleaned_data["locale"] if locale_form.is_valid() else brand_for(tenant).default_locale
    rows = message_template_table(tenant=tenant, locale=locale)
    context = {
        "tenant": tenant,
        "locale": locale,
        "locale_form": locale_form,
        "locales": message_locales_for(tenant=tenant),
        "rows": rows,
        "failing": any(cell.failing for row in rows for cell in row.cells),
        "channels": MessageChannel.choices,
        "settings_form": settings_form,
    }
    audit_shown(request).page("alerts.notificationtemplate", tenant=tenant, locale=locale)
    return render(request, "desk/notificationtemplate_list.html", context, status=status)


@require_GET
@shows_data
def message_list(request, tenant_id: int):
    tenant = message_tenant_get_for(user=request.user, tenant_id=tenant_id)
    query = request.GET.copy()
    query.setdefault("locale", brand_for(tenant).default_locale)
    locale_form = LocaleForm(query)
    status = 200 if locale_form.is_valid() else 400
    settings_form = MessageSettingsForm(initial=_settings_initial(tenant))
    return _list_page(request, tenant, locale_form=locale_form, settings_form=settings_form, status=status)


@require_POST
@shows_data
def message_settings_update(request, tenant_id: int):
    tenant = message_tenant_get_for(user=request.user, tenant_id=tenant_id)
    form = MessageSettingsForm(request.POST)
    if form.is_valid():
        try:
            message_settings_save(tenant=tenant, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            form_errors_add(form, error)
        else:
            messages.success(request, "Message settings saved.")
            return redirect("desk:message_list", tenant_id=tenant.pk)
    locale_form = LocaleForm({"locale": request.GET.get("locale") or brand_for(tenant).default_locale})
    return _list_page(request, tenant, locale_form=locale_form, settings_form=form, status=400)


def _edit_page(request, tenant, key, *, form, template, wording, preview, status=200):
    kind, channel, locale = key
    context = {
        "tenant": tenant,
        "kind": kind,
        "kind_label": MessageKind(kind).label,
        "channel": channel,
        "channel_label": MessageChannel(channel).label,
        "locale": locale,
        "form": form,
        "subject_label": SUBJECT_LABELS.get(channel, ""),
        "template": template,
        "wording": wording,
        "preview": preview,
        "placeholders": placeholders.PLACEHOLDERS,
        "list_url": f"{reverse('desk:message_list', kwargs={'tenant_id': tenant.pk})}?{urlencode({'locale': locale})}",
        "preview_url": reverse("desk:message_preview", kwargs={"tenant_id": tenant.pk}),
    }
    audit_shown(request).page("alerts.notificationtemplate", tenant=tenant, kind=kind, channel=channel, locale=locale)
    return render(request, "desk/notificationtemplate_edit.html", context, status=status)


@require_http_methods(["GET", "POST"])
@shows_data
def message_edit(request, tenant_id: int, alert_type: str, channel: str, locale: str):
    """GET: the message as it is sent now, in a form. POST: save it (after the check), or, with
    action=preview, only check and preview it (the page without script)."""
    tenant = message_tenant_get_for(user=request.user, tenant_id=tenant_id)
    key = _key_or_404(alert_type, channel, locale)
    if key[2] != locale:
        return redirect("desk:message_edit", tenant_id=tenant.pk, alert_type=key[0], channel=key[1], locale=key[2])
    kind, channel, locale = key
    template, wording = message_template_for_edit(tenant=tenant, kind=kind, channel=channel, locale=locale)
    if request.method == "GET":
        form = TemplateForm(initial={"subject": wording.subject, "body": wording.body})
        preview = preview_build(
            tenant=tenant, kind=kind, channel=channel, locale=locale, subject=wording.subject, body=wording.body
        )
        return _edit_page(request, tenant, key, form=form, template=template, wording=wording, preview=preview)
    form = TemplateForm(request.POST)
    if not form.is_valid():
        return _edit_page(request, tenant, key, form=form, template=template, wording=wording, preview=None, status=400)
    subject, body = form.cleaned_data["subject"], form.cleaned_data["body"]
    preview = preview_build(tenant=tenant, kind=kind, channel=channel, locale=locale, subject=subject, body=body)
    if request.POST.get("action") == "preview":
        status = 200 if preview.result.ok else 400
        return _edit_page(
            request, tenant, key, form=form, template=template, wording=wording, preview=preview, status=status
        )
    try:
        notification_template_save(
            tenant=tenant,
            actor=request.user,
            alert_type=kind,
            channel=channel,
            locale=locale,
            subject=subject,
            body=body,
        )
    except TemplateCheckError as error:
        form_errors_add(form, error)
        preview = Preview(**{**preview.__dict__, "result": error.result})
        return _edit_page(
            request, tenant, key, form=form, template=template, wording=wording, preview=preview, status=400
        )
    messages.success(request, f"{MessageChannel(channel).label} message for {MessageKind(kind).label.lower()} saved.")
    return redirect("desk:message_edit", tenant_id=tenant.pk, alert_type=kind, channel=channel, locale=locale)


@require_POST
def message_reset(request, tenant_id: int, alert_type: str, channel: str, locale: str):
    """Remove the tenant's wording: the built-in default is sent again (recorded by the service)."""
    tenant = message_tenant_get_for(user=request.user, tenant_id=tenant_id)
    kind, channel, locale = _key_or_404(alert_type, channel, locale)
    if notification_template_reset(tenant=tenant, actor=request.user, alert_type=kind, channel=channel, locale=locale):
        messages.success(request, "Back to the built-in message.")
    return redirect("desk:message_edit", tenant_id=tenant.pk, alert_type=kind, channel=channel, locale=locale)


@require_POST
def message_preview(request, tenant_id: int):
    """The preview fragment for the editor's script: the draft filled with sample facts (no
    customer's data), the check's messages and the SMS segments. Saves nothing."""
    tenant = message_tenant_get_for(user=request.user, tenant_id=tenant_id)
    try:
        kind, channel, locale = template_key_clean(
            alert_type=request.POST.get("alert_type", ""),
            channel=request.POST.get("channel", ""),
            locale=request.POST.get("locale", ""),
        )
    except ValidationError:
        return HttpResponseBadRequest("Unknown alert type, channel or language.")
    form = TemplateForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("The subject or the message is too long.")
    preview = preview_build(
        tenant=tenant,
        kind=kind,
        channel=channel,
        locale=locale,
        subject=form.cleaned_data["subject"],
        body=form.cleaned_data["body"],
    )
    return render(request, "desk/_notificationtemplate_preview.html", {"preview": preview})

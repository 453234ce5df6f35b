"""Every write to a tenant's message templates and message settings: checked, then recorded in
the audit trail with the text before and after, in the same transaction."""

import re
import zoneinfo
from functools import lru_cache
from urllib.parse import urlsplit

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant, User
from accounts.selectors import user_has_tenant_perm
from alerts.models import MessageChannel, MessageKind, MessageSettings, NotificationTemplate
from alerts.notifications.checks import CheckResult, domain_normalize, link_problems, phone_problems, template_check
from alerts.notifications.content import brand_for
from alerts.notifications.locales import locale_normalize
from audit.masking import audit_diff
from audit.models import Action
from audit.services import audit_record

TEMPLATE_CHANGE_PERM = "alerts.change_notificationtemplate"
SETTINGS_CHANGE_PERM = "alerts.change_messagesettings"
BODY_MAX = 4000


class TemplateCheckError(ValidationError):
    """The template check refused a template: `error_dict` per field, and the check's result."""

    def __init__(self, result: CheckResult):
        super().__init__({name: messages for name, messages in result.errors.items()})
        self.result = result


def _require(actor: User | None, tenant: Tenant, perm: str) -> None:
    if actor is not None and not user_has_tenant_perm(user=actor, tenant=tenant, perm=perm):
        raise PermissionDenied("Your role may not change this client's customer messages.")


def template_key_clean(*, alert_type: str, channel: str, locale: str) -> tuple[str, str, str]:
    """The kind, channel and canonical locale, or ValidationError naming the bad one."""
    errors = {}
    if alert_type not in MessageKind.values:
        errors["alert_type"] = "Unknown alert type."
    if channel not in MessageChannel.values:
        errors["channel"] = "Unknown channel."
    normal = locale_normalize(locale)
    if normal is None:
        errors["locale"] = "Not a language tag: use a BCP 47 tag such as en, fr or fr-CA."
    if errors:
        raise ValidationError(errors)
    return alert_type, channel, normal


def template_check_for(
    *, tenant: Tenant, alert_type: str, channel: str, locale: str, subject: str, body: str
) -> CheckResult:
    """The template check with this tenant's official domain; length limits on the fields too."""
    result = template_check(
        alert_type=alert_type,
        channel=channel,
        locale=locale,
        subject=subject,
        body=body,
        official_domain=brand_for(tenant).official_domain,
    )
    if len(subject) > NotificationTemplate._meta.get_field("subject").max_length:
        result.add("subject", "Keep the subject under 200 characters.")
    if len(body) > BODY_MAX:
        result.add("body", f"Keep the message under {BODY_MAX} characters.")
    return result


@transaction.atomic
def notification_template_save(
    *,
    tenant: Tenant,
    actor: User | None,
    alert_type: str,
    channel: str,
    locale: str,
    subject: str,
    body: str,
) -> NotificationTemplate:
    """Save the tenant's wording of one message, after the template check (TemplateCheckError with
    the check's messages per field otherwise). Saving the same text again changes nothing."""
    _require(actor, tenant, TEMPLATE_CHANGE_PERM)
    alert_type, channel, locale = template_key_clean(alert_type=alert_type, channel=channel, locale=locale)
    subject = (subject or "").replace("\r\n", "\n").strip()
    body = (body or "").replace("\r\n", "\n").strip()
    result = template_check_for(
        tenant=tenant, alert_type=alert_type, channel=channel, locale=locale, subject=subject, body=body
    )
    if not result.ok:
        raise TemplateCheckError(result)
    template = (
        NotificationTemplate.objects.select_for_update()
        .filter(tenant=tenant, alert_type=alert_type, channel=channel, locale=locale)
        .first()
    )
    before = {"subject": template.subject, "body": template.body} if template else {}
    after = {"subject": subject, "body": body}
    if template is not None and before == after:
        return template
    now = timezone.now()
    if template is None:
        template = NotificationTemplate.objects.create(
            tenant=tenant,
            alert_type=alert_type,
            channel=channel,
            locale=locale,
            subject=subject,
            body=body,
            updated_by=actor,
            updated_at=now,
        )
        action = Action.CREATE
    else:
        template.subject, template.body, template.updated_by, template.updated_at = subject, body, actor, now
        template.save(update_fields=["subject", "body", "updated_by", "updated_at"])
        action = Action.UPDATE
    audit_record(
        action=action,
        actor=actor,
        tenant=tenant,
        target=template,
        changes=audit_diff(before, after),
        metadata={"alert_type": alert_type, "channel": channel, "locale": locale},
    )
    return template


@transaction.atomic
def notification_template_reset(
    *, tenant: Tenant, actor: User | None, alert_type: str, channel: str, locale: str
) -> bool:
    """Remove the tenant's wording of one message, so that the built-in default is sent again.
    False when there was none."""
    _require(actor, tenant, TEMPLATE_CHANGE_PERM)
    alert_type, channel, locale = template_key_clean(alert_type=alert_type, channel=channel, locale=locale)
    template = (
        NotificationTemplate.objects.select_for_update()
        .filter(tenant=tenant, alert_type=alert_type, channel=channel, locale=locale)
        .first()
    )
    if template is None:
        return False
    audit_record(
        action=Action.DELETE,
        actor=actor,
        tenant=tenant,
        target=template,
        changes=audit_diff({"subject": template.subject, "body": template.body}, {}),
        metadata={"alert_type": alert_type, "channel": channel, "locale": locale},
    )
    template.delete()
    return True


# -- Message settings --------------------------------------------------------------------------

_PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]{4,18}[0-9]$")


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _settings_clean(
    *,
    display_name: str,
    official_domain: str,
    support_phone: str,
    support_url: str,
    time_zone: str,
    default_locale: str,
) -> dict:
    errors: dict[str, str] = {}
    out = {
        "display_name": " ".join((display_name or "").split()),
        "official_domain": "",
        "support_phone": " ".join((support_phone or "").split()),
        "support_url": (support_url or "").strip(),
        "time_zone": (time_zone or "UTC").strip(),
        "default_locale": "en",
    }
    if official_domain and official_domain.strip():
        domain = re.sub(r"^https?://", "", official_domain.strip(), flags=re.I).rstrip("/")
        normal = domain_normalize(domain)
        if normal is None:
            errors["official_domain"] = "Give a domain name such as acme-bank.example (no path, no @)."
        else:
            out["official_domain"] = normal
    if len(out["display_name"]) > 40:
        errors["display_name"] = "Keep the name under 40 characters."
    elif out["display_name"]:
        problems = link_problems(out["display_name"], official=out["official_domain"]) + phone_problems(
            out["display_name"]
        )
        if problems or any(ch in out["display_name"] for ch in "{}<>@/\\"):
            errors["display_name"] = "The name must be a plain name: no link, address, number or braces."
    if out["support_phone"] and not (
        _PHONE.match(out["support_phone"]) and len(re.sub(r"\D", "", out["support_phone"])) >= 6
    ):
        errors["support_phone"] = "Give the number in international form, digits and spaces: +44 20 7946 0000."
    if out["support_url"]:
        try:
            parts = urlsplit(out["support_url"])
            host_ok = parts.hostname is not None
        except ValueError:
            parts, host_ok = None, False
        host = domain_normalize(parts.hostname or "") if host_ok else None
        official = out["official_domain"]
        if parts is None or parts.scheme != "https" or not host or parts.username or parts.password or parts.port:
            errors["support_url"] = "Give an https address on the official domain, e.g. https://acme-bank.example/help."
        elif not official or not (host == official or host.endswith("." + official)):
            errors["support_url"] = "The support page must be on the official domain."
        elif len(out["support_url"]) > 200:
            errors["support_url"] = "Keep the address under 200 characters."
    if out["time_zone"] not in _time_zones():
        errors["time_zone"] = "Unknown time zone: use an IANA name such as Europe/Paris."
    locale = locale_normalize(default_locale or "en")
    if locale is None:
        errors["default_locale"] = "Not a language tag: use a BCP 47 tag such as en, fr or fr-CA."
    else:
        out["default_locale"] = locale
    if errors:
        raise ValidationError(errors)
    return out


@transaction.atomic
def message_settings_save(
    *,
    tenant: Tenant,
    actor: User | None,
    display_name: str = "",
    official_domain: str = "",
    support_phone: str = "",
    support_url: str = "",
    time_zone: str = "UTC",
    default_locale: str = "en",
) -> MessageSettings:
    """Set how the tenant's messages name it and where they send customers (ValidationError per
    field). Templates that link to a domain no longer official stop being sent at once: content
    checks each template again before use and falls back to the built-in default."""
    _require(actor, tenant, SETTINGS_CHANGE_PERM)
    values = _settings_clean(
        display_name=display_name,
        official_domain=official_domain,
        support_phone=support_phone,
        support_url=support_url,
        time_zone=time_zone,
        default_locale=default_locale,
    )
    settings, created = MessageSettings.objects.select_for_update().get_or_create(tenant=tenant)
    before = {} if created else {name: getattr(settings, name) for name in values}
    if not created and before == values:
        return settings
    for name, value in values.items():
        setattr(settings, name, value)
    settings.updated_by, settings.updated_at = actor, timezone.now()
    settings.save()
    tenant.message_settings = settings  # the tenant may hold "none yet" from an earlier read
    audit_record(
        action=Action.CREATE if created else Action.UPDATE,
        actor=actor,
        tenant=tenant,
        target=settings,
        changes=audit_diff(before, values),
    )
    return settings

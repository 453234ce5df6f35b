"""What a customer message says: `message_render(notification=...)` for the delivery core, and
`message_build(...)` under it, which works from plain facts (testable without a notification).

The words come from the tenant's own template for the kind (alert type or delivery test), channel
and customer's locale, else from the built-in default (defaults.py), looked for in the order
locales.locale_chain gives: exact locale, its language, the tenant's default locale, English. A
tenant template is checked again before use (the official domain may have changed since it was
saved); one that fails is not sent, the built-in default is. Messages are plain text: no HTML
in which a link's text could differ from where it leads.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

from alerts.notifications import placeholders
from alerts.notifications.checks import template_check
from alerts.notifications.defaults import ACTION_NOTICE_KIND, TEST_KIND, default_text
from alerts.notifications.locales import language_of, locale_chain
from alerts.notifications.sms import is_gsm7
from alerts.notifications.values import Brand, MessageContext, fold_values, message_values, tenant_text

logger = logging.getLogger(__name__)

__all__ = ["Brand", "Message", "MessageContext", "message_build", "message_render"]


@dataclass(frozen=True)
class Message:
    subject: str  # e-mail subject ("" for SMS, push and voice)
    body: str  # plain text; for voice, the words to speak
    title: str = ""  # push title


@dataclass(frozen=True)
class Wording:
    """The template a message is made from, and where it came from."""

    subject: str
    body: str
    locale: str
    source: str  # "tenant" or "default"
    template_id: int | None = None


def brand_for(tenant) -> Brand:
    """The tenant's message settings, or the defaults (its name, no official domain, UTC, English)."""
    from alerts.models import MessageSettings

    try:
        settings = tenant.message_settings
    except MessageSettings.DoesNotExist:
        settings = None
    return brand_from(tenant, settings)


def brand_from(tenant, settings) -> Brand:
    """The Brand of `tenant` given its MessageSettings row (None: the defaults)."""
    if settings is None:
        return Brand(name=tenant.name)
    return Brand(
        name=settings.display_name or tenant.name,
        official_domain=settings.official_domain,
        support_phone=settings.support_phone,
        support_url=settings.support_url,
        time_zone=settings.time_zone or "UTC",
        default_locale=settings.default_locale or "en",
    )


@lru_cache(maxsize=2048)
def template_passes(kind: str, channel: str, locale: str, subject: str, body: str, official_domain: str) -> bool:
    """Whether a template passes the check (cached: the same few templates are used again and again)."""
    return template_check(
        alert_type=kind, channel=channel, locale=locale, subject=subject, body=body, official_domain=official_domain
    ).ok


def wording_choose(*, own: dict, kind: str, channel: str, chain: Sequence[str], brand: Brand) -> Wording:
    """The first locale of `chain` with a tenant template (`own`: locale → template of this kind
    and channel) that still passes the check, or with a built-in default."""
    for candidate in chain:
        template = own.get(candidate)
        if template is not None:
            if template_passes(kind, channel, candidate, template.subject, template.body, brand.official_domain):
                return Wording(template.subject, template.body, candidate, "tenant", template.pk)
            logger.warning(
                "tenant template fails the check; the built-in default is sent instead",
                extra={"template_id": template.pk},
            )
        text = default_text(locale=candidate, kind=kind, channel=channel)
        if text is not None:
            return Wording(text.subject, text.body, candidate, "default")
    text = default_text(locale="en", kind=kind, channel=channel)
    if text is None:
        raise ValueError(f"no message for {kind!r} on {channel!r}")
    return Wording(text.subject, text.body, "en", "default")


def wording_for(*, tenant, kind: str, channel: str, locale: str, brand: Brand | None = None) -> Wording:
    """The template a message to a customer of `locale` is made from. One query."""
    from alerts.models import NotificationTemplate

    brand = brand or brand_for(tenant)
    chain = locale_chain(locale, tenant_default=brand.default_locale)
    own = {
        t.locale: t
        for t in NotificationTemplate.objects.filter(tenant=tenant, alert_type=kind, channel=channel, locale__in=chain)
    }
    return wording_choose(own=own, kind=kind, channel=channel, chain=chain, brand=brand)


@lru_cache(maxsize=1024)
def _chain(locale: str, tenant_default: str) -> tuple[str, ...]:
    """locale_chain, cached (a send task asks it twice a message, of a handful of locales)."""
    return tuple(locale_chain(locale, tenant_default=tenant_default))


@lru_cache(maxsize=1024)
def _parsed(text: str) -> tuple[placeholders.Parsed, bool]:
    """A template's text parsed, and whether its own text is GSM-7 (cached: a send task renders the
    same few templates again and again; Parsed is immutable)."""
    parsed = placeholders.parse(text)
    return parsed, is_gsm7(parsed.literal_text())


def values_locale(locale: str, wording: Wording) -> str:
    """The locale a message's values (phrases, dates, numbers) are written in: the customer's when
    the wording is in its language (for its regional forms), else the wording's own. A customer whose
    language has no wording gets a message in one language, not English with Spanish phrases in it."""
    if locale and language_of(locale) == language_of(wording.locale):
        return locale
    return wording.locale


def message_from(
    *, wording: Wording, kind: str, channel: str, context: MessageContext, brand: Brand, locale: str = ""
) -> Message:
    """Fill a wording with the values for these facts (the preview uses it with sample facts)."""
    values = message_values(
        alert_type=kind, channel=channel, locale=values_locale(locale, wording), context=context, brand=brand
    )
    (subject, _), (body, body_gsm7) = _parsed(wording.subject), _parsed(wording.body)
    if channel == "sms" and body_gsm7:
        # One Ł in a city would switch the whole SMS to UCS-2 and halve its room: values are folded
        # to GSM-7 when the template's own text is GSM-7, so only the template decides the encoding.
        values = fold_values(values)
    subject_text = placeholders.render(subject, values).strip()
    body_text = placeholders.render(body, values).strip()
    if channel == "push":
        # The title in both: the delivery core's push backend reads `subject` as the title.
        return Message(subject=subject_text, body=body_text, title=subject_text)
    if channel == "email":
        return Message(subject=subject_text, body=body_text)
    return Message(subject="", body=body_text)


def message_build(
    *, tenant, alert_type: str, channel: str, locale: str, context: MessageContext, brand: Brand | None = None
) -> Message:
    """The message for one customer on one channel. `alert_type` is an alert type or "test"."""
    brand = brand or brand_for(tenant)
    wording = wording_for(tenant=tenant, kind=alert_type, channel=channel, locale=locale, brand=brand)
    return message_from(wording=wording, kind=alert_type, channel=channel, context=context, brand=brand, locale=locale)


# -- The adapter for the delivery core ---------------------------------------------------------

EVIDENCE_READ = 20  # the newest events of an alert say what happened (a takeover links many)
_DETAIL_KEYS = ("factor", "fields", "app_name", "channel", "initiated_by")
_EVENT_FIELDS = ("event__id", "event__type", "event__occurred_at", "event__ip", "event__context")


@dataclass
class RenderReads:
    """What rendering a batch of notifications reads from the database, loaded for the whole batch
    in a fixed number of queries (render_reads_for) and valid for one send task: the tenants'
    brands and own templates, the alerts' newest evidence and the alerts coalesced messages tell of."""

    brands: dict[int, Brand] = field(default_factory=dict)  # tenant id ->
    templates: dict[tuple, dict] = field(default_factory=dict)  # (tenant id, kind, channel) -> locale -> template
    evidence: dict[int, list] = field(default_factory=dict)  # alert id -> its newest events, newest first
    told: dict[tuple[int, int], object] = field(default_factory=dict)  # (alert id, event id) -> an older event
    bundles: dict = field(default_factory=dict)  # bundle -> {alert id: (type, rule)}


_ABOUT_NO_ALERT = {"test": TEST_KIND, "action_notice": ACTION_NOTICE_KIND}  # purpose -> the kind of message


def _renderable(notification) -> bool:
    purpose = getattr(notification, "purpose", "alert")
    return purpose in _ABOUT_NO_ALERT or (purpose != "verification" and notification.alert is not None)


def _kind(notification) -> str:
    kind = _ABOUT_NO_ALERT.get(getattr(notification, "purpose", "alert"))
    if kind is None and notification.alert is None:
        raise ValueError("a message about an alert without its alert")
    return kind or notification.alert.type


def _evidence_links(alert_ids, event_ids=None):
    from alerts.models import AlertEvidence

    links = (
        AlertEvidence.objects.filter(alert_id__in=alert_ids).select_related("event").only("alert_id", *_EVENT_FIELDS)
    )
    return links if event_ids is None else links.filter(event_id__in=event_ids)


def render_reads_for(notifications) -> RenderReads:
    """Everything message_render reads for these notifications (their tenant, alert and customer
    loaded with them, as the send task's claim does), in at most five queries whatever their number:
    message settings, templates, evidence, events told that are not among the newest, bundles."""
    from django.db.models import F, Window
    from django.db.models.functions import RowNumber

    from alerts.models import MessageSettings, NotificationTemplate
    from alerts.notifications.models import Notification

    reads = RenderReads()
    # What cannot be rendered is left out here, and fails its own row in message_render, not the batch.
    rows = [n for n in notifications if _renderable(n)]
    if not rows:
        return reads
    tenants = {n.tenant.pk: n.tenant for n in rows}
    own_settings = {s.tenant_id: s for s in MessageSettings.objects.filter(tenant_id__in=tenants)}
    reads.brands = {pk: brand_from(tenant, own_settings.get(pk)) for pk, tenant in tenants.items()}

    wanted, locales = set(), set()
    for n in rows:
        wanted.add((n.tenant.pk, _kind(n), n.channel))
        brand = reads.brands[n.tenant.pk]
        locales.update(_chain(getattr(n.customer, "locale", "") or "", brand.default_locale))
    templates = NotificationTemplate.objects.filter(
        tenant_id__in=tenants,
        alert_type__in={kind for _, kind, _ in wanted},
        channel__in={channel for _, _, channel in wanted},
        locale__in=locales,
    )
    for t in templates:
        if (t.tenant_id, t.alert_type, t.channel) in wanted:
            reads.templates.setdefault((t.tenant_id, t.alert_type, t.channel), {})[t.locale] = t

    alert_ids = {n.alert.pk for n in rows if n.alert is not None}
    if alert_ids:
        newest = _evidence_links(alert_ids).annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("alert_id")],
                order_by=[F("event__occurred_at").desc(), F("event_id").desc()],
            )
        )
        for link in newest.filter(rank__lte=EVIDENCE_READ):
            reads.evidence.setdefault(link.alert_id, []).append(link.event)
        for events in reads.evidence.values():
            events.sort(key=lambda e: (e.occurred_at, e.pk), reverse=True)
        missing = {
            (n.alert.pk, n.event_ref)
            for n in rows
            if n.alert is not None
            and getattr(n, "event_ref", 0)
            and all(e.pk != n.event_ref for e in reads.evidence.get(n.alert.pk, ()))
        }
        if missing:
            for link in _evidence_links({a for a, _ in missing}, {e for _, e in missing}):
                reads.told[(link.alert_id, link.event.pk)] = link.event
    bundles = {n.bundle for n in rows if getattr(n, "bundle", None) is not None}
    if bundles:
        members = Notification.objects.filter(bundle__in=bundles, alert__isnull=False)
        for bundle, alert_id, alert_type, rule in members.values_list(
            "bundle", "alert_id", "alert__type", "alert__rule"
        ):
            reads.bundles.setdefault(bundle, {})[alert_id] = (alert_type, rule)
    return reads


def context_for_alert(
    alert, *, answer_url: str = "", event_ref: int = 0, customer=None, reads: RenderReads | None = None
) -> MessageContext:
    """The facts of a message about `alert`: its newest evidence event (what happened and when; for
    a message about one event, `event_ref`, that event), the device and place of the newest event
    that has them. Never the IP, a device id or the user agent string: a browser family and a city
    and country. A contact change also says what the contact became, masked (`customer`'s)."""
    from alerts.geo import locate
    from alerts.rules import agent_family

    if reads is None:
        events = list(alert.evidence.order_by("-occurred_at", "-pk")[:EVIDENCE_READ])
    else:
        events = reads.evidence.get(alert.pk, [])
    if event_ref:
        told = next((e for e in events if e.pk == event_ref), None)
        if told is None:
            told = reads.told.get((alert.pk, event_ref)) if reads else alert.evidence.filter(pk=event_ref).first()
        if told is not None:
            events = [told, *(e for e in events if e.pk != event_ref)]
    newest = events[0] if events else None
    device, city, country = "", "", ""
    for event in events:
        context = event.context or {}
        if not device and context.get("user_agent"):
            device = agent_family(str(context["user_agent"]))
        geo = context.get("geo") if isinstance(context.get("geo"), dict) else {}
        if not (city or country) and (geo or event.ip):
            city = str(geo.get("city") or "")
            country = str(geo.get("country") or "")
            if not country and event.ip:
                country = locate(event.ip, geo).country or ""  # offline, cached per address
        if device and (city or country):
            break
    details = {}
    if newest is not None:
        details = {key: newest.context[key] for key in _DETAIL_KEYS if key in (newest.context or {})}
    if alert.rule == "contact_change" and customer is not None:
        details["now_email"] = getattr(customer, "email_masked", "") or ""
        details["now_phone"] = getattr(customer, "phone_masked", "") or ""
    return MessageContext(
        occurred_at=newest.occurred_at if newest is not None else alert.last_seen_at,
        rule=alert.rule,
        event_type=newest.type if newest is not None else "",
        details=details,
        device=device,
        city=city,
        country=country,
        answer_url=answer_url,
    )


def bundle_alerts(notification, reads: RenderReads | None = None) -> tuple:
    """(type, rule) of the other alerts a coalesced message tells of (planning._coalesce), oldest first."""
    if reads is not None:
        members = reads.bundles.get(notification.bundle, {})
        return tuple(members[pk] for pk in sorted(members) if pk != notification.alert_id)
    from alerts.models import Alert

    others = Alert.objects.filter(notifications__bundle=notification.bundle).exclude(pk=notification.alert_id)
    return tuple(others.order_by("pk").values_list("type", "rule").distinct())


def message_render(*, notification, reads: RenderReads | None = None) -> Message:
    """The message of one notification (n1's `Notification`: tenant, alert, customer, channel,
    purpose, answer_url()). A delivery test (purpose "test") gets the test wording; a notice to a
    previous contact, the alert's own. Verification codes are not made here: the verification
    service holds the code, which no template may carry. `reads`: what render_reads_for loaded for
    the batch this notification is in (the send task's: no query here); without it, three or four
    queries of its own."""
    purpose = getattr(notification, "purpose", "alert")
    if purpose == "verification":
        raise ValueError("verification messages are composed by the verification service, not from templates")
    if reads is None:
        reads = render_reads_for([notification])
    alert = notification.alert
    channel = notification.channel
    kind = _kind(notification)
    answer_url = "" if channel == "voice" else notification.answer_url()
    if alert is None:  # a delivery test or an action notice is about no alert: the time it was planned
        # An action notice says which contact the change is about (never its value).
        about = getattr(notification, "notice_field", "") if purpose == "action_notice" else ""
        context = MessageContext(
            occurred_at=notification.created_at, answer_url=answer_url, details={"field": about} if about else {}
        )
    else:
        context = context_for_alert(
            alert,
            answer_url=answer_url,
            event_ref=getattr(notification, "event_ref", 0),
            customer=notification.customer,
            reads=reads,
        )
        if getattr(notification, "bundle", None) is not None:
            context = replace(context, also=bundle_alerts(notification, reads))
    locale = getattr(notification.customer, "locale", "") or ""
    tenant_id = notification.tenant.pk
    brand = reads.brands[tenant_id]
    chain = _chain(locale, brand.default_locale)
    own = reads.templates.get((tenant_id, kind, channel), {})
    wording = wording_choose(own=own, kind=kind, channel=channel, chain=chain, brand=brand)
    message = message_from(wording=wording, kind=kind, channel=channel, context=context, brand=brand, locale=locale)
    if purpose == "previous_contact" and channel in PREVIOUS_CONTACT_NOTE:
        # An attacker who changed the contacts first would otherwise get the warning himself; the
        # previous address is told why it still hears from us. (SMS and push have no room for it.)
        language = language_of(values_locale(locale, wording))  # the message's own language
        note = PREVIOUS_CONTACT_NOTE[channel].get(language, PREVIOUS_CONTACT_NOTE[channel]["en"])
        return Message(message.subject, note.replace("{tenant}", tenant_text(brand, channel)) + "\n\n" + message.body)
    return message


PREVIOUS_CONTACT_NOTE = {
    "email": {
        "en": "You get this message because this address was on your {tenant} account until recently.",
        "fr": "Vous recevez ce message car cette adresse était liée à votre compte {tenant} jusqu'à récemment.",
        "es": "Recibe este mensaje porque esta dirección estaba en su cuenta de {tenant} hasta hace poco.",
    },
    "voice": {
        "en": "You get this call because this number was on your {tenant} account until recently.",
        "fr": "Vous recevez cet appel car ce numéro était lié à votre compte {tenant} jusqu'à récemment.",
        "es": "Recibe esta llamada porque este número estaba en su cuenta de {tenant} hasta hace poco.",
    },
}

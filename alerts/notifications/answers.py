"""The customer's answer to "Was this you?": reading a link's token, recording a Yes or a No (from
the public answer page or an SMS reply), the secure-your-account steps, and the escalation of
alerts whose customer did not answer in time.

Decisions (the issue leaves them open):
- Only alert notifications carry an answer: purpose `alert`, and `previous_contact` (a recovery or a
  contact change told to the address it replaced: that customer's "No" matters most). A drill's or a
  verification's token reads as unknown.
- One answer per link. A "No" closes every link of the alert (its other notifications get
  `answered_at`, with no `answer` of their own): the desk has the case, and a second answer could
  only confuse it. A "Yes" closes its own link and resolves the alert, but the alert's other links
  still take a "No" (and nothing else): whoever holds one channel (a swapped SIM, a mailbox taken
  over) must not be able to silence the customer on the others. The last word is a "No", never a "Yes".
- Answers of one alert are taken one at a time (the alert's row lock), so two tabs, or an SMS
  reply and a click, act once.
- A "No" to an alert that an agent already closed cannot reopen it (closed is final in the
  lifecycle), but it is never dropped: it is recorded, the case opens (alert_disowned), and the
  account action is requested as for an open alert.
- An SMS reply is matched to the latest unanswered SMS sent to that number (its keyed digest) for as
  long as that message's link would work: the reply is the link's answer sent another way, and a
  "No" read late must still count.
"""

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from alerts.geo import country_name, locate
from alerts.models import ACTIVE_STATUSES, AccountEvent, Alert, AlertType, Severity
from alerts.notifications.channels import twilio_signature  # noqa: F401 (the SMS webhook's check)
from alerts.notifications.content import brand_for
from alerts.notifications.models import (
    ANSWER_SALT,
    Channel,
    NoAnswerAction,
    Notification,
    NotificationSettings,
    Purpose,
)
from alerts.raising import alerts_announce
from alerts.rules.login import agent_family
from alerts.services import alert_resolve, contact_digest
from alerts.signals import alert_disowned, notice_disowned
from alerts.sla import sla_apply, sla_policies_for
from audit.masking import audit_diff
from audit.models import Action
from audit.services import audit_record

logger = logging.getLogger(__name__)

ANSWERABLE_PURPOSES = (Purpose.ALERT, Purpose.PREVIOUS_CONTACT)
# What a link can answer: an alert's notice, or an action notice (about no alert: its `reference`).
_ANSWERABLE = Q(alert__isnull=False, purpose__in=ANSWERABLE_PURPOSES) | Q(
    purpose=Purpose.ACTION_NOTICE, reference__isnull=False
)
YES, NO = "yes", "no"
ANSWER_LABELS = {YES: "Yes, it was me", NO: "No, it wasn't me"}
CUSTOMER_ROLE = "customer"  # the audit trail's actor_role for what the customer did (no staff user)
MAX_TOKEN_LENGTH = 200


# --- Reading a link's token ------------------------------------------------------------------------


class AnswerTokenInvalid(Exception):  # noqa: N818 (named for what the answer page shows)
    """A "Was this you?" link that cannot be used. `reason`: forged (malformed, signed by someone
    else, or naming no answerable notification: all look the same), expired, or used (answered, or
    closed by another answer to the alert). `notification` is set for expired and used only: the
    holder of a genuine link may be told what became of it."""

    FORGED, EXPIRED, USED = "forged", "expired", "used"

    def __init__(self, reason: str, notification: Notification | None = None):
        super().__init__(reason)
        self.reason = reason
        self.notification = notification


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=ANSWER_SALT)


def _settings_of(tenant_id: int) -> NotificationSettings:
    """The tenant's notification settings, or (unsaved) the defaults."""
    return NotificationSettings.objects.filter(tenant_id=tenant_id).first() or NotificationSettings(tenant_id=tenant_id)


def _token_parts(token) -> tuple[int, str]:
    """(notification id, nonce) of a token signed with this site's key (age not checked yet)."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        raise AnswerTokenInvalid(AnswerTokenInvalid.FORGED)
    try:
        value = _signer().unsign(token)
    except signing.BadSignature:
        raise AnswerTokenInvalid(AnswerTokenInvalid.FORGED) from None
    raw_id, _, nonce = value.partition(".")
    # Only ours are signed, but their shape is checked all the same.
    if not (raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 18) or not nonce:
        raise AnswerTokenInvalid(AnswerTokenInvalid.FORGED)
    return int(raw_id), nonce


def notification_get_by_answer_token(*, token: str) -> Notification:
    """The notification a "Was this you?" token names, checked: signed with this site's key (a
    forgery fails here, before any query: tokens cannot be enumerated), naming an alert notification
    whose nonce matches (a replaced nonce voids old links), younger than its tenant's
    answer_link_days, and not answered or closed. Raises AnswerTokenInvalid (forged, expired, used).
    For the public answer page, which has no user: the token is the access check. The alert and
    tenant come joined; the address is not loaded."""
    notification_id, nonce = _token_parts(token)
    notification = (
        Notification.objects.select_related("tenant", "alert")
        .defer("recipient")
        .filter(_ANSWERABLE, pk=notification_id)
        .first()
    )
    if notification is None or not constant_time_compare(notification.answer_nonce or "\0", nonce):
        raise AnswerTokenInvalid(AnswerTokenInvalid.FORGED)
    days = _settings_of(notification.tenant_id).answer_link_days
    try:
        _signer().unsign(token, max_age=timedelta(days=days))
    except signing.SignatureExpired:
        raise AnswerTokenInvalid(AnswerTokenInvalid.EXPIRED, notification) from None
    if notification.answered_at is not None:
        raise AnswerTokenInvalid(AnswerTokenInvalid.USED, notification)
    return notification


# --- What the page shows ---------------------------------------------------------------------------

WHAT_HAPPENED = {
    AlertType.LOGIN: "a sign-in to your account from a new device",
    AlertType.LOCATION: "a sign-in to your account from a new place",
    AlertType.SUSPICIOUS: "unusual activity on your account",
    AlertType.PASSWORD: "a change of your password",
    AlertType.TWO_FACTOR: "a change to your two-step verification",
    AlertType.RECOVERY: "a request to recover your account",
    AlertType.THIRD_PARTY: "a new app connected to your account",
    AlertType.ACCOUNT_TAKEOVER: "several security changes on your account",
}


class Step:
    """The secure-your-account steps: one sentence each, in plain words, never a link (the customer
    goes to the official app or site by themselves: what a phishing message would ask otherwise)."""

    PASSWORD = "Change your password in the official {tenant} app or website. Open it yourself: do not follow links."
    RESET = "If you cannot sign in, use “Forgot password” in the official {tenant} app or website to set a new one."
    DEVICES = "Check the devices and apps signed in to your account, and remove any you do not recognise."
    APPS = "Check the apps connected to your account, and remove the one you did not connect."
    TWO_FACTOR = "Turn two-step verification back on, or check that it is still on, with your own phone or app."
    CONTACTS = "Check that the email address and phone number on your account are still yours."
    ACTIVITY = "Look through your recent activity and payments, and report anything you did not do."
    NEVER_SHARE = "Never share a code or your password with anyone, even someone who says they work for {tenant}."
    SUPPORT = "Contact {tenant} support through the official app or website if anything looks wrong."
    SUPPORT_NOW = "Contact {tenant} support through the official app or website now: they can lock the account."


# The steps every type ends up with: change the password from the official site or app, check and
# remove unknown devices or apps, two-step verification back on, never share codes, official support.
ESSENTIAL_STEPS = (Step.PASSWORD, Step.DEVICES, Step.TWO_FACTOR, Step.NEVER_SHARE, Step.SUPPORT)

# Per alert type, what to do first; the essentials follow (those not listed already). An alert
# type without an entry gets the essentials alone.
FIRST_STEPS: dict[str, tuple[str, ...]] = {
    AlertType.LOGIN: (Step.PASSWORD, Step.DEVICES),
    AlertType.LOCATION: (Step.PASSWORD, Step.DEVICES),
    AlertType.SUSPICIOUS: (Step.PASSWORD, Step.ACTIVITY),
    AlertType.PASSWORD: (Step.RESET, Step.PASSWORD, Step.CONTACTS),
    AlertType.TWO_FACTOR: (Step.TWO_FACTOR, Step.PASSWORD),
    AlertType.RECOVERY: (Step.SUPPORT_NOW, Step.RESET, Step.CONTACTS),
    AlertType.THIRD_PARTY: (Step.APPS, Step.PASSWORD),
    AlertType.ACCOUNT_TAKEOVER: (Step.SUPPORT_NOW, Step.RESET, Step.CONTACTS, Step.DEVICES),
}


def secure_steps_for(*, alert_type: str, tenant_name: str) -> list[str]:
    """The steps shown after a "No" for an alert of this type, with the tenant's name."""
    first = FIRST_STEPS.get(alert_type, ())
    steps = list(dict.fromkeys([*first, *ESSENTIAL_STEPS]))
    if Step.SUPPORT_NOW in steps:
        steps.remove(Step.SUPPORT)  # said first already
    return [step.format(tenant=tenant_name) for step in steps]


@dataclass(frozen=True)
class AnswerPage:
    """What the answer page shows of a notification's alert: what happened in plain words, roughly
    when, roughly where and on what kind of device; no address, no id, nothing to copy."""

    notification: Notification
    tenant_name: str
    what: str
    when: str
    place: str
    device: str
    previous_contact: bool  # sent to an address that was on the account until recently
    confirmed: bool  # another of the alert's links was answered "Yes": this one takes a "No" only
    answer: str  # this link's own answer ("" if none)
    alert_answer: str  # the alert's answer, by any of its links: "no" if one said no, else "yes", else ""
    steps: list[str]
    support: str
    changing: str = ""  # an action notice: what would change ("The email address on your account"), never a value


def _around(moment: datetime, zone_name: str) -> str:
    """ "Saturday 21 November 2026, around 09:05 UTC": the time rounded down to five minutes, in the
    tenant's time zone."""
    try:
        zone = ZoneInfo(zone_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = moment.astimezone(zone)
    local = local.replace(minute=local.minute - local.minute % 5, second=0, microsecond=0)
    return f"{local:%A} {local.day} {local:%B %Y}, around {local:%H:%M} {local.tzname()}"


def answer_page_for(*, notification: Notification) -> AnswerPage:
    """The answer page's content for a notification read by notification_get_by_answer_token (or
    carried by its AnswerTokenInvalid). Place and device come from the alert's latest evidence:
    the country, and the browser and system families, never an address, a city or a device id."""
    alert = notification.alert
    tenant_name = notification.tenant.name
    if alert is None:
        return _action_notice_page(notification, tenant_name)
    event = (
        AccountEvent.objects.filter(alertevidence__alert_id=alert.pk)
        .only("occurred_at", "ip", "context")
        .order_by("-occurred_at", "-id")
        .first()
    )
    context = event.context if event is not None and isinstance(event.context, dict) else {}
    place = ""
    if event is not None and (event.ip or context.get("geo")):
        geo = context.get("geo") if isinstance(context.get("geo"), dict) else None
        place = country_name(locate(event.ip, geo).country)
    user_agent = context.get("user_agent")
    device = agent_family(user_agent) if isinstance(user_agent, str) and user_agent else ""
    # What the customer is told matches the messages: the tenant's validated message settings
    # (alerts.notifications.content.brand_for) give the time zone and the official support contact.
    brand = brand_for(notification.tenant)
    given = set(Notification.objects.filter(alert_id=alert.pk).exclude(answer="").values_list("answer", flat=True))
    alert_answer = NO if NO in given else YES if YES in given else ""
    return AnswerPage(
        notification=notification,
        tenant_name=tenant_name,
        what=WHAT_HAPPENED.get(alert.type, "a security change on your account"),
        when=_around(event.occurred_at if event is not None else alert.last_seen_at, brand.time_zone),
        place=place,
        device=device,
        previous_contact=notification.purpose == Purpose.PREVIOUS_CONTACT,
        confirmed=alert_answer == YES and not notification.answer,
        answer=notification.answer,
        alert_answer=alert_answer,
        steps=secure_steps_for(alert_type=alert.type, tenant_name=tenant_name),
        support=" · ".join(s for s in (brand.support_phone, brand.support_url) if s),
    )


ACTION_NOTICE_STEPS = (Step.SUPPORT_NOW, Step.CONTACTS, Step.NEVER_SHARE)


# What an action notice's change is about (Notification.notice_field), as its page says it.
NOTICE_CHANGING = {
    "email": "the email address on your account",
    "phone": "the phone number on your account",
    "": "the contact details on your account",
}


def _action_notice_page(notification: Notification, tenant_name: str) -> AnswerPage:
    """The answer page of an action notice: a change of contact details asked for through support,
    saying which contact (the email address, the phone number), never what it would become."""
    changing = NOTICE_CHANGING.get(notification.notice_field, NOTICE_CHANGING[""])
    brand = brand_for(notification.tenant)
    given = set(
        Notification.objects.filter(reference=notification.reference, purpose=Purpose.ACTION_NOTICE)
        .exclude(answer="")
        .values_list("answer", flat=True)
    )
    alert_answer = NO if NO in given else YES if YES in given else ""
    return AnswerPage(
        notification=notification,
        tenant_name=tenant_name,
        what=f"a request to our support team to change {changing}",
        when=_around(notification.created_at, brand.time_zone),
        place="",
        device="",
        previous_contact=False,
        confirmed=alert_answer == YES and not notification.answer,
        answer=notification.answer,
        alert_answer=alert_answer,
        steps=[step.format(tenant=tenant_name) for step in ACTION_NOTICE_STEPS],
        support=" · ".join(s for s in (brand.support_phone, brand.support_url) if s),
        changing=changing[:1].upper() + changing[1:],
    )


@transaction.atomic
def answer_page_record_view(*, notification: Notification) -> None:
    """The answer page was opened: recorded like every view of alert data. Most likely the customer,
    though mail scanners fetch links too (which is why only a POST answers)."""
    audit_record(
        action=Action.VIEW,
        actor_role=CUSTOMER_ROLE,
        tenant=notification.tenant,
        target=notification,
        metadata={"event": "answer_page_viewed", "alert": notification.alert_id},
    )


# --- Recording an answer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerResult:
    notification: Notification
    alert: Alert | None  # None: an action notice's answer
    answer: str
    alert_changed: bool  # resolved ("yes") or raised to critical ("no"); False when it was closed already


def _alert_raise_to_critical(alert: Alert, *, now, actor_role: str, reason: str, metadata: dict) -> bool:
    """Raise a locked, active alert to the highest severity, with the tighter SLA counted from when
    it was raised (as detection does when a fold raises it), audited and announced to the desk once
    this commits. Whether it changed (not when final or critical already)."""
    if alert.status not in ACTIVE_STATUSES or alert.severity >= Severity.CRITICAL:
        return False
    before = alert.severity
    alert.severity, alert.updated_at = Severity.CRITICAL, now
    sla_apply(alert, sla_policies_for(tenant_ids=[alert.tenant_id]), raised_at=alert.created_at)
    alert.save(update_fields=["severity", "updated_at", "first_response_due_at", "resolution_due_at", "sla_due_at"])
    audit_record(
        action=Action.UPDATE,
        actor_role=actor_role,
        tenant=alert.tenant,
        target=alert,
        changes=audit_diff({"severity": before}, {"severity": alert.severity}),
        reason=reason,
        metadata=metadata,
    )
    holder = alert.assignee.username if alert.assignee_id else None
    payload = {"id": alert.pk, "type": alert.type, "severity": alert.severity, "status": alert.status,
               "assignee": holder, "previous_severity": before}  # fmt: skip
    alerts_announce([(alert.tenant_id, "alert.updated", payload)])
    return True


def _answer_record(row: Notification, rows: list[Notification], answer: str) -> tuple[datetime, list[int]]:
    """Record `answer` on `row`, one of the locked `rows` of one subject (an alert, an action notice):
    once per link, and a "Yes" once per subject (AnswerTokenInvalid used); a "No" closes the other
    links. (now, ids of the links closed)."""
    if row.answered_at is not None or (answer == YES and any(r.answer == YES for r in rows)):
        raise AnswerTokenInvalid(AnswerTokenInvalid.USED, row)
    now = timezone.now()
    row.answered_at, row.answer, row.updated_at = now, answer, now
    row.save(update_fields=["answered_at", "answer", "updated_at"])
    closed = []
    if answer == NO:
        closed = [r.pk for r in rows if r.answered_at is None and r.pk != row.pk]
        if closed:
            Notification.objects.filter(pk__in=closed).update(answered_at=now, updated_at=now)
    return now, closed


@transaction.atomic
def notification_answer(
    *, notification_id: int, answer: str, via: str, message_sid: str = "", _bundled: bool = False
) -> AnswerResult:
    """Record the customer's answer to one notification ("yes" or "no"; `via` "link" or "sms") and
    act on it, once: see the module's docstring for the rules. Raises AnswerTokenInvalid (used) when
    this link was answered or closed meanwhile, or when a "Yes" comes after the alert's "Yes";
    ValidationError for another answer.

    "Yes": the alert is resolved as confirmed by the customer (if still active). "No": raised to
    critical, its SLA recomputed, the case opened or updated in this transaction (alert_disowned),
    and the account action requested. Audited with the answer and the notification, as the customer
    (actor_role "customer": there is no staff user)."""
    if answer not in ANSWER_LABELS:
        raise ValidationError({"answer": "Answer yes or no."})
    alert_id, purpose, reference = Notification.objects.filter(pk=notification_id).values_list(
        "alert_id", "purpose", "reference"
    ).first() or (None, None, None)
    if purpose == Purpose.ACTION_NOTICE and reference is not None:
        return _action_notice_answer(notification_id=notification_id, reference=reference, answer=answer, via=via)
    if alert_id is None:
        raise AnswerTokenInvalid(AnswerTokenInvalid.FORGED)
    # The alert's lock takes the answers of one alert one at a time, whatever link or reply they
    # came from; the rows are then read again, as the previous answer left them.
    alert = Alert.objects.select_for_update().select_related("tenant").get(pk=alert_id)
    rows = list(
        Notification.objects.select_for_update()
        .filter(alert_id=alert_id, purpose__in=ANSWERABLE_PURPOSES)
        .defer("recipient")
        .order_by("id")
    )
    row = next((r for r in rows if r.pk == notification_id), None)
    if row is None:
        raise AnswerTokenInvalid(AnswerTokenInvalid.FORGED)
    row.tenant = alert.tenant
    row.alert = alert
    now, closed = _answer_record(row, rows, answer)
    label = ANSWER_LABELS[answer]
    audit_record(
        action=Action.UPDATE,
        actor_role=CUSTOMER_ROLE,
        tenant=alert.tenant,
        target=row,
        changes=audit_diff({"answer": None}, {"answer": answer}),
        reason=f"The customer answered “{label}” to {row.audit_label()} (by {via}).",
        metadata={"event": "customer_answered", "alert": alert.pk, "answer": answer, "via": via, "closed": closed}
        | ({"message_sid": message_sid[:64]} if message_sid else {}),
    )
    if answer == YES:
        changed = alert.status in ACTIVE_STATUSES
        if changed:
            note = f"Confirmed by the customer through {row.audit_label()}."
            alert = alert_resolve(alert=alert, actor=None, note=note)
        if not _bundled:
            _bundle_answer(row, answer=answer, via=via)
        return AnswerResult(notification=row, alert=alert, answer=answer, alert_changed=changed)
    changed = _alert_raise_to_critical(
        alert,
        now=now,
        actor_role=CUSTOMER_ROLE,
        reason=f"The customer answered “{label}” to {row.audit_label()}.",
        metadata={"event": "customer_disowned", "notification": row.pk},
    )
    if alert.status not in ACTIVE_STATUSES:
        # Closed before the customer answered: final, so it stays closed; the case below takes it up.
        logger.warning("a customer disowned an alert that was already closed", extra={"alert": alert.pk})
    # Inside this transaction: the case opens (or takes the alert) atomically with the escalation,
    # and the account actions the tenant enabled for a "No" are requested (the desk's receiver);
    # a receiver that fails undoes the answer, which the customer can then send again.
    alert_disowned.send(sender=Notification, alert_id=alert.pk, notification_id=row.pk, via=via)
    if not _bundled:
        _bundle_answer(row, answer=answer, via=via)
    return AnswerResult(notification=row, alert=alert, answer=answer, alert_changed=changed)


def _bundle_answer(row: Notification, *, answer: str, via: str) -> None:
    """A coalesced message (planning._coalesce) told of several alerts: its answer is each alert's,
    recorded through one of that alert's rows of the bundle, in the answer's transaction, with the
    alert's own rules (a "Yes" after that alert's own "Yes", or a link already closed, changes nothing
    more). Alerts are taken in id order after the answered one's."""
    if row.bundle is None:
        return
    others = (
        Notification.objects.filter(bundle=row.bundle, purpose__in=ANSWERABLE_PURPOSES, answered_at__isnull=True)
        .exclude(alert_id=row.alert_id)
        .order_by("alert_id", "id")
        .values_list("alert_id", "id")
    )
    first: dict[int, int] = {}
    for alert_id, pk in others:
        first.setdefault(alert_id, pk)
    for alert_id, pk in first.items():
        try:
            notification_answer(notification_id=pk, answer=answer, via=f"{via}, one message for several alerts",
                                _bundled=True)  # fmt: skip
        except AnswerTokenInvalid:
            logger.info("a bundled alert had its answer already", extra={"alert": alert_id})


def _action_notice_answer(*, notification_id: int, reference, answer: str, via: str) -> AnswerResult:
    """The answer to an action notice, under the lock of the notice's rows (taken in id order): one
    answer per link, a "No" closes the other links and puts the change on hold (the desk's receiver
    of notice_disowned, in this transaction); a "Yes" is recorded and changes nothing else (the
    change still waits for its hold period: whoever holds one channel cannot hurry it)."""
    rows = list(
        Notification.objects.select_for_update()
        .select_related("tenant")
        .filter(reference=reference, purpose=Purpose.ACTION_NOTICE)
        .defer("recipient")
        .order_by("id")
    )
    row = next((r for r in rows if r.pk == notification_id), None)
    if row is None:
        raise AnswerTokenInvalid(AnswerTokenInvalid.FORGED)
    _, closed = _answer_record(row, rows, answer)
    audit_record(
        action=Action.UPDATE,
        actor_role=CUSTOMER_ROLE,
        tenant=row.tenant,
        target=row,
        changes=audit_diff({"answer": None}, {"answer": answer}),
        reason=f"The customer answered “{ANSWER_LABELS[answer]}” to {row.audit_label()} (by {via}).",
        metadata={"event": "customer_answered", "reference": str(reference), "answer": answer, "via": via,
                  "closed": closed},
    )  # fmt: skip
    if answer == NO:
        notice_disowned.send(sender=Notification, reference=reference, notification_id=row.pk, via=via)
    return AnswerResult(notification=row, alert=None, answer=answer, alert_changed=False)


# --- Answers by SMS (Twilio's inbound webhook) -----------------------------------------------------


_YES_WORDS = frozenset({"yes", "y", "yeah", "yep", "yes it was me"})
_NO_WORDS = frozenset({"no", "n", "nope", "no it wasnt me", "not me"})
# Twilio answers these itself (opt-out and help keywords): we add nothing.
_CARRIER_KEYWORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "start", "unstop", "help", "info"}
)


def sms_reply_parse(body: str) -> str | None:
    """ "yes", "no", "keyword" (a carrier keyword), or None: a reply we cannot read as an answer."""
    words = re.sub(r"[^a-z ]+", "", (body or "").casefold().replace("’", "").replace("'", ""))
    words = " ".join(words.split())
    if words in _YES_WORDS:
        return YES
    if words in _NO_WORDS:
        return NO
    if words in _CARRIER_KEYWORDS:
        return "keyword"
    return None


class SmsReply:
    """What the reply to an inbound SMS says: GSM-7 only, one segment where it can, no personal data."""

    NEUTRAL = (
        "We could not match this reply to a recent security message. For help, contact support through "
        "the official app or website."
    )
    HELP = (
        "About {what}: reply YES if it was you, or NO if it was not. {tenant} will never ask you for a code or "
        "password."
    )
    YES = "Thank you: {tenant} has noted that it was you. We will never ask you for a code or password."
    NO = (
        "Thank you. {tenant} security is on it. Change your password in the official app or website now, "
        "and never share a code."
    )
    ALREADY = "We already have your answer. Thank you."


def _sms_pending(digest: str, now) -> Notification | None:
    """The latest SMS sent to the number with this digest whose link still works (its tenant's
    answer_link_days) and that is not answered or closed."""
    longest = max([7, *NotificationSettings.objects.values_list("answer_link_days", flat=True)])
    candidates = (
        Notification.objects.select_related("tenant", "alert")
        .defer("recipient")
        .filter(
            _ANSWERABLE,
            channel=Channel.SMS,
            recipient_digest=digest,
            answered_at__isnull=True,
            sent_at__gte=now - timedelta(days=longest),
        )
        .order_by("-sent_at", "-id")[:20]
    )
    for row in candidates:
        if row.sent_at >= now - timedelta(days=_settings_of(row.tenant_id).answer_link_days):
            return row
    return None


def answer_sms_receive(*, from_number: str, body: str, message_sid: str = "") -> str | None:
    """An SMS reply, already authenticated as Twilio's: answer the latest pending SMS notification
    sent to that number, by the number's keyed digest (the one kept on the row when it was sent:
    never the account's current number, which an attacker may have just changed). Returns the text
    to reply, or None for no reply. A number we sent nothing pending to gets the same neutral reply
    as an unknown one; a reply that is neither yes nor no gets the help text and changes nothing."""
    parsed = sms_reply_parse(body)
    if parsed == "keyword" or not from_number:
        return None if parsed == "keyword" else SmsReply.NEUTRAL
    row = _sms_pending(contact_digest("phone", from_number), timezone.now())
    if row is None:
        return SmsReply.NEUTRAL
    tenant = row.tenant.name
    if parsed is None:
        what = WHAT_HAPPENED.get(row.alert.type, "the security change") if row.alert else "the change of your contacts"
        return SmsReply.HELP.format(what=what, tenant=tenant)
    try:
        notification_answer(notification_id=row.pk, answer=parsed, via="sms", message_sid=message_sid)
    except AnswerTokenInvalid:
        return SmsReply.ALREADY
    return (SmsReply.YES if parsed == YES else SmsReply.NO).format(tenant=tenant)


# --- No answer in time -----------------------------------------------------------------------------

ESCALATE_BATCH = 500


def _unanswered_query(cutoff):
    """Active alerts below critical, one of whose alert notifications was sent before `cutoff`, and
    none answered (nor closed by an answer)."""
    sent = Notification.objects.filter(alert_id=OuterRef("pk"), purpose__in=ANSWERABLE_PURPOSES, sent_at__lte=cutoff)
    # An alert told by a coalesced message (planning._coalesce): its bundle's message was sent.
    bundle_sent = Notification.objects.filter(bundle=OuterRef("bundle"), sent_at__lte=cutoff)
    told = Notification.objects.filter(alert_id=OuterRef("pk"), bundle__isnull=False).filter(Exists(bundle_sent))
    answered = Notification.objects.filter(alert_id=OuterRef("pk"), answered_at__isnull=False)
    return Alert.objects.filter(status__in=ACTIVE_STATUSES, severity__lt=Severity.CRITICAL).filter(
        Exists(sent) | Exists(told), ~Exists(answered)
    )


def alerts_unanswered(*, now, limit: int = ESCALATE_BATCH) -> list[tuple[int, int]]:
    """(alert id, answer window in minutes) of the alerts to escalate now: tenants whose
    no_answer_action raises the severity, each with its own window (a tenant without settings: the
    defaults)."""
    default = NotificationSettings()
    windows: dict[int, list[int]] = {}
    custom = []
    for tenant_id, window, action in NotificationSettings.objects.values_list(
        "tenant_id", "answer_window_minutes", "no_answer_action"
    ):
        custom.append(tenant_id)
        if action == NoAnswerAction.RAISE_SEVERITY:
            windows.setdefault(window, []).append(tenant_id)
    found: list[tuple[int, int]] = []
    if default.no_answer_action == NoAnswerAction.RAISE_SEVERITY:
        cutoff = now - timedelta(minutes=default.answer_window_minutes)
        ids = _unanswered_query(cutoff).exclude(tenant_id__in=custom).order_by("id").values_list("pk", flat=True)
        found += [(pk, default.answer_window_minutes) for pk in ids[:limit]]
    for window, tenant_ids in sorted(windows.items()):
        ids = _unanswered_query(now - timedelta(minutes=window)).filter(tenant_id__in=tenant_ids)
        found += [(pk, window) for pk in ids.order_by("id").values_list("pk", flat=True)[:limit]]
    return found[:limit]


@transaction.atomic
def alert_escalate_unanswered(*, alert_id: int, window_minutes: int, now=None) -> bool:
    """Raise one alert whose customer did not answer within the window (the tenant's no_answer_action),
    judged again under the alert's lock: an answer or an agent that came meanwhile wins, and an
    alert escalated once is critical and never again a candidate. Whether it was raised."""
    now = now or timezone.now()
    alert = Alert.objects.select_for_update().select_related("tenant").filter(pk=alert_id).first()
    if alert is None or not _unanswered_query(now - timedelta(minutes=window_minutes)).filter(pk=alert_id).exists():
        return False
    return _alert_raise_to_critical(
        alert,
        now=now,
        actor_role="",
        reason=f"The customer did not answer within {window_minutes} minutes.",
        metadata={"event": "no_answer_escalated", "window_minutes": window_minutes, "action": "raise_severity"},
    )


def alerts_escalate_unanswered(*, now=None) -> list[int]:
    """Apply the tenants' no_answer_action to the alerts due (beat, every minute): each alert in its
    own transaction, so one failure does not hold back the rest. The ids raised."""
    now = now or timezone.now()
    raised = []
    for alert_id, window in alerts_unanswered(now=now):
        if alert_escalate_unanswered(alert_id=alert_id, window_minutes=window, now=now):
            raised.append(alert_id)
    if raised:
        logger.info("alerts raised for want of an answer", extra={"alerts": len(raised)})
    return raised


# --- Rate limits of the public page ----------------------------------------------------------------

# (requests, seconds) per fixed window, shared through the cache (Redis with several processes):
# per client address (generous: a mobile carrier puts many customers behind one), per token, and
# per address for links that did not work (someone trying tokens: they are signed, so this only
# stops the noise).
DEFAULT_RATE_LIMITS = {"ip": (120, 60), "token": (20, 600), "ip_failures": (20, 600)}


def _limits() -> dict[str, tuple[int, int]]:
    return {**DEFAULT_RATE_LIMITS, **getattr(settings, "ANSWER_RATE_LIMITS", {})}


def _clock() -> float:
    return time.time()


def _window_key(name: str, subject: str, seconds: int) -> str:
    return f"answer-rate:{name}:{subject}:{int(_clock()) // seconds}"


def _count(name: str, subject: str) -> bool:
    """One more hit in this window; whether it is still within the limit."""
    limit, seconds = _limits()[name]
    key = _window_key(name, subject, seconds)
    cache.add(key, 0, timeout=seconds + 1)
    try:
        used = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=seconds + 1)
        used = 1
    return used <= limit


def _token_subject(token: str) -> str:
    """The token's signed value ("<id>.<nonce>", before the timestamp and signature): one key per
    link however often it is signed. Hashed: the token stays out of the cache."""
    return hashlib.sha256(str(token).partition(":")[0].encode()).hexdigest()[:24]


def answer_rate_allowed(*, ip: str | None, token: str) -> bool:
    """Count a request to the answer page; whether it may be served (else 429)."""
    limit, seconds = _limits()["ip_failures"]
    ip = ip or "unknown"
    if (cache.get(_window_key("ip_failures", ip, seconds)) or 0) >= limit:
        return False
    by_ip = _count("ip", ip)
    by_token = _count("token", _token_subject(token))  # counted even when the address is over its limit
    return by_ip and by_token


def answer_rate_failed(*, ip: str | None) -> None:
    """A link that did not work was asked for from this address."""
    _count("ip_failures", ip or "unknown")


def answer_retry_after() -> int:
    return max(seconds for _, seconds in _limits().values())

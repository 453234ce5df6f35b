"""Writes of caller verification (issue 11, "Verify the caller before disclosure"): send a code to a
channel on file, check the code the agent types as the customer reads it, record a callback to the
number on file. Every service here is audited on the case, in its own transaction.

The rules, in one place:
- a code goes only to an address on file (Customer's email or phone; push: the tenant's app), never
  to one given in the request (the API takes no address at all);
- codes are 6 digits from `secrets`, work for CODE_MINUTES, allow MAX_ATTEMPTS wrong entries, and
  at most CODES_PER_WINDOW are sent per customer (and per case) in THROTTLE_WINDOW;
- one verification waits for its code per customer at a time, whoever the agent: a second agent
  gets VerificationConflict (409) naming who started it and when;
- SE_THRESHOLD wrong codes for one customer within SE_WINDOW raise a social-engineering concern
  (by the desk itself), which reaches the tenant's supervisors live.

The code is kept as an HMAC (salted per row) only. The clear code exists in this process's memory,
in the sealed (Fernet-encrypted) argument of the send task, and in the message handed to the
channel backend: the development outbox backend stores that message (OutboxMessage.body), which
is acceptable there only; production backends store nothing.
"""

import json
import secrets
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.models import User
from alerts.crypto import encrypt
from alerts.notifications.channels import CHANNELS, signed_headers
from alerts.notifications.content import Message
from alerts.notifications.models import Channel, Notification, Purpose, State
from alerts.notifications.planning import contacts_for
from audit.masking import audit_diff
from audit.models import Action
from config.sql import ModelRead
from desk.models import (
    METHOD_STRENGTH,
    OPEN_CASE_STATUSES,
    Case,
    KnowledgeQuestion,
    Verification,
    VerificationMethod,
    VerificationState,
    VerificationStrength,
)
from desk.selectors import action_settings_for, case_strength
from desk.services import _case_announce, _case_record, concern_raise_by_desk

CODE_DIGITS = 6
CODE_MINUTES = 10
MAX_ATTEMPTS = 5
VALID_MINUTES = 30  # a verified caller counts as verified this long
THROTTLE_WINDOW = timedelta(minutes=15)
CODES_PER_WINDOW = 3
SE_THRESHOLD = 3  # wrong codes for one customer ...
SE_WINDOW_HOURS = 24  # ... within this: a social-engineering flag
SE_WINDOW = timedelta(hours=SE_WINDOW_HOURS)
CALLBACK_NOTE_MAX_LENGTH = Verification._meta.get_field("note").max_length

# The channels a code may go to, and how the method is named for each. Push is number matching:
# the tenant's app shows the number and the customer reads it out (NIST SP 800-63B-4: a push that
# only asks "approve" is not enough; the code must be transferred).
CODE_CHANNELS = {
    VerificationMethod.OTP: (Channel.SMS, Channel.EMAIL, Channel.VOICE),
    VerificationMethod.PUSH_MATCH: (Channel.PUSH,),
}
CHANNEL_WORDS = {Channel.SMS: "SMS", Channel.EMAIL: "email", Channel.VOICE: "phone call", Channel.PUSH: "app"}


class VerificationConflict(Exception):  # noqa: N818 (answered as a 409)
    """Another verification of this customer is in progress (`why` "in_progress"), or the case does
    not allow one."""

    def __init__(self, message: str, why: str = ""):
        super().__init__(message)
        self.why = why

    @property
    def message(self) -> str:
        return str(self.args[0])


class VerificationThrottled(Exception):  # noqa: N818 (answered as a 429)
    """Too many codes for this customer or case lately."""

    @property
    def message(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class CheckResult:
    """What checking a code came to: verified, or why not ("wrong", "expired", "too_many")."""

    verified: bool
    reason: str = ""
    attempts_left: int = 0
    verification: Verification | None = None

    @property
    def message(self) -> str:
        return {
            "": "Verified.",
            "wrong": f"Wrong code: {self.attempts_left} tries left.",
            "expired": "The code expired: send a new one.",
            "too_many": "Too many wrong codes: this verification failed. Send a new code, or call back on file.",
        }[self.reason]


def method_label(value: str) -> str:
    """Case.verification_method ("otp_sms", "callback_voice", ...) in words, for the case page."""
    for method in (VerificationMethod.PUSH_MATCH, VerificationMethod.OTP, VerificationMethod.CALLBACK,
                   VerificationMethod.KNOWLEDGE):  # fmt: skip
        if value == method or value.startswith(method + "_"):
            channel = value[len(method) + 1 :]
            if method == VerificationMethod.OTP:
                return f"one-time code to {CHANNEL_WORDS.get(channel, channel)} on file"
            if method == VerificationMethod.PUSH_MATCH:
                return "number matching in the app"
            if method == VerificationMethod.CALLBACK:
                return "callback to the number on file"
            return "knowledge questions (weak)"
    return value


def method_strength(value: str) -> str | None:
    """The strength of a Case.verification_method value, or None when unknown."""
    for method, strength in METHOD_STRENGTH.items():
        if value == method or value.startswith(method + "_"):
            return strength
    return None


def _hash(code: str, salt: str) -> str:
    return salt + "$" + salted_hmac("desk.verification.code", salt + code, algorithm="sha256").hexdigest()


def _code_matches(code: str, code_hash: str) -> bool:
    salt, _, _ = code_hash.partition("$")
    return bool(salt) and constant_time_compare(_hash(code, salt), code_hash)


def _lock_case(case: Case) -> Case:
    locked = Case.objects.select_for_update().get(pk=case.pk)
    locked.tenant = case.tenant
    if locked.status not in OPEN_CASE_STATUSES:
        raise VerificationConflict("This case is resolved: open a new one to verify the customer.")
    return locked


def _expire_stale(*, customer_id: int, now: datetime) -> None:
    Verification.objects.filter(customer_id=customer_id, state=VerificationState.PENDING, expires_at__lte=now).update(
        state=VerificationState.EXPIRED
    )


def _in_progress_conflict(pending: Verification) -> VerificationConflict:
    who = pending.requested_by.username
    at = timezone.localtime(pending.created_at)
    until = timezone.localtime(pending.expires_at)
    return VerificationConflict(
        f"{who} started verifying this customer at {at:%H:%M} (case #{pending.case_id}); one verification at a "
        f"time: wait until it ends (at {until:%H:%M} at the latest).",
        why="in_progress",
    )


def _make_room(*, actor: User, case: Case, now: datetime) -> None:
    """Expire codes past their time; cancel the actor's own waiting code on this case (a new one
    replaces it); refuse while anyone else's is waiting."""
    _expire_stale(customer_id=case.customer_id, now=now)
    pending = (
        Verification.objects.select_related("requested_by")
        .filter(customer_id=case.customer_id, state=VerificationState.PENDING)
        .first()
    )
    if pending is None:
        return
    if pending.case_id == case.pk and pending.requested_by_id == actor.pk:
        pending.state = VerificationState.CANCELLED
        pending.save(update_fields=["state"])
        return
    raise _in_progress_conflict(pending)


def _throttle(*, case: Case, now: datetime) -> None:
    recent = Verification.objects.filter(
        created_at__gt=now - THROTTLE_WINDOW,
        method__in=list(CODE_CHANNELS),
    )
    if (
        recent.filter(customer_id=case.customer_id).count() >= CODES_PER_WINDOW
        or recent.filter(case_id=case.pk).count() >= CODES_PER_WINDOW
    ):
        minutes = int(THROTTLE_WINDOW.total_seconds() // 60)
        raise VerificationThrottled(
            f"{CODES_PER_WINDOW} codes were sent to this customer in the last {minutes} minutes: wait, or call "
            "back on the number on file."
        )


def verification_message(*, tenant_name: str, code: str, channel: str) -> Message:
    """What the customer receives. It tells them when reading the code out is right (they called
    us) and when it is an attack (someone called them), because callers who pretend to be the desk
    ask customers for exactly these codes."""
    body = (
        f"Your {tenant_name} verification code is {code}. {tenant_name} staff will ask you to read it to them "
        f"only when YOU called them. Never share it with anyone who called you."
    )
    subject = f"Your {tenant_name} verification code" if channel == Channel.EMAIL else ""
    return Message(subject=subject, body=body, title=subject or f"{tenant_name} verification")


def verification_request(*, actor: User, case: Case, method: str, channel: str) -> Verification:
    """Send a one-time code (see _verification_request). A refusal because another verification of
    this customer is in progress, or because too many codes went out lately, is recorded on the case
    in a transaction of its own (the request's rolls back): a second agent asked to verify the same
    account at the same time may be talking to an attacker."""
    try:
        return _verification_request(actor=actor, case=case, method=method, channel=channel)
    except (VerificationConflict, VerificationThrottled) as error:
        why = "throttled" if isinstance(error, VerificationThrottled) else error.why
        if why:
            with transaction.atomic():
                _case_record(case, actor=actor, event="verification_refused", why=why, method=method, channel=channel)
        raise


@transaction.atomic
def _verification_request(*, actor: User, case: Case, method: str, channel: str) -> Verification:
    """Send a one-time code (method otp: channel sms, email or voice; push_match: channel push) to
    the customer's address on file for that channel, through the notifications pipeline (a
    Notification of purpose verification, handed to the channel's backend once this commits).
    Refuses: an unknown method or channel, or none on file (ValidationError), another verification
    of this customer in progress (VerificationConflict), too many codes lately (VerificationThrottled).
    A new code from the same agent on the same case replaces their waiting one."""
    if method not in CODE_CHANNELS:
        raise ValidationError({"method": f"Send a code with one of: {', '.join(CODE_CHANNELS)}."})
    if channel not in CODE_CHANNELS[method]:
        raise ValidationError({"channel": f"A {method} code goes by {', '.join(CODE_CHANNELS[method])}."})
    locked = _lock_case(case)
    now = timezone.now()
    _make_room(actor=actor, case=locked, now=now)
    _throttle(case=locked, now=now)
    contacts = contacts_for([locked.customer_id]).get(locked.customer_id)
    address = CHANNELS[channel].address(contacts) if contacts is not None else None
    if address is None:
        raise ValidationError({"channel": f"This customer has no {CHANNEL_WORDS[channel]} on file."})
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    recipient, masked = address
    notification = Notification.objects.create(
        tenant_id=locked.tenant_id, customer_id=locked.customer_id, channel=channel, purpose=Purpose.VERIFICATION,
        state=State.QUEUED, critical=True, recipient=recipient, recipient_masked=masked[:64], created_at=now,
        updated_at=now,
    )  # fmt: skip
    verification = Verification(
        tenant_id=locked.tenant_id, case=locked, customer_id=locked.customer_id, method=method, channel=channel,
        recipient_masked=masked[:64], notification=notification, code_hash=_hash(code, secrets.token_hex(8)),
        strength=METHOD_STRENGTH[method], requested_by=actor, created_at=now,
        expires_at=now + timedelta(minutes=CODE_MINUTES),
    )  # fmt: skip
    try:
        with transaction.atomic():
            verification.save(force_insert=True)
    except IntegrityError:  # another agent started one this instant
        pending = Verification.objects.select_related("requested_by").filter(
            customer_id=locked.customer_id, state=VerificationState.PENDING
        )
        raise _in_progress_conflict(pending.get()) from None
    _case_record(
        locked, actor=actor, event="verification_requested", action=Action.CREATE, verification=verification.pk,
        method=method, channel=channel, to=masked, expires_at=verification.expires_at.isoformat(),
    )  # fmt: skip
    sealed = encrypt(verification_message(tenant_name=locked.tenant.name, code=code, channel=channel).body)
    subject = verification_message(tenant_name=locked.tenant.name, code="", channel=channel).subject

    def send(pk=notification.pk):
        from desk.tasks import verification_code_send_task

        verification_code_send_task.delay(pk, subject, sealed)

    transaction.on_commit(send)
    _case_announce(locked)
    return verification


def _verified(locked: Case, verification: Verification, now: datetime) -> dict:
    verification.state, verification.verified_at = VerificationState.VERIFIED, now
    verification.valid_until = now + timedelta(minutes=VALID_MINUTES)
    before = {"verified_until": locked.verified_until.isoformat() if locked.verified_until else None}
    locked.verified_at, locked.verified_until = now, verification.valid_until
    locked.verification_method = f"{verification.method}_{verification.channel}".rstrip("_")[:40]
    locked.updated_at = now
    locked.save(update_fields=["verified_at", "verified_until", "verification_method", "updated_at"])
    return audit_diff(before, {"verified_until": locked.verified_until.isoformat()})


def _customer_wrong_codes(customer_id: int, now: datetime) -> int:
    return (
        Verification.objects.filter(customer_id=customer_id, created_at__gt=now - SE_WINDOW).aggregate(
            n=Sum("attempts")
        )["n"]
        or 0
    )


@transaction.atomic
def verification_check(*, actor: User, case: Case, code: str) -> CheckResult:
    """Check the code the customer reads out against the case's waiting verification. Returns the
    result rather than raising, so that a wrong code is recorded (attempts, the audit line, the
    flag) in this same transaction: verified, or "wrong" (tries left), "expired", "too_many" (the
    verification failed). Malformed input (not 6 digits) is a ValidationError and counts nothing;
    no code waiting is a VerificationConflict."""
    if not isinstance(code, str) or len(code.strip()) != CODE_DIGITS or not code.strip().isdigit():
        raise ValidationError({"code": f"Type the {CODE_DIGITS} digits the customer reads out."})
    code = code.strip()
    locked = _lock_case(case)
    now = timezone.now()
    verification = (
        Verification.objects.select_for_update()
        .filter(case=locked, method__in=list(CODE_CHANNELS))
        .exclude(state=VerificationState.CANCELLED)
        .order_by("-created_at", "-id")
        .first()
    )
    if verification is None or verification.state == VerificationState.VERIFIED:
        raise VerificationConflict("No code is waiting on this case: send one first.")
    if verification.state == VerificationState.FAILED:
        return CheckResult(False, "too_many", 0, verification)
    if verification.state == VerificationState.EXPIRED or verification.expires_at <= now:
        if verification.state != VerificationState.EXPIRED:
            verification.state = VerificationState.EXPIRED
            verification.save(update_fields=["state"])
            _case_record(locked, actor=actor, event="verification_expired", verification=verification.pk)
        return CheckResult(False, "expired", 0, verification)
    if _code_matches(code, verification.code_hash):
        changes = _verified(locked, verification, now)
        verification.save(update_fields=["state", "verified_at", "valid_until"])
        _case_record(
            locked, actor=actor, event="verified", changes=changes, verification=verification.pk,
            method=verification.method, channel=verification.channel, strength=verification.strength,
        )  # fmt: skip
        _case_announce(locked)
        return CheckResult(True, "", 0, verification)
    verification.attempts += 1
    failed = verification.attempts >= MAX_ATTEMPTS
    if failed:
        verification.state = VerificationState.FAILED
    verification.save(update_fields=["attempts", "state"])
    _case_record(
        locked, actor=actor, event="verification_wrong_code", verification=verification.pk,
        attempts=verification.attempts, failed=failed,
    )  # fmt: skip
    wrong = _customer_wrong_codes(locked.customer_id, now)
    if wrong >= SE_THRESHOLD:
        concern_raise_by_desk(
            case=locked, trigger="wrong_codes", wrong_codes=wrong,
            note=f"{wrong} wrong verification codes for this customer within {SE_WINDOW_HOURS} hours; the caller "
            "may not be the customer.",
        )  # fmt: skip
    _case_announce(locked)
    if failed:
        return CheckResult(False, "too_many", 0, verification)
    return CheckResult(False, "wrong", MAX_ATTEMPTS - verification.attempts, verification)


@transaction.atomic
def verification_callback_record(*, actor: User, case: Case, note: str = "") -> Verification:
    """The agent called the customer back on the number on file (not one the caller gave) and the
    customer answered: strong verification, recorded with the agent's note. Refused while another
    agent's code is waiting for this customer, or when no phone is on file."""
    note = note.strip() if isinstance(note, str) else ""
    if len(note) > CALLBACK_NOTE_MAX_LENGTH:
        raise ValidationError({"note": f"Keep the note under {CALLBACK_NOTE_MAX_LENGTH} characters."})
    locked = _lock_case(case)
    now = timezone.now()
    _make_room(actor=actor, case=locked, now=now)
    contacts = contacts_for([locked.customer_id]).get(locked.customer_id)
    address = CHANNELS[Channel.VOICE].address(contacts) if contacts is not None else None
    if address is None:
        raise ValidationError({"method": "This customer has no phone number on file to call back."})
    verification = Verification(
        tenant_id=locked.tenant_id, case=locked, customer_id=locked.customer_id,
        method=VerificationMethod.CALLBACK, channel=Channel.VOICE, recipient_masked=address[1][:64],
        strength=METHOD_STRENGTH[VerificationMethod.CALLBACK], state=VerificationState.VERIFIED, requested_by=actor,
        created_at=now, expires_at=now, note=note,
    )  # fmt: skip
    changes = _verified(locked, verification, now)
    verification.save(force_insert=True)
    _case_record(
        locked, actor=actor, event="verified", changes=changes, verification=verification.pk,
        method=verification.method, channel=verification.channel, strength=verification.strength, to=address[1],
    )  # fmt: skip
    _case_announce(locked)
    return verification


def verification_code_deliver(*, notification_id: int, subject: str, sealed_body: str) -> bool:
    """Hand the verification message (sealed by verification_request) to the channel backend once."""
    from alerts.crypto import decrypt
    from alerts.notifications.services import notification_send_composed

    body = decrypt(sealed_body)
    return notification_send_composed(
        notification_id=notification_id, message=Message(subject=subject, body=body, title=subject)
    )


# --- knowledge questions: a weak factor, checked by the client's systems ------------------------------
#
# The tenant lists its questions (desk.models.KnowledgeQuestion); the agent types what the caller
# says, and the desk asks the client's systems whether it matches, through the tenant's signed
# webhook (the account actions' URL and secret), body {"id", "action": "verify_knowledge",
# "account": {"external_id"}, "case", "requested_by", "requested_at", "answers": {key: text}}, and
# an answer of exactly {"match": true} or {"match": false}. Anything else (no webhook, a timeout, a
# non-2xx status, another body) checks nothing: fail closed. The desk keeps no expected answer and
# no answer given (neither in a row nor in the trail): only whether they matched.

KNOWLEDGE_TIMEOUT = 5.0
KNOWLEDGE_ANSWER_MAX_LENGTH = 200
KNOWLEDGE_PER_WINDOW = 3  # knowledge checks per customer in THROTTLE_WINDOW


class KnowledgeUnavailable(Exception):  # noqa: N818 (answered as a 502 by the API, a message on the page)
    """The client's systems could not check the answers: nothing was verified or counted."""

    @property
    def message(self) -> str:
        return str(self.args[0])


_QUESTIONS = ModelRead(KnowledgeQuestion)  # the case page reads them: written in SQL (config.sql)


def knowledge_questions_for(*, tenant_id: int) -> list[KnowledgeQuestion]:
    """The tenant's active knowledge questions, in their order (none: the method is not offered)."""
    return _QUESTIONS.rows("t.tenant_id = %s AND t.is_active = %s", [tenant_id, True], "ORDER BY t.position, t.id")


def _knowledge_answers_clean(answers, questions) -> dict[str, str]:
    if not questions:
        raise ValidationError({"answers": "This client has no knowledge questions: verify another way."})
    if not isinstance(answers, dict):
        raise ValidationError({"answers": "Give the answers as an object of question key to answer."})
    keys = [q.key for q in questions]
    unknown = sorted(set(answers) - set(keys))
    if unknown:
        raise ValidationError({"answers": f"Unknown questions: {', '.join(map(str, unknown))[:200]}."})
    clean = {}
    for key in keys:
        value = answers.get(key)
        value = value.strip() if isinstance(value, str) else ""
        if not value:
            raise ValidationError({"answers": "Ask every question and type each answer."})
        if len(value) > KNOWLEDGE_ANSWER_MAX_LENGTH:
            raise ValidationError({"answers": f"Keep each answer under {KNOWLEDGE_ANSWER_MAX_LENGTH} characters."})
        clean[key] = value
    return clean


def _knowledge_room(*, actor: User, case: Case, now: datetime) -> Case:
    """The case locked, with room for a knowledge check: open, no other agent's code waiting for this
    customer, not over KNOWLEDGE_PER_WINDOW checks lately (VerificationConflict, VerificationThrottled)."""
    locked = _lock_case(case)
    _expire_stale(customer_id=locked.customer_id, now=now)
    pending = (
        Verification.objects.select_related("requested_by")
        .filter(customer_id=locked.customer_id, state=VerificationState.PENDING)
        .first()
    )
    if pending is not None and not (pending.case_id == locked.pk and pending.requested_by_id == actor.pk):
        raise _in_progress_conflict(pending)
    recent = Verification.objects.filter(
        customer_id=locked.customer_id, method=VerificationMethod.KNOWLEDGE, created_at__gt=now - THROTTLE_WINDOW
    ).count()
    if recent >= KNOWLEDGE_PER_WINDOW:
        minutes = int(THROTTLE_WINDOW.total_seconds() // 60)
        raise VerificationThrottled(
            f"{KNOWLEDGE_PER_WINDOW} knowledge checks for this customer in the last {minutes} minutes: verify with a "
            "code to a channel on file, or call back on the number on file."
        )
    return locked


def _knowledge_ask(*, case: Case, actor: User, answers: dict[str, str]) -> bool:
    """Whether the client's systems say the answers match (KnowledgeUnavailable when they do not say)."""
    settings = action_settings_for(tenant_id=case.tenant_id)
    if not settings.webhook_url or not settings.webhook_secret:
        raise KnowledgeUnavailable("This client's webhook is not set up: knowledge questions cannot be checked.")
    body = json.dumps(
        {
            "id": str(uuid.uuid4()), "action": "verify_knowledge",
            "account": {"external_id": case.customer.external_id}, "case": case.pk,
            "requested_by": actor.username, "requested_at": timezone.now().isoformat(),
            "answers": answers,
        },
        separators=(",", ":"),
    ).encode()  # fmt: skip
    request = urllib.request.Request(  # noqa: S310 (the tenant's http(s) URL, checked when set)
        settings.webhook_url,
        data=body,
        method="POST",
        headers=signed_headers(secret=settings.webhook_secret, body=body),
    )
    try:
        with urllib.request.urlopen(request, timeout=KNOWLEDGE_TIMEOUT) as response:  # noqa: S310
            status, raw = response.status, response.read(4096)
        answer = json.loads(raw) if 200 <= status < 300 else None
    except (OSError, ValueError):  # unreachable, timed out, an error status, not JSON
        answer = None
    if not isinstance(answer, dict) or answer.get("match") not in (True, False):
        raise KnowledgeUnavailable("The client's systems did not check the answers: verify another way.")
    return answer["match"]


def verification_knowledge_check(*, actor: User, case: Case, answers) -> Verification:
    """Check the caller's answers to the tenant's knowledge questions with the client's systems and
    record the attempt: verified (weak) or failed. A weak verification never replaces a strong one
    still valid, and never suffices for a high-risk action (desk.action_services); what it allows
    besides is the tenant's `knowledge_allows`. A failed check counts as a wrong code toward the
    social-engineering flag. Refuses: malformed answers or no questions (ValidationError), a resolved
    case or another agent's code waiting (VerificationConflict), too many checks (VerificationThrottled),
    the client not answering (KnowledgeUnavailable: nothing recorded but the attempt in the trail).
    The webhook is called outside any transaction, so no row stays locked while the client answers."""
    questions = knowledge_questions_for(tenant_id=case.tenant_id)
    clean = _knowledge_answers_clean(answers, questions)
    with transaction.atomic():
        _knowledge_room(actor=actor, case=case, now=timezone.now())
    try:
        match = _knowledge_ask(case=case, actor=actor, answers=clean)
    except KnowledgeUnavailable:
        with transaction.atomic():
            _case_record(case, actor=actor, event="verification_knowledge_unavailable", questions=sorted(clean))
        raise
    with transaction.atomic():
        now = timezone.now()
        locked = _knowledge_room(actor=actor, case=case, now=now)
        verification = Verification(
            tenant_id=locked.tenant_id, case=locked, customer_id=locked.customer_id,
            method=VerificationMethod.KNOWLEDGE, strength=METHOD_STRENGTH[VerificationMethod.KNOWLEDGE],
            state=VerificationState.VERIFIED if match else VerificationState.FAILED, attempts=0 if match else 1,
            requested_by=actor, created_at=now, expires_at=now,
        )  # fmt: skip
        if not match:
            verification.save(force_insert=True)
            _case_record(
                locked, actor=actor, event="verification_knowledge_failed", verification=verification.pk,
                questions=sorted(clean),
            )  # fmt: skip
            wrong = _customer_wrong_codes(locked.customer_id, now)
            if wrong >= SE_THRESHOLD:
                concern_raise_by_desk(
                    case=locked, trigger="wrong_codes", wrong_codes=wrong,
                    note=f"{wrong} failed verifications (codes or knowledge questions) for this customer within "
                    f"{SE_WINDOW_HOURS} hours; the caller may not be the customer.",
                )  # fmt: skip
            _case_announce(locked)
            return verification
        strong_now = case_strength(locked, now=now) == VerificationStrength.STRONG
        if strong_now:  # keep the strong verification: a weak one on top adds nothing
            verification.verified_at, verification.valid_until = now, locked.verified_until
            verification.save(force_insert=True)
            changes = {}
        else:
            changes = _verified(locked, verification, now)
            verification.save(force_insert=True)
        _case_record(
            locked, actor=actor, event="verified", changes=changes, verification=verification.pk,
            method=verification.method, strength=verification.strength, questions=sorted(clean),
        )  # fmt: skip
        _case_announce(locked)
        return verification

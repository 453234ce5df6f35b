"""Notification channels and the backends that carry them.

Two registries of small classes (STYLE: open for extension):

- `CHANNELS`: what a channel needs of a customer (`address`), and which previous address it tells
  of a change (`previous_field`). Adding a channel is a class here and a registry line.
- Backends, chosen per channel in settings like Django's EMAIL_BACKEND
  (`NOTIFICATION_BACKENDS = {"sms": "alerts.notifications.channels.TwilioSmsBackend", ...}`, or
  `{"BACKEND": path, "OPTIONS": {...}}`). A backend declares how it may be retried:
  - `transactional`: it sends by writing to our own database (the development outbox), inside the
    transaction that claims the row: claim, send and record commit together or not at all, so a
    worker killed mid-send leaves the row unclaimed and it is sent once, later.
  - `idempotent`: the provider deduplicates on our idempotency key (Twilio's
    I-Twilio-Idempotency-Token; the push webhook's X-AlertDesk-Idempotency-Key, which receivers
    must honour): a row whose answer was lost (a worker died between the provider call and the
    record) may be handed again with the same key. A backend that is not (SMTP) is never handed
    a row twice: such a row is failed as in doubt, and the next channel is tried.
  - `confirms_delivery`: the provider tells delivery later (status callbacks); a row it accepted
    waits in `sent` and, past the tenant's delivery window, falls back to the next channel.

Options: `RATE_PER_SECOND` and `BURST` put the backend behind the global token bucket
(alerts.notifications.ratelimit), per provider and sender. `send()` raises TemporaryFailure (not
accepted: retried with backoff), PermanentFailure (never will be: the next channel), or anything
else (unknown: retried if `idempotent`, else in doubt). Errors carry a class or provider code,
never an address or a message.
"""

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from xml.sax.saxutils import escape

from django.conf import settings
from django.urls import reverse
from django.utils.module_loading import import_string

from alerts.notifications.models import Channel, OutboxMessage, State
from config.bulk import BulkInsert

# --- Channels -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contacts:
    """A customer's contacts as planning sees them (decrypted only in the worker, never logged)."""

    external_id: str
    email: str
    phone: str
    channels: dict
    email_masked: str
    phone_masked: str
    digests: dict  # Customer.contact_digests: tells a previous address that is the current one again


class ChannelKind:
    key = ""
    previous_field: str | None = None  # CustomerContactChange.field whose old values get a notice here

    def address(self, contacts: Contacts) -> tuple[str, str] | None:
        """(recipient, masked recipient) on file for this channel, or None."""
        raise NotImplementedError


class EmailChannel(ChannelKind):
    key = Channel.EMAIL
    previous_field = "email"

    def address(self, contacts):
        return (contacts.email, contacts.email_masked) if contacts.email else None


class SmsChannel(ChannelKind):
    key = Channel.SMS
    previous_field = "phone"  # an old number hears by text, not by a call

    def address(self, contacts):
        return (contacts.phone, contacts.phone_masked) if contacts.phone else None


class VoiceChannel(ChannelKind):
    key = Channel.VOICE

    def address(self, contacts):
        return (contacts.phone, contacts.phone_masked) if contacts.phone else None


class PushChannel(ChannelKind):
    """The tenant's app, reached through the tenant: the address is the account's external id. On
    file when the client told us about push for this account (`channels.push`, true or false)."""

    key = Channel.PUSH

    def address(self, contacts):
        return (contacts.external_id, "app") if "push" in (contacts.channels or {}) else None


CHANNELS: dict[str, ChannelKind] = {c.key: c for c in (EmailChannel(), SmsChannel(), PushChannel(), VoiceChannel())}


# --- Backends -----------------------------------------------------------------------------------


class TemporaryFailure(Exception):  # noqa: N818
    """The provider did not take the message, this time (busy, rate limited, unreachable)."""

    def __init__(self, code: str, retry_after: float | None = None):
        super().__init__(code)
        self.code = code[:100]
        self.retry_after = retry_after


class PermanentFailure(Exception):  # noqa: N818
    """The provider will never take this message (a bad number, an unsubscribed address)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code[:100]


@dataclass(frozen=True)
class Sent:
    state: str = State.SENT  # or DELIVERED when handing it over is delivery (the outbox)
    provider_message_id: str = ""
    receipt_expected: bool | None = None  # None: as the backend's confirms_delivery says


class Backend:
    name = ""
    transactional = False
    idempotent = False
    confirms_delivery = False

    def __init__(self, channel: str, **options):
        self.channel = channel
        self.options = options
        rate = options.get("RATE_PER_SECOND")
        self.rate = (float(rate), float(options.get("BURST", rate))) if rate else None

    def rate_key(self, notification) -> str:
        """The bucket a message counts against: the provider and its sender."""
        return f"{self.name}:{self.channel}"

    def send(self, notification, message, tenant_settings) -> Sent:
        raise NotImplementedError

    def send_many(self, items: list[tuple], now) -> list[Sent]:
        """Transactional backends: send (notification, message, tenant settings) items at once."""
        return [self.send(n, m, s) for n, m, s in items]


class OutboxBackend(Backend):
    """Development: stores what would be sent (OutboxMessage; `manage.py outbox_show`, the desk's
    outbox page). Sending is the insert, in the claim's transaction: delivered once it commits."""

    name = "outbox"
    transactional = True
    idempotent = True

    def send_many(self, items, now):
        _OUTBOX_INSERT.execute(
            [(n.pk, n.channel, n.recipient, m.subject[:300], m.body, n.idempotency_key) for n, m, _ in items],
            shared={"created_at": now},
        )
        return [Sent(state=State.DELIVERED) for _ in items]


_OUTBOX_INSERT = BulkInsert(
    OutboxMessage,
    fields=["notification", "channel", "recipient", "subject", "body", "idempotency_key", "created_at"],
    shared=["created_at"],
    returning=(),
    arrays=True,
)


class DjangoEmailBackend(Backend):
    """Email through one of Django's email backends (SMTP, or django-anymail's for a provider's
    API): OPTIONS `EMAIL_BACKEND` (default: settings.EMAIL_BACKEND) and `FROM`. SMTP takes no
    idempotency key, so a row is never handed to it twice (the Message-ID carries ours, for
    receivers that deduplicate). Through anymail, the provider's message id is kept and, when its
    webhooks are taken (ANYMAIL WEBHOOK_SECRET; OPTIONS `RECEIPTS` to say otherwise), the row
    waits for the provider's delivery or bounce (alerts.notifications.receipts)."""

    name = "email"

    def receipts(self) -> bool:
        configured = self.options.get("RECEIPTS")
        return bool(settings.ANYMAIL.get("WEBHOOK_SECRET")) if configured is None else bool(configured)

    def send(self, notification, message, tenant_settings):
        import smtplib

        from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
        from django.core.mail import EmailMessage, get_connection

        connection = get_connection(self.options.get("EMAIL_BACKEND"))
        email = EmailMessage(
            subject=message.subject,
            body=message.body,
            from_email=self.options.get("FROM") or settings.NOTIFICATION_EMAIL_FROM,
            to=[notification.recipient],
            headers={"Message-ID": f"<{notification.idempotency_key}@alertdesk>"},
            connection=connection,
        )
        try:
            email.send()
        except (smtplib.SMTPRecipientsRefused, AnymailRecipientsRefused):
            raise PermanentFailure("email_recipient_refused") from None
        except (smtplib.SMTPConnectError, ConnectionRefusedError, smtplib.SMTPServerDisconnected) as error:
            raise TemporaryFailure(f"smtp_{type(error).__name__}") from None
        except AnymailAPIError as error:
            status = getattr(error, "status_code", None) or 0
            if status in (408, 429) or status >= 500 or status == 0:
                raise TemporaryFailure(f"email_api_{status or 'unreachable'}") from None
            raise PermanentFailure(f"email_api_{status}") from None
        sent = getattr(email, "anymail_status", None)
        if sent is not None and sent.status and not sent.status & {"sent", "queued"}:
            # The provider did not take it for our one recipient (rejected, invalid, or it could not say).
            raise PermanentFailure("email_" + "_".join(sorted(sent.status)))
        if sent is None or sent.message_id is None:  # SMTP and Django's own backends: no receipts
            return Sent()
        return Sent(provider_message_id=str(sent.message_id)[:100], receipt_expected=self.receipts())


def _http(request: urllib.request.Request, timeout: float) -> tuple[int, bytes, dict]:
    """(status, body, headers) of an HTTP request; TemporaryFailure when nothing answered."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (configured https URLs)
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers or {})
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise TemporaryFailure(f"http_{type(error).__name__}") from None


def _retry_after(headers: dict) -> float | None:
    try:
        return float(headers.get("Retry-After", ""))
    except ValueError:
        return None


class TwilioBackend(Backend):
    """Twilio's REST API (its request shape, no SDK: a form POST with basic auth): OPTIONS or
    settings `ACCOUNT_SID`/`AUTH_TOKEN`/`FROM`/`API_BASE` (TWILIO_*). Idempotent (the
    I-Twilio-Idempotency-Token header carries our key) and confirms delivery through the status
    callback (alerts.notifications.views.twilio_status)."""

    name = "twilio"
    idempotent = True
    confirms_delivery = True
    resource = ""

    def _option(self, name: str) -> str:
        return self.options.get(name) or getattr(settings, f"TWILIO_{name}")

    def auth_token(self) -> str:
        """What Twilio signs its callbacks with (alerts.notifications.views.twilio_status)."""
        return self._option("AUTH_TOKEN")

    def rate_key(self, notification):
        return f"twilio:{self._option('FROM')}"

    def callback_url(self, notification) -> str:
        return f"{settings.NOTIFICATION_PUBLIC_URL.rstrip('/')}/notifications/twilio/status/{notification.pk}/"

    def fields(self, notification, message) -> dict:
        raise NotImplementedError

    def send(self, notification, message, tenant_settings):
        sid = self._option("ACCOUNT_SID")
        if not sid or not self._option("AUTH_TOKEN"):
            raise PermanentFailure("twilio_not_configured")
        url = f"{self._option('API_BASE').rstrip('/')}/2010-04-01/Accounts/{sid}/{self.resource}"
        data = {
            "To": notification.recipient,
            "From": self._option("FROM"),
            **self.fields(notification, message),
            "StatusCallback": self.callback_url(notification),
        }
        credentials = base64.b64encode(f"{sid}:{self._option('AUTH_TOKEN')}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310
            url,
            data=urllib.parse.urlencode(data).encode(),
            method="POST",
            headers={
                "Authorization": f"Basic {credentials}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "I-Twilio-Idempotency-Token": str(notification.idempotency_key),
            },
        )
        status, body, headers = _http(request, timeout=float(self.options.get("TIMEOUT", 10)))
        if status in (200, 201):
            return Sent(provider_message_id=str(json.loads(body or b"{}").get("sid", ""))[:100])
        if status == 429 or status >= 500:
            raise TemporaryFailure(f"twilio_http_{status}", retry_after=_retry_after(headers))
        try:
            code = json.loads(body).get("code")
        except (ValueError, AttributeError):
            code = None
        raise PermanentFailure(f"twilio_{code}" if code else f"twilio_http_{status}")


class TwilioSmsBackend(TwilioBackend):
    resource = "Messages.json"

    def fields(self, notification, message):
        return {"Body": message.body}


class TwilioVoiceBackend(TwilioBackend):
    """A call that reads the message out (TwiML given inline)."""

    resource = "Calls.json"

    def fields(self, notification, message):
        return {"Twiml": f"<Response><Say>{escape(message.body)}</Say></Response>"}


def twilio_signature(*, auth_token: str, url: str, params) -> str:
    """Twilio's request signature (X-Twilio-Signature): base64 of HMAC-SHA1, keyed with the auth
    token, over the full URL followed by each POST parameter's name and value, sorted by name (a
    repeated name: each value, sorted). `params`: a dict or a QueryDict."""
    items = params.lists() if hasattr(params, "lists") else ((name, [value]) for name, value in params.items())
    payload = url + "".join(name + value for name, values in sorted(items) for value in sorted(values))
    return base64.b64encode(hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def push_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """The tenant webhook signature (as the account-action webhook's): HMAC-SHA256 over "<timestamp>.<body>"."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_headers(*, secret: str, body: bytes) -> dict[str, str]:
    """The headers of a signed tenant webhook (push, account actions): JSON, the timestamp, and
    the signature over "<timestamp>.<body>"."""
    timestamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-AlertDesk-Timestamp": timestamp,
        "X-AlertDesk-Signature": push_signature(secret=secret, timestamp=timestamp, body=body),
    }


class WebhookPushBackend(Backend):
    """Push through the tenant's own signed webhook to its app: POST JSON to the tenant's
    push_webhook_url with X-AlertDesk-Timestamp, X-AlertDesk-Signature (HMAC-SHA256 of
    "<timestamp>.<body>" with the tenant's push secret) and X-AlertDesk-Idempotency-Key, which the
    receiver must use to drop repeats. A 2xx means the tenant took it (sent). A tenant whose app
    confirms delivery (its `push_receipts` setting) posts a signed receipt to `receipt_url`
    (alerts.notifications.views.push_receipt); the delivery-window fallback then waits for it."""

    name = "webhook"
    idempotent = True

    def rate_key(self, notification):
        return f"webhook:{notification.tenant_id}"

    def send(self, notification, message, tenant_settings):
        url, secret = tenant_settings.push_webhook_url, tenant_settings.push_webhook_secret
        if not url or not secret:
            raise PermanentFailure("push_not_configured")
        body = json.dumps(
            {
                "id": notification.pk,
                "idempotency_key": str(notification.idempotency_key),
                "account": {"external_id": notification.recipient},
                "alert": notification.alert_id,
                "title": message.subject,
                "body": message.body,
                "created_at": notification.created_at.isoformat(),
                "receipt_url": f"{settings.NOTIFICATION_PUBLIC_URL.rstrip('/')}{reverse('alerts:push_receipt')}",
            },
            separators=(",", ":"),
        ).encode()
        headers = {
            **signed_headers(secret=secret, body=body),
            "X-AlertDesk-Idempotency-Key": str(notification.idempotency_key),
        }
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
        status, _, headers = _http(request, timeout=float(self.options.get("TIMEOUT", 10)))
        if 200 <= status < 300:
            return Sent(receipt_expected=bool(tenant_settings.push_receipts))
        if status in (408, 429) or status >= 500:
            raise TemporaryFailure(f"push_http_{status}", retry_after=_retry_after(headers))
        raise PermanentFailure(f"push_http_{status}")


_backends: dict[tuple, Backend] = {}


def backend_for(channel: str) -> Backend:
    """The configured backend of a channel (made once per configuration)."""
    config = settings.NOTIFICATION_BACKENDS.get(channel) or "alerts.notifications.channels.OutboxBackend"
    if isinstance(config, str):
        config = {"BACKEND": config}
    key = (channel, json.dumps(config, sort_keys=True, default=str))
    if (backend := _backends.get(key)) is None:
        backend = _backends[key] = import_string(config["BACKEND"])(channel, **config.get("OPTIONS", {}))
    return backend

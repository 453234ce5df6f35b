"""Tenant API keys: issue (and rotate), authenticate a presented key, and the event API's DRF
authentication (bearer key and body signature) and permission (an active tenant)."""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission

from alerts.models import ApiKey, IngestSettings
from alerts.validation import unix_seconds_parse
from audit.models import Action
from audit.services import audit_record
from config.api import request_body

KEY_PREFIX = "adk_"


@dataclass(frozen=True)
class IssuedKey:
    record: ApiKey
    api_key: str  # shown once
    signing_secret: str  # shown once


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def api_key_issue(*, tenant, actor=None) -> IssuedKey:
    """A new key and signing secret for `tenant`. Keys issued before keep working for the overlap
    period (INGEST_KEY_OVERLAP), so that clients can switch without a gap."""
    now = timezone.now()
    IngestSettings.objects.get_or_create(tenant=tenant)
    replaced = list(
        ApiKey.objects.select_for_update()
        .filter(tenant=tenant, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now + settings.INGEST_KEY_OVERLAP))
    )
    for old in replaced:
        old.expires_at = now + settings.INGEST_KEY_OVERLAP
        old.save(update_fields=["expires_at"])
    prefix = secrets.token_hex(6)
    raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    signing_secret = f"whsec_{secrets.token_urlsafe(32)}"
    record = ApiKey.objects.create(
        tenant=tenant, prefix=prefix, key_hash=_hash(raw), signing_secret=signing_secret, created_at=now
    )
    audit_record(
        action=Action.CREATE,
        actor=actor,
        tenant=tenant,
        target=record,
        metadata={
            "replaced": [k.prefix for k in replaced],
            "overlap_until": (now + settings.INGEST_KEY_OVERLAP).isoformat(),
        },
    )
    return IssuedKey(record=record, api_key=raw, signing_secret=signing_secret)


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The live key `raw` names, with its tenant, or None (unknown, malformed, expired, revoked)."""
    if not raw.startswith(KEY_PREFIX) or len(raw) > 200:
        return None
    prefix = raw[len(KEY_PREFIX) :].split("_", 1)[0]
    key = ApiKey.objects.select_related("tenant", "tenant__ingest_settings").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.key_hash, _hash(raw)):
        return None
    now = timezone.now()
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        return None
    return key


def signature_problem(headers, body: bytes, secret: str) -> str | None:
    """None when the request's signature is good and fresh, else why not."""
    stamp = headers.get("X-AlertDesk-Timestamp", "")
    signature = headers.get("X-AlertDesk-Signature", "")
    if not stamp or not signature:
        return "missing X-AlertDesk-Timestamp or X-AlertDesk-Signature"
    seconds = unix_seconds_parse(stamp)
    if seconds is None:
        return "X-AlertDesk-Timestamp must be unix seconds"
    if abs(time.time() - seconds) > settings.INGEST_SIGNATURE_TOLERANCE_SECONDS:
        return "stale timestamp: requests older than 5 minutes are refused"
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(f"sha256={expected}", signature):
        return "bad signature"
    return None


class EventApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <tenant API key>`, and the HMAC signature over the raw body (unless the
    tenant's onboarding setting waives it). The body is read here, with the event API's size limit
    (413), because the signature covers its bytes; the parser reads the same bytes afterwards.
    `request.auth` is the ApiKey; there is no staff user."""

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise AuthenticationFailed("missing Authorization: Bearer <api key>")
        key = api_key_authenticate(header[len("Bearer ") :].strip())
        if key is None:
            raise AuthenticationFailed("unknown, expired or revoked API key")
        body = request_body(request, limit=settings.INGEST_MAX_BODY_BYTES, message="the body is over 1 MiB")
        ingest_settings = getattr(key.tenant, "ingest_settings", None)
        if ingest_settings is None or ingest_settings.signature_required:
            problem = signature_problem(request.headers, body, key.signing_secret)
            if problem:
                raise AuthenticationFailed(problem)
        return AnonymousUser(), key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="alertdesk-events"'


class TenantIsActive(BasePermission):
    """The key's tenant is active: a deactivated tenant's keys answer 403."""

    message = "this tenant is deactivated"

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ApiKey) and request.auth.tenant.is_active

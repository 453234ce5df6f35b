"""Tenant API keys: issue (and rotate), and authenticate a presented key."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from alerts.models import ApiKey, IngestSettings
from audit.models import Action
from audit.services import audit_record

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

"""The hash chain: what an event's hash covers, and how a checkpoint is signed.

hash = HMAC-SHA256(seal key, prev_hash || "\\n" || canonical JSON of the event's content, event id
included), so an edited, deleted, inserted or re-ordered row breaks the link at that point, and
whoever can write the tables (the database owner included) cannot recompute a seal without the
key, which lives outside the database (AUDIT_SEAL_KEYS). Each seal names its key id, so keys
rotate and old seals still verify. Seals made before keys existed (key id "") are plain SHA-256:
verify accepts them only where a signed checkpoint pins the chain.
"""

import functools
import hashlib
import hmac
import json
from datetime import UTC

from django.conf import settings

GENESIS = "0" * 64
HASHED_FIELDS = (
    "id", "occurred_at", "tenant_id", "actor_id", "actor_label", "actor_role", "action", "origin",
    "target_type", "target_id", "target_label", "changes", "reason", "metadata", "request_id", "ip", "user_agent",
)  # fmt: skip


def canonical(event) -> bytes:
    return canonical_json(canonical_content(event))


def canonical_json(content: dict) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def canonical_content(event) -> dict:
    content = {}
    for name in HASHED_FIELDS:
        value = getattr(event, name)
        if name == "occurred_at":
            value = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        content[name] = value
    return content


LEGACY_KEY_ID = ""  # a seal made before seals were keyed


class UnknownSealKeyError(LookupError):
    """A seal or a checkpoint names a key id that is not configured (AUDIT_SEAL_KEYS,
    AUDIT_CHECKPOINT_KEYS)."""


def seal_keys() -> dict[str, bytes]:
    """The configured seal keys by id, newest first."""
    return _seal_keys(tuple(settings.AUDIT_SEAL_KEYS))


@functools.cache
def _seal_keys(configured: tuple[tuple[str, str], ...]) -> dict[str, bytes]:
    return {key_id: secret.encode() for key_id, secret in configured}


def current_seal_key_id() -> str:
    return settings.AUDIT_SEAL_KEYS[0][0]


def event_hash(prev_hash: str, event, *, key_id: str) -> str:
    return content_hash(prev_hash, canonical(event), key_id=key_id)


def content_hash(prev_hash: str, canonical_bytes: bytes, *, key_id: str) -> str:
    """The seal's hash: HMAC-SHA256 with the key `key_id`; plain SHA-256 for a legacy seal (key id
    ""). Raises UnknownSealKeyError when the key id is not configured."""
    message = prev_hash.encode() + b"\n" + canonical_bytes
    if key_id == LEGACY_KEY_ID:
        return hashlib.sha256(message).hexdigest()
    key = seal_keys().get(key_id)
    if key is None:
        raise UnknownSealKeyError(key_id)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def current_checkpoint_key_id() -> str:
    """The id of the key that signs new checkpoints: the newest of AUDIT_CHECKPOINT_KEYS, or ""
    for the single AUDIT_CHECKPOINT_KEY."""
    return settings.AUDIT_CHECKPOINT_KEYS[0][0] if settings.AUDIT_CHECKPOINT_KEYS else LEGACY_KEY_ID


def _checkpoint_key(key_id: str) -> bytes:
    if key_id == LEGACY_KEY_ID:
        key = settings.AUDIT_CHECKPOINT_KEY
    else:
        key = dict(settings.AUDIT_CHECKPOINT_KEYS).get(key_id, "")
    if not key:
        raise UnknownSealKeyError(key_id)
    return key.encode()


def checkpoint_signature(*, chain: int, seq: int, hash_: str, created_at_iso: str, key_id: str) -> str:
    """HMAC of a chain head with the checkpoint key `key_id` (UnknownSealKeyError when it is not
    configured)."""
    message = f"{chain}:{seq}:{hash_}:{created_at_iso}".encode()
    return hmac.new(_checkpoint_key(key_id), message, hashlib.sha256).hexdigest()

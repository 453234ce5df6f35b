"""The hash chain: what an event's hash covers, and how a checkpoint is signed.

hash = sha256(prev_hash || "\\n" || canonical JSON of the event's content, event id included), so
an edited, deleted, inserted or re-ordered row breaks the link at that point.
"""

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


def event_hash(prev_hash: str, event) -> str:
    return content_hash(prev_hash, canonical(event))


def content_hash(prev_hash: str, canonical_bytes: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical_bytes).hexdigest()


def checkpoint_signature(*, chain: int, seq: int, hash_: str, created_at_iso: str) -> str:
    message = f"{chain}:{seq}:{hash_}:{created_at_iso}".encode()
    return hmac.new(settings.AUDIT_CHECKPOINT_KEY.encode(), message, hashlib.sha256).hexdigest()

"""The audit API: `audit_record` for every change and every view of data, and the sealer that
places committed events in their tenant's hash chain."""

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.chain import GENESIS, checkpoint_signature, current_checkpoint_key_id, current_seal_key_id, event_hash
from audit.masking import mask
from audit.models import Action, AuditChainHead, AuditCheckpoint, AuditEvent, AuditSeal, AuditSealerState, Origin
from config.bulk import BulkInsert
from config.logging import current_request, process_origin

# Seals are given in commit order, so a transaction still open when its events are this old
# would be missed by the sealer's scan; verify_audit reports such events as unsealed.
SEAL_GRACE = timedelta(minutes=60)
SEAL_BATCH = 5000
_ACTIONS = frozenset(Action.values)  # Action.values rebuilds its list on every access


def audit_target(obj) -> tuple[str, str, str]:
    """(type, id, label) for a model instance: "app_label.model", its pk, and a short label
    (the model's `audit_label`, which models holding personal data define without it)."""
    meta = obj._meta
    label = getattr(obj, "audit_label", None)
    label = label() if callable(label) else (label if label is not None else str(obj))
    return f"{meta.app_label}.{meta.model_name}", str(obj.pk), str(label)[:200]


def _origin() -> str:
    context = current_request()
    if context is None:
        return process_origin()
    if context.path.startswith("/admin/"):
        return Origin.ADMIN
    if context.path.startswith("/api/"):
        return Origin.API
    return Origin.WEB


def _role(actor, tenant) -> str:
    if actor is None:
        return ""
    if actor.is_bpo_admin:
        return "bpo_admin"
    if tenant is None:
        return ""
    from accounts.selectors import role_for

    return role_for(user=actor, tenant=tenant) or ""


def audit_record(
    *,
    action: str,
    actor=None,
    tenant=None,
    target=None,
    target_type: str = "",
    target_id: str = "",
    target_label: str = "",
    changes: dict | None = None,
    reason: str = "",
    metadata: dict | None = None,
    actor_role: str | None = None,
    actor_label: str = "",
) -> AuditEvent:
    """Record one event. Call it inside the transaction of the change it describes: the record
    commits with the change or not at all. Personal data in `changes` must be masked already
    (see `audit.masking.audit_diff`)."""
    (event,) = audit_record_many(
        [
            {
                "action": action, "actor": actor, "tenant": tenant, "target": target, "target_type": target_type,
                "target_id": target_id, "target_label": target_label, "changes": changes, "reason": reason,
                "metadata": metadata, "actor_role": actor_role, "actor_label": actor_label,
            }
        ]
    )  # fmt: skip
    return event


def audit_record_many(records: list[dict]) -> list[AuditEvent]:
    """Several events at once (each dict takes audit_record's keywords), in one round trip: a
    page that spans many tenants is recorded once per tenant."""
    context = current_request()
    origin = _origin()
    events = [_build(context, origin, **record) for record in records]
    _insert(events)
    if settings.AUDIT_SEAL_ON_COMMIT:
        # robust: the events are committed; a seal that fails now is made by the next one
        transaction.on_commit(audit_seal, robust=True)
    return events


def _build(
    context,
    origin,
    *,
    action,
    actor=None,
    tenant=None,
    target=None,
    target_type="",
    target_id="",
    target_label="",
    changes=None,
    reason="",
    metadata=None,
    actor_role=None,
    actor_label="",
) -> AuditEvent:
    if action not in _ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if actor is not None and not actor.is_authenticated:
        actor = None
    if target is not None:
        target_type, target_id, target_label = audit_target(target)
    return AuditEvent(
        occurred_at=timezone.now(),
        tenant=tenant,
        actor=actor,
        actor_label=actor.get_username() if actor is not None else mask(actor_label) if actor_label else "",
        actor_role=actor_role if actor_role is not None else _role(actor, tenant),
        action=action,
        origin=origin,
        target_type=target_type,
        target_id=str(target_id),
        target_label=target_label[:200],
        changes=changes or {},
        reason=reason,
        metadata=metadata or {},
        request_id=context.request_id if context else "",
        ip=context.ip if context else None,
        user_agent=context.user_agent if context else "",
    )


# Every column but the id, from the model; on PostgreSQL (see _insert), one row prepared, or many
# rows as one array a column.
_PG_INSERT = BulkInsert(AuditEvent, returning=["id"])
_PG_INSERT_MANY = BulkInsert(AuditEvent, returning=["id"], arrays=True)


def _insert(events: list[AuditEvent]) -> None:
    """Write the rows, in one statement. On PostgreSQL, on the request's own connection (and so in
    its transaction), bound by the server: recording a view is on every data page's path, and the
    ORM's insert machinery was half of its cost (see bench/audit_write.py)."""
    if connection.vendor != "postgresql":
        if len(events) == 1:
            events[0].save(force_insert=True)
        else:
            AuditEvent.objects.bulk_create(events)
        return
    insert = _PG_INSERT if len(events) == 1 else _PG_INSERT_MANY
    ids = insert.execute([insert.values_of(e) for e in events])
    for event, (pk,) in zip(events, ids, strict=True):
        event.pk = pk
        event._state.adding = False
        event._state.db = connection.alias


@transaction.atomic
def audit_seal(*, batch_size: int = SEAL_BATCH) -> int:
    """Give the next committed, unsealed events their sequence number and hash, chain by chain,
    in the order they committed. One sealer at a time (the state row's lock); writers never wait
    for it. Returns how many events it sealed.

    It reads only ids above the highest it sealed, plus the ids it saw missing below that (gaps:
    inserts whose transaction had not committed yet), so each run costs what is new, not what is
    old."""
    state, _ = AuditSealerState.objects.select_for_update().get_or_create(pk=1)
    now = timezone.now()
    gaps = {int(k): v for k, v in state.gaps.items()}
    late = list(AuditEvent.objects.filter(pk__in=list(gaps)).order_by("pk")) if gaps else []
    fresh = list(AuditEvent.objects.filter(pk__gt=state.high_id).order_by("pk")[:batch_size])
    pending = late + fresh
    if pending:
        chains = sorted({event.chain_key for event in pending})
        heads = {head.chain: head for head in AuditChainHead.objects.filter(chain__in=chains)}
        key_id = current_seal_key_id()
        seals = []
        for event in pending:
            head = heads.get(event.chain_key)
            if head is None:
                head = heads[event.chain_key] = AuditChainHead(chain=event.chain_key, seq=0, hash=GENESIS)
            digest = event_hash(head.hash, event, key_id=key_id)
            seal = AuditSeal(
                event_id=event.pk, chain=head.chain, seq=head.seq + 1, prev_hash=head.hash, hash=digest, key_id=key_id
            )
            seal.sealed_at = now
            seals.append(seal)
            head.seq, head.hash, head.updated_at = head.seq + 1, digest, now
        AuditSeal.objects.bulk_create(seals, batch_size=1000)
        for head in heads.values():
            head.save()
    for event in late:
        gaps.pop(event.pk, None)
    if fresh:
        seen = {event.pk for event in fresh}
        stamp = now.timestamp()
        # On the first run there is nothing below the first id to wait for.
        start = state.high_id + 1 if state.high_id else fresh[0].pk
        for missing in range(start, fresh[-1].pk):
            if missing not in seen:
                gaps[missing] = stamp
        state.high_id = fresh[-1].pk
    expiry = (now - SEAL_GRACE).timestamp()
    state.gaps = {str(k): v for k, v in gaps.items() if v > expiry}  # rolled back: never coming
    if pending or len(state.gaps) != len(gaps):
        state.save(update_fields=["high_id", "gaps"])
    return len(pending)


@transaction.atomic
def audit_checkpoint() -> list[AuditCheckpoint]:
    """Sign every chain head that moved since its last checkpoint (scheduled)."""
    made = []
    now = timezone.now()
    key_id = current_checkpoint_key_id()
    for head in AuditChainHead.objects.order_by("chain"):
        last = AuditCheckpoint.objects.filter(chain=head.chain).order_by("-seq").first()
        if last is not None and last.seq == head.seq:
            continue
        made.append(
            AuditCheckpoint.objects.create(
                chain=head.chain,
                seq=head.seq,
                hash=head.hash,
                created_at=now,
                key_id=key_id,
                signature=checkpoint_signature(
                    chain=head.chain, seq=head.seq, hash_=head.hash, created_at_iso=now.isoformat(), key_id=key_id
                ),
            )
        )
    return made

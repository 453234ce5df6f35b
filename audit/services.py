"""The audit API: `audit_record` for every change and every view of data, and the sealer that
places committed events in their tenant's hash chain."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.chain import GENESIS, checkpoint_signature, event_hash
from audit.masking import mask
from audit.models import Action, AuditChainHead, AuditCheckpoint, AuditEvent, AuditSeal, AuditSealerState, Origin
from config.logging import current_request, process_origin

# Seals are given in commit order, so a transaction still open when its events are this old
# would be missed by the sealer's scan; verify_audit reports such events as unsealed.
SEAL_GRACE = timedelta(minutes=60)
SEAL_BATCH = 5000


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
    if action not in Action.values:
        raise ValueError(f"unknown audit action {action!r}")
    if actor is not None and not actor.is_authenticated:
        actor = None
    if target is not None:
        target_type, target_id, target_label = audit_target(target)
    context = current_request()
    event = AuditEvent.objects.create(
        occurred_at=timezone.now(),
        tenant=tenant,
        actor=actor,
        actor_label=actor.get_username() if actor is not None else mask(actor_label) if actor_label else "",
        actor_role=actor_role if actor_role is not None else _role(actor, tenant),
        action=action,
        origin=_origin(),
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
    if settings.AUDIT_SEAL_ON_COMMIT:
        transaction.on_commit(audit_seal)
    return event


@transaction.atomic
def audit_seal(*, batch_size: int = SEAL_BATCH) -> int:
    """Give the next committed, unsealed events their sequence number and hash, chain by chain,
    in the order they committed. One sealer at a time (the state row's lock); writers never wait
    for it. Returns how many events it sealed."""
    state, _ = AuditSealerState.objects.select_for_update().get_or_create(pk=1)
    pending = list(AuditEvent.objects.filter(pk__gt=state.low_id, auditseal__isnull=True).order_by("pk")[:batch_size])
    now = timezone.now()
    if pending:
        chains = sorted({event.chain_key for event in pending})
        heads = {head.chain: head for head in AuditChainHead.objects.filter(chain__in=chains)}
        seals = []
        for event in pending:
            head = heads.get(event.chain_key)
            if head is None:
                head = heads[event.chain_key] = AuditChainHead(chain=event.chain_key, seq=0, hash=GENESIS)
            digest = event_hash(head.hash, event)
            seals.append(
                AuditSeal(
                    event_id=event.pk,
                    chain=head.chain,
                    seq=head.seq + 1,
                    prev_hash=head.hash,
                    hash=digest,
                    sealed_at=now,
                )
            )
            head.seq, head.hash, head.updated_at = head.seq + 1, digest, now
        AuditSeal.objects.bulk_create(seals, batch_size=1000)
        for head in heads.values():
            head.save()
    if len(pending) < batch_size:
        # Everything visible is sealed now; move the scan's floor up to what is past the grace period.
        floor = AuditEvent.objects.filter(pk__gt=state.low_id, occurred_at__lt=now - SEAL_GRACE).aggregate(m=Max("pk"))
        if floor["m"]:
            state.low_id = floor["m"]
            state.save(update_fields=["low_id"])
    return len(pending)


@transaction.atomic
def audit_checkpoint() -> list[AuditCheckpoint]:
    """Sign every chain head that moved since its last checkpoint (scheduled)."""
    made = []
    now = timezone.now()
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
                signature=checkpoint_signature(
                    chain=head.chain, seq=head.seq, hash_=head.hash, created_at_iso=now.isoformat()
                ),
            )
        )
    return made

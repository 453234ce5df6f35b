"""Recompute the hash chains and say where the first broken link is.

What breaks a link: an edited event (its keyed hash no longer matches, or was recomputed without
the key), a seal with a key id that is not configured, an unkeyed (legacy) seal after the newest
checkpoint whose signature verifies, a deleted event (a seal with no
event), a re-ordered or inserted event (sequence gap, wrong previous hash, or an event older than
its seal by more than the grace period), an event left unsealed past the grace period, and cut-off
newest events (a signed checkpoint further along than the chain, or one whose hash differs).
"""

import hmac
from dataclasses import dataclass, field

from django.utils import timezone

from audit.chain import GENESIS, LEGACY_KEY_ID, UnknownSealKeyError, checkpoint_signature, event_hash, seal_keys
from audit.models import AuditArchive, AuditCheckpoint, AuditEvent, AuditSeal
from audit.services import SEAL_GRACE

CHUNK = 2000


@dataclass
class Problem:
    chain: int
    seq: int | None
    event_id: int | None
    message: str

    def __str__(self) -> str:
        where = f"event {self.event_id}" if self.event_id is not None else "no event"
        return f"chain {self.chain}, seq {self.seq}, {where}: {self.message}"


@dataclass
class ChainReport:
    chain: int
    checked: int = 0
    first_seq: int = 1
    last_seq: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def chains_present() -> list[int]:
    chains = set(AuditSeal.objects.values_list("chain", flat=True).distinct())
    chains |= {tenant_id or 0 for tenant_id in AuditEvent.objects.values_list("tenant_id", flat=True).distinct()}
    chains |= set(AuditCheckpoint.objects.values_list("chain", flat=True).distinct())
    return sorted(chains)


def verify_chain(chain: int, *, stop_at_first: bool = True) -> ChainReport:
    report = ChainReport(chain=chain)
    archive = AuditArchive.objects.filter(chain=chain).order_by("-last_seq").first()
    expected_seq, expected_prev = (archive.last_seq + 1, archive.head_hash) if archive else (1, GENESIS)
    report.first_seq = expected_seq
    checkpoints = list(AuditCheckpoint.objects.filter(chain=chain).order_by("seq"))
    wanted = {checkpoint.seq for checkpoint in checkpoints}
    signed = {checkpoint.pk for checkpoint in checkpoints if _signature_valid(chain, checkpoint)}
    # Unkeyed seals (made before seals were keyed) hold only where a signed checkpoint pins them:
    # anyone who can write the tables could have recomputed one after that point.
    pinned_seq = max((checkpoint.seq for checkpoint in checkpoints if checkpoint.pk in signed), default=0)
    hashes: dict[int, str] = {}  # only at checkpointed positions: a chain can be billions long

    def problem(seq, event_id, message) -> bool:
        report.problems.append(Problem(chain, seq, event_id, message))
        return stop_at_first

    keys = seal_keys()
    last_seq = expected_seq - 1
    seals = AuditSeal.objects.filter(chain=chain, seq__gte=expected_seq).order_by("seq")
    done = False
    while not done:
        batch = list(seals.filter(seq__gt=last_seq)[:CHUNK])
        if not batch:
            break
        events = AuditEvent.objects.in_bulk([seal.event_id for seal in batch])
        for seal in batch:
            last_seq = seal.seq
            event = events.get(seal.event_id)
            if seal.seq != expected_seq:
                done = problem(seal.seq, seal.event_id, f"sequence jumps from {expected_seq - 1} to {seal.seq}")
            elif seal.prev_hash != expected_prev:
                done = problem(seal.seq, seal.event_id, "previous-hash link broken (a row inserted or re-ordered)")
            elif event is None:
                done = problem(seal.seq, seal.event_id, "event missing (deleted)")
            elif seal.key_id == LEGACY_KEY_ID and seal.seq > pinned_seq:
                done = problem(seal.seq, seal.event_id, "unkeyed seal after the last signed checkpoint (forged)")
            elif seal.key_id != LEGACY_KEY_ID and seal.key_id not in keys:
                done = problem(seal.seq, seal.event_id, f"sealed with an unknown key ({seal.key_id!r})")
            elif event.chain_key != chain or not _hash_matches(seal, event):
                done = problem(seal.seq, seal.event_id, "content does not match its hash (edited)")
            elif event.occurred_at < seal.sealed_at - SEAL_GRACE:
                done = problem(seal.seq, seal.event_id, "event is older than its seal allows (back-dated insert)")
            if done:
                break
            report.checked += 1
            if seal.seq in wanted:
                hashes[seal.seq] = seal.hash
            expected_seq, expected_prev = seal.seq + 1, seal.hash
    report.last_seq = expected_seq - 1
    if done:
        return report

    stale = timezone.now() - SEAL_GRACE
    unsealed = (
        AuditEvent.objects.filter(occurred_at__lt=stale, auditseal__isnull=True)
        .filter(**({"tenant_id": chain} if chain else {"tenant__isnull": True}))
        .order_by("pk")
        .first()
    )
    if unsealed is not None and problem(None, unsealed.pk, "event never sealed (inserted outside the sealer)"):
        return report

    for checkpoint in checkpoints:
        if checkpoint.pk not in signed:
            if problem(checkpoint.seq, None, "checkpoint signature invalid (forged or key changed)"):
                return report
        elif checkpoint.seq > report.last_seq:
            if problem(checkpoint.seq, None, f"chain ends at {report.last_seq}: newest events were cut off"):
                return report
        elif checkpoint.seq >= report.first_seq and hashes.get(checkpoint.seq) != checkpoint.hash:
            if problem(checkpoint.seq, None, "checkpointed hash differs from the chain's"):
                return report
    return report


def _signature_valid(chain: int, checkpoint: AuditCheckpoint) -> bool:
    try:
        expected = checkpoint_signature(
            chain=chain, seq=checkpoint.seq, hash_=checkpoint.hash,
            created_at_iso=checkpoint.created_at.isoformat(), key_id=checkpoint.key_id,
        )  # fmt: skip
    except UnknownSealKeyError:  # signed with a key no longer (or never) configured
        return False
    return hmac.compare_digest(expected, checkpoint.signature)


def _hash_matches(seal: AuditSeal, event: AuditEvent) -> bool:
    try:
        return hmac.compare_digest(event_hash(seal.prev_hash, event, key_id=seal.key_id), seal.hash)
    except UnknownSealKeyError:
        return False

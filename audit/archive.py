"""Retention: a closed segment of a chain leaves the database only into a verifiable file, and the
removal is itself recorded in the chain. Never a silent delete.

File format (JSON lines): a header {"format", "chain", "first_seq", "last_seq", "prev_hash",
"head_hash", "count", "created_at"}, then one line per event in chain order:
{"seq", "hash", "key_id", "sealed_at", "content"} where "content" is the event's canonical JSON, so
the file verifies with nothing but itself and the seal keys: HMAC-SHA256(key "key_id", prev_hash
"\\n" content) must give each "hash" (plain SHA-256 for a seal made before seals were keyed, key id
"", and for every line of a format 1 file). A format 2 header also carries "signature", its chain,
last seq, head hash and time signed with AUDIT_CHECKPOINT_KEY: lines rewritten and re-hashed the
unkeyed way cannot reach a signed head.
"""

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit import triggers
from audit.chain import (
    GENESIS,
    LEGACY_KEY_ID,
    UnknownSealKeyError,
    canonical,
    checkpoint_signature,
    content_hash,
    current_checkpoint_key_id,
)
from audit.models import Action, AuditArchive, AuditEvent, AuditSeal
from audit.services import audit_record, audit_seal
from audit.verify import verify_chain

FORMAT = "alertdesk-audit-archive/2"
FORMATS = ("alertdesk-audit-archive/1", FORMAT)  # 1: before seals were keyed


class ArchiveError(Exception):
    pass


def retention_cutoff(tenant) -> datetime:
    days = tenant.audit_retention_days if tenant is not None else settings.AUDIT_GLOBAL_RETENTION_DAYS
    return timezone.now() - timedelta(days=days)


def audit_archive_segment(
    *, tenant, before: datetime | None = None, directory: Path | None = None
) -> AuditArchive | None:
    """Archive the oldest events of `tenant`'s chain (None: the chain without a tenant) that are
    older than its retention period (or `before`, which may only be earlier). Returns None when
    nothing is old enough. Runs as the table owner: it lifts the append-only triggers for its
    own transaction only."""
    cutoff = retention_cutoff(tenant)
    if before is not None:
        if before > cutoff:
            raise ArchiveError(f"retention keeps these events until {cutoff:%Y-%m-%d}; refusing an earlier archive")
        cutoff = before
    chain = tenant.pk if tenant is not None else 0
    while audit_seal():
        pass
    report = verify_chain(chain)
    if not report.intact:
        raise ArchiveError(f"the chain is broken ({report.problems[0]}); archive nothing until it is investigated")

    previous = AuditArchive.objects.filter(chain=chain).order_by("-last_seq").first()
    first_seq, prev_hash = (previous.last_seq + 1, previous.head_hash) if previous else (1, GENESIS)
    seals = list(
        AuditSeal.objects.filter(chain=chain, seq__gte=first_seq, event__occurred_at__lt=cutoff).order_by("seq")
    )
    # Only a contiguous run from the chain's start: the segment must close cleanly.
    segment = []
    for expected, seal in enumerate(seals, start=first_seq):
        if seal.seq != expected:
            break
        segment.append(seal)
    if not segment:
        return None
    last = segment[-1]
    events = AuditEvent.objects.in_bulk([seal.event_id for seal in segment])

    directory = Path(directory or settings.AUDIT_ARCHIVE_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"audit-chain{chain}-{first_seq:012d}-{last.seq:012d}.jsonl"
    now = timezone.now()
    digest = hashlib.sha256()
    with path.open("xb") as out:

        def write(obj):
            line = json.dumps(obj, sort_keys=True, ensure_ascii=False).encode() + b"\n"
            digest.update(line)
            out.write(line)

        write(
            {
                "format": FORMAT,
                "chain": chain,
                "first_seq": first_seq,
                "last_seq": last.seq,
                "prev_hash": prev_hash,
                "head_hash": last.hash,
                "count": len(segment),
                "created_at": now.isoformat(),
                # The head signed with the checkpoint key (outside the database): a file whose lines
                # were rewritten and re-hashed cannot reach this head, nor sign another.
                "signature_key_id": current_checkpoint_key_id(),
                "signature": checkpoint_signature(
                    chain=chain,
                    seq=last.seq,
                    hash_=last.hash,
                    created_at_iso=now.isoformat(),
                    key_id=current_checkpoint_key_id(),
                ),  # fmt: skip
            }
        )
        for seal in segment:
            write(
                {
                    "seq": seal.seq,
                    "hash": seal.hash,
                    "key_id": seal.key_id,
                    "sealed_at": seal.sealed_at.isoformat(),
                    "content": canonical(events[seal.event_id]).decode(),
                }
            )
    problems = archive_file_verify(path)
    if problems:
        path.unlink()
        raise ArchiveError(f"the archive file did not verify: {problems[0]}")

    ids = [seal.event_id for seal in segment]
    with transaction.atomic():
        triggers.suspend(connection, ("audit_auditevent", "audit_auditseal"))
        for start in range(0, len(ids), 1000):
            AuditSeal.objects.filter(event_id__in=ids[start : start + 1000]).delete()
            AuditEvent.objects.filter(pk__in=ids[start : start + 1000]).delete()
        triggers.restore(connection, ("audit_auditevent", "audit_auditseal"))
        archive = AuditArchive.objects.create(
            chain=chain,
            first_seq=first_seq,
            last_seq=last.seq,
            head_hash=last.hash,
            file_name=path.name,
            file_sha256=digest.hexdigest(),
            event_count=len(segment),
            created_at=now,
        )
        audit_record(
            action=Action.ARCHIVED,
            tenant=tenant,
            target=archive,
            metadata={
                "first_seq": first_seq,
                "last_seq": last.seq,
                "head_hash": last.hash,
                "file": path.name,
                "file_sha256": digest.hexdigest(),
                "count": len(segment),
                "cutoff": cutoff.isoformat(),
            },
        )
    return archive


@dataclass
class ArchiveHeader:
    chain: int
    first_seq: int
    last_seq: int
    prev_hash: str
    head_hash: str
    count: int


def _header_signed(header: "ArchiveHeader", raw: dict) -> bool:
    try:
        expected = checkpoint_signature(
            chain=header.chain, seq=header.last_seq, hash_=header.head_hash,
            created_at_iso=str(raw.get("created_at")), key_id=str(raw.get("signature_key_id", LEGACY_KEY_ID)),
        )  # fmt: skip
    except UnknownSealKeyError:
        return False
    return hmac.compare_digest(str(raw.get("signature", "")), expected)


def archive_file_verify(path: Path) -> list[str]:
    """Problems found in an archive file (empty when it verifies): every hash recomputed from
    the content, links unbroken, the header's head hash reached, and, when the database still
    knows the archive, the file's checksum as recorded."""
    problems: list[str] = []
    digest = hashlib.sha256()
    with Path(path).open("rb") as lines:
        header_line = lines.readline()
        digest.update(header_line)
        try:
            raw = json.loads(header_line)
            header = ArchiveHeader(
                *(raw[k] for k in ("chain", "first_seq", "last_seq", "prev_hash", "head_hash", "count"))
            )
        except (ValueError, KeyError, TypeError):
            return ["not an audit archive (bad header)"]
        if raw.get("format") not in FORMATS:
            return [f"unknown format {raw.get('format')!r}"]
        if raw["format"] == FORMAT and not _header_signed(header, raw):
            return ["the header's signature is invalid (a forged file, or another AUDIT_CHECKPOINT_KEY)"]
        prev, seq, count = header.prev_hash, header.first_seq, 0
        for line in lines:
            digest.update(line)
            row = json.loads(line)
            if row["seq"] != seq:
                problems.append(f"seq {row['seq']}: expected {seq}")
                break
            try:
                expected = content_hash(prev, row["content"].encode(), key_id=row.get("key_id", LEGACY_KEY_ID))
            except UnknownSealKeyError:
                problems.append(f"seq {row['seq']}: sealed with an unknown key ({row['key_id']!r})")
                break
            if expected != row["hash"]:
                problems.append(f"seq {row['seq']}: content does not match its hash")
                break
            prev, seq, count = row["hash"], seq + 1, count + 1
    if not problems:
        if count != header.count or seq - 1 != header.last_seq:
            problems.append(f"holds {count} events, the header says {header.count}")
        elif prev != header.head_hash:
            problems.append("the last hash is not the header's head hash")
    recorded = AuditArchive.objects.filter(chain=header.chain, last_seq=header.last_seq).first()
    if recorded is not None and not problems:
        if recorded.head_hash != header.head_hash:
            problems.append("the head hash differs from the one recorded when the archive was made")
        elif recorded.file_sha256 != digest.hexdigest():
            problems.append("the file differs from the one recorded when the archive was made")
    return problems

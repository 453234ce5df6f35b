"""Retention: archive a closed segment into a verifiable file; the chain records the removal."""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from audit import triggers
from audit.archive import ArchiveError, archive_file_verify, audit_archive_segment
from audit.models import Action, AuditArchive, AuditEvent, AuditSeal
from audit.services import audit_record, audit_seal
from audit.verify import verify_chain

pytestmark = pytest.mark.django_db


def age(events, days):
    """Make unsealed events look recorded and sealed `days` ago (the test stands in for time passing)."""
    then = timezone.now() - timedelta(days=days)
    ids = [e.pk for e in events]
    with transaction.atomic():
        triggers.suspend(connection, ("audit_auditevent", "audit_auditseal"))
        AuditEvent.objects.filter(pk__in=ids).update(occurred_at=then)
        audit_seal()
        AuditSeal.objects.filter(event_id__in=ids).update(sealed_at=then)
        triggers.restore(connection, ("audit_auditevent", "audit_auditseal"))


@pytest.fixture
def old_and_new(tenant_a, settings):
    settings.AUDIT_SEAL_ON_COMMIT = False  # age the events before they are sealed, as if recorded back then
    tenant_a.audit_retention_days = 30
    tenant_a.save()
    creation = list(AuditEvent.objects.filter(tenant=tenant_a))
    old = [audit_record(action=Action.VIEW, tenant=tenant_a, target_type="t", target_id=str(i)) for i in range(4)]
    age(creation + old, 40)
    new = [audit_record(action=Action.VIEW, tenant=tenant_a, target_type="t", target_id=f"n{i}") for i in range(2)]
    audit_seal()
    return creation + old, new


def test_archive_moves_the_old_segment_to_a_file_and_the_chain_still_verifies(tenant_a, old_and_new, tmp_path):
    old, new = old_and_new
    archive = audit_archive_segment(tenant=tenant_a, directory=tmp_path)
    assert (archive.first_seq, archive.last_seq, archive.event_count) == (1, len(old), len(old))
    assert not AuditEvent.objects.filter(pk__in=[e.pk for e in old]).exists()
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in new]).count() == 2

    removal = AuditEvent.objects.get(action=Action.ARCHIVED)
    assert removal.metadata["head_hash"] == archive.head_hash and removal.metadata["count"] == len(old)
    audit_seal()
    report = verify_chain(tenant_a.pk)
    assert report.intact and report.first_seq == len(old) + 1

    path = tmp_path / archive.file_name
    assert archive_file_verify(path) == []
    out = io.StringIO()
    call_command("verify_audit", "--archive", str(path), stdout=out)
    assert "intact" in out.getvalue()


def test_a_tampered_archive_file_is_detected(tenant_a, old_and_new, tmp_path):
    archive = audit_archive_segment(tenant=tenant_a, directory=tmp_path)
    path = tmp_path / archive.file_name
    lines = path.read_text().splitlines()
    edited = next(i for i, line in enumerate(lines) if i and '\\"action\\":\\"view\\"' in line)  # an old view
    row = json.loads(lines[edited])
    row["content"] = row["content"].replace('"action":"view"', '"action":"list"')
    lines[edited] = json.dumps(row, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    assert "content does not match its hash" in archive_file_verify(path)[0]
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit", "--archive", str(path), stdout=io.StringIO())
    assert exit_info.value.code == 1


def test_an_archive_file_holds_keyed_hashes_that_verify_only_with_the_seal_keys(
    tenant_a, old_and_new, tmp_path, settings
):
    import hashlib

    from audit.models import AuditArchive

    archive = audit_archive_segment(tenant=tenant_a, directory=tmp_path)
    path = tmp_path / archive.file_name
    rows = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    assert {row["key_id"] for row in rows} == {settings.AUDIT_SEAL_KEYS[0][0]}
    # An edited line rehashed with plain SHA-256 (as the unkeyed format allowed) does not verify,
    # even once the database no longer knows the file.
    lines = path.read_text().splitlines()
    row = json.loads(lines[-1])
    row["content"] = row["content"].replace('"action":"view"', '"action":"list"')
    row["hash"] = hashlib.sha256(row_prev(lines).encode() + b"\n" + row["content"].encode()).hexdigest()
    lines[-1] = json.dumps(row, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    with transaction.atomic():
        triggers.suspend(connection, ("audit_auditarchive",))
        AuditArchive.objects.filter(pk=archive.pk).delete()
        triggers.restore(connection, ("audit_auditarchive",))
    assert "content does not match its hash" in archive_file_verify(path)[0]
    settings.AUDIT_SEAL_KEYS = [("other", "a-key-that-sealed-nothing-here-0")]
    assert "unknown key" in archive_file_verify(path)[0]


def test_an_archive_rewritten_as_unkeyed_seals_with_a_new_head_is_caught_by_the_header_signature(
    tenant_a, old_and_new, tmp_path, settings
):
    import hashlib

    from audit.models import AuditArchive

    archive = audit_archive_segment(tenant=tenant_a, directory=tmp_path)
    path = tmp_path / archive.file_name
    assert archive_file_verify(path) == []
    with transaction.atomic():  # the database no longer knows the file: it must stand on its own
        triggers.suspend(connection, ("audit_auditarchive",))
        AuditArchive.objects.filter(pk=archive.pk).delete()
        triggers.restore(connection, ("audit_auditarchive",))
    lines = path.read_text().splitlines()
    header, rows = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    rows[0]["content"] = rows[0]["content"].replace('"action":"view"', '"action":"list"')
    prev = header["prev_hash"]
    for row in rows:  # every line re-hashed as a seal from before seals were keyed
        row["key_id"] = ""
        row["hash"] = prev = hashlib.sha256(prev.encode() + b"\n" + row["content"].encode()).hexdigest()
    header["head_hash"] = prev
    path.write_text("\n".join(json.dumps(o, sort_keys=True) for o in [header, *rows]) + "\n")
    assert archive_file_verify(path) == [
        "the header's signature is invalid (a forged file, or another AUDIT_CHECKPOINT_KEY)"
    ]


def row_prev(lines):
    return json.loads(lines[-2])["hash"] if len(lines) > 2 else json.loads(lines[0])["prev_hash"]


def test_nothing_newer_than_the_retention_period_leaves(tenant_a, tmp_path):
    audit_record(action=Action.VIEW, tenant=tenant_a, target_type="t", target_id="1")
    assert audit_archive_segment(tenant=tenant_a, directory=tmp_path) is None
    with pytest.raises(ArchiveError, match="retention keeps"):
        audit_archive_segment(tenant=tenant_a, before=timezone.now(), directory=tmp_path)
    assert not AuditArchive.objects.exists()


def test_a_broken_chain_is_not_archived(tenant_a, old_and_new, tmp_path):
    old, _ = old_and_new
    with transaction.atomic():
        triggers.suspend(connection, ("audit_auditevent",))
        AuditEvent.objects.filter(pk=old[1].pk).update(reason="edited")
        triggers.restore(connection, ("audit_auditevent",))
    with pytest.raises(ArchiveError, match="broken"):
        audit_archive_segment(tenant=tenant_a, directory=tmp_path)
    assert AuditSeal.objects.filter(event_id=old[0].pk).exists() and not list(tmp_path.iterdir())


def test_archive_command(tenant_a, old_and_new, tmp_path):
    out = io.StringIO()
    call_command("audit_archive", "--tenant", tenant_a.slug, "--dir", str(tmp_path), stdout=out)
    assert "the removal is recorded in the chain" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("audit_archive", "--tenant", "nope", "--dir", str(tmp_path))
    with pytest.raises(CommandError):
        call_command("audit_archive", "--tenant", tenant_a.slug, "--before", "31-12-2020")

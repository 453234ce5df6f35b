"""Append-only triggers, the hash chain, verify_audit and the four kinds of tampering."""

import io
import threading

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, connections, transaction

from audit import triggers
from audit.models import Action, AuditCheckpoint, AuditEvent, AuditSeal
from audit.services import audit_checkpoint, audit_record, audit_seal
from audit.verify import verify_chain


def record(tenant=None, n=1, **kwargs):
    return [
        audit_record(action=Action.VIEW, tenant=tenant, target_type="test.thing", target_id=str(i), **kwargs)
        for i in range(n)
    ]


def chain_length(tenant) -> int:
    audit_seal()
    return AuditSeal.objects.filter(chain=tenant.pk if tenant else 0).count()


def verify(*args) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=out)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


def tamper(sql, params=()):
    """Change the table behind the application's back, as someone with the owner's rights would."""
    with transaction.atomic():
        triggers.suspend(connection)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        triggers.restore(connection)


@pytest.mark.django_db
class TestAppendOnly:
    @pytest.mark.parametrize("table", triggers.APPEND_ONLY_TABLES)
    def test_raw_update_and_delete_are_refused(self, tenant_a, table):
        from django.utils import timezone

        from audit.models import AuditArchive

        record(tenant_a, 2)
        audit_seal()
        audit_checkpoint()
        AuditArchive.objects.create(
            chain=1, first_seq=1, last_seq=1, head_hash="0", file_name="x", file_sha256="0", event_count=1,
            created_at=timezone.now(),
        )  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")
            before = cursor.fetchone()[0]
        assert before > 0  # a row trigger only fires for rows the statement touches
        for sql in (f"UPDATE {table} SET {_column(table)} = {_column(table)}", f"DELETE FROM {table}"):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(sql)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")
            assert cursor.fetchone()[0] == before

    def test_orm_update_and_delete_are_refused(self, tenant_a):
        (event,) = record(tenant_a)
        with pytest.raises(DatabaseError), transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")
        with pytest.raises(DatabaseError), transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).delete()
        assert AuditEvent.objects.get(pk=event.pk).reason == ""

    def test_truncate_is_refused_on_postgresql(self, tenant_a):
        if connection.vendor != "postgresql":
            pytest.skip("TRUNCATE exists on PostgreSQL only (SQLite's DELETE is covered above)")
        record(tenant_a)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # else TRUNCATE stops at pending FK checks
        for table in triggers.APPEND_ONLY_TABLES:
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(f"TRUNCATE {table} CASCADE")
        assert AuditEvent.objects.exists()

    def test_no_record_of_a_change_that_rolled_back(self, tenant_a):
        before = AuditEvent.objects.count()
        with pytest.raises(RuntimeError), transaction.atomic():
            record(tenant_a)
            raise RuntimeError("the change failed")
        assert AuditEvent.objects.count() == before


def _column(table):
    return {"audit_auditevent": "reason", "audit_auditseal": "hash", "audit_auditcheckpoint": "hash"}.get(
        table, "file_name"
    )


@pytest.mark.django_db
class TestChain:
    def test_each_tenant_has_its_own_chain_in_commit_order(self, tenant_a, tenant_b):
        start_a, start_b, start_g = chain_length(tenant_a), chain_length(tenant_b), chain_length(None)
        a = record(tenant_a, 3)
        b = record(tenant_b, 2)
        g = record(None, 1)
        audit_seal()
        seals_a = AuditSeal.objects.filter(chain=tenant_a.pk, seq__gt=start_a).order_by("seq")
        assert list(seals_a.values_list("event_id", "seq")) == [(e.pk, start_a + i + 1) for i, e in enumerate(a)]
        assert AuditSeal.objects.filter(chain=tenant_b.pk).count() == start_b + len(b)
        assert AuditSeal.objects.get(chain=0, seq=start_g + 1).event_id == g[0].pk
        for chain in (tenant_a.pk, tenant_b.pk, 0):
            assert verify_chain(chain).intact

    def test_verify_audit_passes_on_an_intact_trail(self, tenant_a):
        start = chain_length(tenant_a)
        record(tenant_a, 5)
        code, out = verify("--tenant", tenant_a.slug)
        assert code == 0, out
        assert f"intact, {start + 5} events" in out

    def test_edited_row_is_detected(self, tenant_a):
        events = record(tenant_a, 4)
        audit_seal()
        tamper("UPDATE audit_auditevent SET reason = 'nothing to see' WHERE id = %s", [events[2].pk])
        code, out = verify("--tenant", tenant_a.slug)
        assert code == 1
        assert f"event {events[2].pk}: content does not match its hash (edited)" in out

    def test_deleted_row_is_detected(self, tenant_a):
        events = record(tenant_a, 4)
        audit_seal()
        tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
        code, out = verify("--tenant", tenant_a.slug)
        assert code == 1 and f"event {events[1].pk}: event missing (deleted)" in out

    def test_deleted_row_and_its_seal_are_detected(self, tenant_a):
        events = record(tenant_a, 4)
        audit_seal()
        seq = AuditSeal.objects.get(event_id=events[1].pk).seq
        tamper("DELETE FROM audit_auditseal WHERE event_id = %s", [events[1].pk])
        tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
        code, out = verify("--tenant", tenant_a.slug)
        assert code == 1 and f"sequence jumps from {seq - 1} to {seq + 1}" in out

    def test_reordered_rows_are_detected(self, tenant_a):
        events = record(tenant_a, 4)
        audit_seal()
        # Swap the places of events 2 and 3 in the chain.
        first, second = events[1].pk, events[2].pk
        tamper("UPDATE audit_auditseal SET event_id = -1 WHERE event_id = %s", [first])
        tamper("UPDATE audit_auditseal SET event_id = %s WHERE event_id = %s", [first, second])
        tamper("UPDATE audit_auditseal SET event_id = %s WHERE event_id = -1", [second])
        seq = AuditSeal.objects.get(event_id=first).seq
        code, out = verify("--tenant", tenant_a.slug)
        assert code == 1 and f"seq {seq - 1}," in out and "(edited)" in out

    def test_inserted_row_is_detected(self, tenant_a):
        events = record(tenant_a, 3)
        audit_seal()
        forged = record(tenant_a)[0]  # a real row, then forced into the middle of the chain
        seq = AuditSeal.objects.get(event_id=events[1].pk).seq
        # Renumber from the end down, so that (chain, seq) stays unique at every step.
        for later in AuditSeal.objects.filter(chain=tenant_a.pk, seq__gte=seq).order_by("-seq"):
            tamper("UPDATE audit_auditseal SET seq = seq + 1 WHERE event_id = %s", [later.event_id])
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO audit_auditseal (event_id, chain, seq, prev_hash, hash, sealed_at) "
                "SELECT %s, chain, %s, hash, hash, sealed_at FROM audit_auditseal WHERE event_id = %s",
                [forged.pk, seq, events[0].pk],
            )
        code, out = verify("--tenant", tenant_a.slug, "--no-seal")
        assert code == 1 and f"event {forged.pk}" in out

    def test_back_dated_insert_through_the_sealer_is_detected(self, tenant_a):
        from datetime import timedelta

        from django.utils import timezone

        record(tenant_a, 2)
        audit_seal()
        forged = record(tenant_a)[0]
        tamper(
            "UPDATE audit_auditevent SET occurred_at = %s WHERE id = %s",
            [timezone.now() - timedelta(days=30), forged.pk],
        )
        audit_seal()
        code, out = verify("--tenant", tenant_a.slug)
        assert code == 1 and "back-dated" in out

    def test_cut_off_newest_events_are_detected_by_the_signed_checkpoint(self, tenant_a):
        start = chain_length(tenant_a)
        events = record(tenant_a, 5)
        audit_seal()
        checkpoint = AuditCheckpoint.objects.get(pk__in=[c.pk for c in audit_checkpoint()], chain=tenant_a.pk)
        assert checkpoint.seq == start + 5
        for event in events[3:]:
            tamper("DELETE FROM audit_auditseal WHERE event_id = %s", [event.pk])
            tamper("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
        code, out = verify("--tenant", tenant_a.slug)
        assert code == 1 and "newest events were cut off" in out

    def test_a_forged_checkpoint_is_detected(self, tenant_a):
        record(tenant_a, 2)
        audit_seal()
        audit_checkpoint()
        tamper("UPDATE audit_auditcheckpoint SET seq = seq - 1")
        code, out = verify("--tenant", tenant_a.slug)
        assert code == 1 and "signature invalid" in out

    def test_checkpoints_only_when_the_head_moved(self, tenant_a):
        record(tenant_a, 2)
        audit_seal()
        assert tenant_a.pk in {c.chain for c in audit_checkpoint()}
        assert audit_checkpoint() == []
        record(tenant_a)
        audit_seal()
        assert [(c.chain, c.seq) for c in audit_checkpoint()] == [(tenant_a.pk, chain_length(tenant_a))]

    def test_verify_audit_refuses_an_unknown_tenant(self, db):
        from django.core.management import CommandError

        with pytest.raises(CommandError):
            call_command("verify_audit", "--tenant", "nope")


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_parallel_writers_and_sealers_keep_every_chain_intact(tenant_a, tenant_b, settings):
    settings.AUDIT_SEAL_ON_COMMIT = False
    errors = []

    def writer(tenant, n):
        try:
            for _ in range(n):
                with transaction.atomic():
                    record(tenant, 3)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    def sealer(rounds):
        try:
            for _ in range(rounds):
                audit_seal(batch_size=50)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(t, 40)) for t in (tenant_a, tenant_b) * 4]
    threads += [threading.Thread(target=sealer, args=(30,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    while audit_seal():
        pass
    assert AuditEvent.objects.filter(target_type="test.thing").count() == 8 * 40 * 3
    assert AuditSeal.objects.count() == AuditEvent.objects.count()
    for tenant in (tenant_a, tenant_b):
        report = verify_chain(tenant.pk)
        assert report.intact and report.checked == 4 * 40 * 3 + 2  # + the tenant's creation and its default queue's


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_an_event_committed_after_the_sealer_passed_its_id_is_sealed_late(tenant_a, settings):
    from audit.models import AuditSealerState

    settings.AUDIT_SEAL_ON_COMMIT = False
    inserted, release = threading.Event(), threading.Event()
    slow = {}

    def slow_transaction():
        try:
            with transaction.atomic():
                slow["event"] = record(tenant_a)[0]
                inserted.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_transaction)
    thread.start()
    inserted.wait(10)
    quick = record(tenant_a)[0]  # a higher id, committed first
    audit_seal()
    assert AuditSeal.objects.filter(event_id=quick.pk).exists()
    assert str(slow["event"].pk) in AuditSealerState.objects.get().gaps
    release.set()
    thread.join()
    audit_seal()
    assert AuditSeal.objects.filter(event_id=slow["event"].pk).exists()
    assert AuditSealerState.objects.get().gaps == {}
    assert verify_chain(tenant_a.pk).intact


@pytest.mark.django_db
def test_a_rolled_back_insert_leaves_a_gap_that_expires(tenant_a, settings):
    from audit.models import AuditSealerState
    from audit.services import SEAL_GRACE

    if connection.vendor == "sqlite":
        pytest.skip("SQLite reuses a rolled-back insert's id: no gap is left")
    settings.AUDIT_SEAL_ON_COMMIT = False
    audit_seal()
    with pytest.raises(RuntimeError), transaction.atomic():
        record(tenant_a)
        raise RuntimeError("rolled back")
    record(tenant_a)
    audit_seal()
    state = AuditSealerState.objects.get()
    assert len(state.gaps) == 1
    state.gaps = {k: v - SEAL_GRACE.total_seconds() - 1 for k, v in state.gaps.items()}
    state.save()
    audit_seal()
    assert AuditSealerState.objects.get().gaps == {}


def _reseal(event_id: int, *, key_id: str, key: bytes | None):
    """Recompute one seal's hash the way a database owner without the seal key could: plain SHA-256
    (key None), or an HMAC with a key of their own, under the seal's key id or another."""
    import hashlib
    import hmac

    from audit.chain import canonical

    seal = AuditSeal.objects.get(event_id=event_id)
    message = seal.prev_hash.encode() + b"\n" + canonical(AuditEvent.objects.get(pk=event_id))
    digest = hashlib.sha256(message).hexdigest() if key is None else hmac.new(key, message, "sha256").hexdigest()
    tamper("UPDATE audit_auditseal SET hash = %s, key_id = %s WHERE event_id = %s", [digest, key_id, event_id])


def _legacy_chain(chain: int):
    """Rewrite a whole chain as seals made before seals were keyed: key id "", plain SHA-256."""
    import hashlib

    from audit.chain import GENESIS, canonical
    from audit.models import AuditChainHead

    prev = GENESIS
    for seal in AuditSeal.objects.filter(chain=chain).order_by("seq"):
        digest = hashlib.sha256(prev.encode() + b"\n" + canonical(AuditEvent.objects.get(pk=seal.event_id)))
        prev_hash, prev = prev, digest.hexdigest()
        tamper(
            "UPDATE audit_auditseal SET prev_hash = %s, hash = %s, key_id = '' WHERE event_id = %s",
            [prev_hash, prev, seal.event_id],
        )
    AuditChainHead.objects.filter(chain=chain).update(hash=prev)


KEY_1 = ("k1", "first-seal-key-for-tests-only-0123456789")
KEY_2 = ("k2", "second-seal-key-for-tests-only-0123456789")


@pytest.mark.django_db
class TestKeyedSeals:
    @pytest.fixture(autouse=True)
    def _keys(self, settings):
        settings.AUDIT_SEAL_KEYS = [KEY_1]

    def test_every_new_seal_is_keyed_with_the_newest_key(self, tenant_a):
        record(tenant_a, 2)
        audit_seal()
        assert set(AuditSeal.objects.filter(chain=tenant_a.pk).values_list("key_id", flat=True)) == {"k1"}

    @pytest.mark.parametrize("key_id, key", [
        ("k1", None),  # SHA-256 as the unkeyed chain had it, key id left in place
        ("", None),  # passed off as a seal made before seals were keyed
        ("k1", b"a-key-the-owner-made-up"),  # an HMAC, but not with the seal key
    ])  # fmt: skip
    def test_edited_newest_event_resealed_without_the_key_is_detected(self, tenant_a, key_id, key):
        events = record(tenant_a, 3)
        audit_seal()
        audit_checkpoint()
        newest = record(tenant_a)[0]  # after the last checkpoint: no signature pins it
        audit_seal()
        tamper("UPDATE audit_auditevent SET reason = 'nothing to see' WHERE id = %s", [newest.pk])
        _reseal(newest.pk, key_id=key_id, key=key)
        code, out = verify("--tenant", tenant_a.slug)
        assert code == 1, out
        assert f"event {newest.pk}:" in out
        assert not any(f"event {e.pk}:" in out for e in events)  # the earlier events are intact

    def test_verify_with_another_key_reports_the_chain_broken(self, tenant_a, settings):
        record(tenant_a, 2)
        audit_seal()
        assert verify("--tenant", tenant_a.slug)[0] == 0
        settings.AUDIT_SEAL_KEYS = [("k1", "not-the-key-the-seals-were-made-with")]
        code, out = verify("--tenant", tenant_a.slug, "--no-seal")
        assert code == 1 and "content does not match its hash" in out
        settings.AUDIT_SEAL_KEYS = [("k9", "a-key-with-an-id-no-seal-names-00")]
        code, out = verify("--tenant", tenant_a.slug, "--no-seal")
        assert code == 1 and "sealed with an unknown key ('k1')" in out

    def test_rotation_keeps_old_seals_verifying(self, tenant_a, settings):
        old = record(tenant_a, 2)
        audit_seal()
        settings.AUDIT_SEAL_KEYS = [KEY_2, KEY_1]
        new = record(tenant_a, 2)
        audit_seal()
        seals = AuditSeal.objects.filter(event_id__in=[e.pk for e in old + new])
        key_ids = dict(seals.values_list("event_id", "key_id"))
        assert [key_ids[e.pk] for e in old + new] == ["k1", "k1", "k2", "k2"]
        assert verify("--tenant", tenant_a.slug)[0] == 0
        settings.AUDIT_SEAL_KEYS = [KEY_2]  # the old key dropped too early
        code, out = verify("--tenant", tenant_a.slug, "--no-seal")
        assert code == 1 and "unknown key ('k1')" in out

    def test_unkeyed_seals_hold_only_up_to_a_signed_checkpoint(self, tenant_a):
        record(tenant_a, 3)
        audit_seal()
        _legacy_chain(tenant_a.pk)  # the chain as it was before this change
        code, out = verify("--tenant", tenant_a.slug, "--no-seal")
        assert code == 1 and "unkeyed seal after the last signed checkpoint" in out
        audit_checkpoint()  # a signed checkpoint pins the unkeyed part
        later = record(tenant_a, 2)
        audit_seal()  # keyed seals continue the chain
        assert verify("--tenant", tenant_a.slug)[0] == 0
        # An unkeyed seal after the checkpoint is a forgery, even when its hash is right.
        _reseal(later[1].pk, key_id="", key=None)
        code, out = verify("--tenant", tenant_a.slug, "--no-seal")
        assert code == 1 and f"event {later[1].pk}: unkeyed seal after the last signed checkpoint" in out

    def test_a_forged_checkpoint_pins_nothing(self, tenant_a):
        record(tenant_a, 3)
        audit_seal()
        _legacy_chain(tenant_a.pk)
        audit_checkpoint()
        tamper("UPDATE audit_auditcheckpoint SET signature = %s", ["0" * 64])
        code, out = verify("--tenant", tenant_a.slug, "--no-seal")
        assert code == 1 and "unkeyed seal after the last signed checkpoint" in out


CHECKPOINT_1 = ("c1", "first-checkpoint-key-for-tests-0123456789")
CHECKPOINT_2 = ("c2", "second-checkpoint-key-for-tests-0123456789")


class TestCheckpointKeys:
    """Checkpoint keys rotate like seal keys: each checkpoint names the key that signed it."""

    def test_a_rotated_checkpoint_key_keeps_old_checkpoints_verifying(self, tenant_a, settings):
        settings.AUDIT_CHECKPOINT_KEYS = [CHECKPOINT_1]
        record(tenant_a, 2)
        audit_seal()
        (first,) = audit_checkpoint()
        assert first.key_id == "c1"
        settings.AUDIT_CHECKPOINT_KEYS = [CHECKPOINT_2, CHECKPOINT_1]  # rotated: the new key signs
        record(tenant_a)
        audit_seal()
        (second,) = audit_checkpoint()
        assert second.key_id == "c2"
        assert verify("--tenant", tenant_a.slug, "--no-seal")[0] == 0

    def test_a_checkpoint_whose_key_is_gone_or_changed_is_reported(self, tenant_a, settings):
        settings.AUDIT_CHECKPOINT_KEYS = [CHECKPOINT_1]
        record(tenant_a, 2)
        audit_seal()
        audit_checkpoint()
        settings.AUDIT_CHECKPOINT_KEYS = [CHECKPOINT_2]  # the old key dropped too early
        code, out = verify("--tenant", tenant_a.slug, "--no-seal")
        assert code == 1 and "checkpoint signature invalid" in out
        settings.AUDIT_CHECKPOINT_KEYS = [("c1", "not-the-key-that-signed-this-checkpoint")]
        code, out = verify("--tenant", tenant_a.slug, "--no-seal")
        assert code == 1 and "checkpoint signature invalid" in out

    def test_checkpoints_signed_with_the_single_key_verify_after_a_list_replaces_it(self, tenant_a, settings):
        settings.AUDIT_CHECKPOINT_KEYS = []
        record(tenant_a, 2)
        audit_seal()
        (legacy,) = audit_checkpoint()
        assert legacy.key_id == ""  # AUDIT_CHECKPOINT_KEY, as before key ids
        settings.AUDIT_CHECKPOINT_KEYS = [CHECKPOINT_1]
        assert verify("--tenant", tenant_a.slug, "--no-seal")[0] == 0
        settings.AUDIT_CHECKPOINT_KEY = ""  # the single key retired: its checkpoints cannot be checked
        code, out = verify("--tenant", tenant_a.slug, "--no-seal")
        assert code == 1 and "checkpoint signature invalid" in out

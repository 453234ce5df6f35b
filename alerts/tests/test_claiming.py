"""Detection batches under load: the worker's task claims, beside its own events, the other
committed unprocessed ones (up to a chunk), so the events of many one-event requests are judged in
one transaction, and the tasks that follow find their events done. Every guarantee of a chunk
holds for what it claims: a bad event is still isolated, nothing is processed twice, a re-run
does nothing."""

import itertools
import threading
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.db import connection, transaction

from alerts import detection, rules
from alerts.models import AccountEvent, Alert, AlertEvidence, EventDeadLetter
from alerts.services import events_ingest
from alerts.tasks import events_process_task
from alerts.validation import validate_event
from audit.models import AuditEvent
from config.testing import race

pytestmark = pytest.mark.django_db
_ids = itertools.count()
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def request(tenant, *accounts: str, minute: int = 0) -> list[int]:
    """One API request's events (two-factor turned off: each raises or folds into an alert), stored
    with detection not queued, as if its task were still on its way to the worker."""
    raws = [
        {"id": f"cl-{next(_ids)}", "type": "mfa.disabled", "occurred_at": (T0 + timedelta(minutes=minute)).isoformat(),
         "account": {"external_id": account}, "context": {}}
        for account in accounts
    ]  # fmt: skip
    with mock.patch("alerts.services.detection_enqueue"):
        _, _, ids = events_ingest(tenant=tenant, events=[validate_event(r, now=T0 + timedelta(days=1)) for r in raws])
    return ids


def unprocessed() -> set[int]:
    return set(AccountEvent.objects.filter(processed_at__isnull=True).values_list("pk", flat=True))


def alert_creations() -> int:
    return AuditEvent.objects.filter(target_type="alerts.alert", action="create").count()


class TestOneTaskTakesTheWaitingEvents:
    def test_the_events_of_several_requests_are_judged_in_one_chunk(self, tenant_a, tenant_b):
        requests = [request(tenant_a, "ann", minute=0), request(tenant_b, "bob", minute=1),
                    request(tenant_a, "cid", "ann", minute=2)]  # fmt: skip
        assert events_process_task.delay(requests[0]).get() == 4  # its own event and the three waiting
        assert unprocessed() == set()
        # One transaction: one processing time for all, and each tenant's alerts raised in it.
        assert AccountEvent.objects.values("processed_at").distinct().count() == 1
        assert sorted(Alert.objects.values_list("tenant_id", "customer__external_id", "count")) == sorted(
            [(tenant_a.pk, "ann", 2), (tenant_a.pk, "cid", 1), (tenant_b.pk, "bob", 1)]
        )
        # The tasks of the other requests arrive: their events are done, they do nothing.
        assert [events_process_task.delay(ids).get() for ids in requests[1:]] == [0, 0]
        assert AlertEvidence.objects.count() == 4 and alert_creations() == 3

    def test_a_re_run_of_every_task_changes_nothing(self, tenant_a):
        requests = [request(tenant_a, f"acct-{n % 3}", minute=n) for n in range(6)]
        for ids in requests:
            events_process_task.delay(ids).get()
        counts = sorted(Alert.objects.values_list("customer__external_id", "count"))
        audits, evidence = AuditEvent.objects.count(), AlertEvidence.objects.count()
        assert counts == [("acct-0", 2), ("acct-1", 2), ("acct-2", 2)] and evidence == 6
        for ids in requests:  # delivered again (acks_late after a lost worker): processed events are skipped
            assert events_process_task.delay(ids).get() == 0
        assert sorted(Alert.objects.values_list("customer__external_id", "count")) == counts
        assert (AuditEvent.objects.count(), AlertEvidence.objects.count()) == (audits, evidence)

    def test_a_chunk_claims_at_most_a_chunk_its_own_events_first_then_the_oldest(self, tenant_a, monkeypatch):
        monkeypatch.setattr(detection, "CHUNK", 3)
        monkeypatch.setattr(detection, "CLAIM_ROUNDS", 0)
        waiting = [request(tenant_a, f"old-{n}", minute=n)[0] for n in range(4)]
        own = request(tenant_a, "mine", minute=10)
        with mock.patch("alerts.services.detection_enqueue") as queued:
            assert events_process_task.delay(own).get() == 3
        assert unprocessed() == set(waiting[2:])  # its own, and the two oldest waiting
        assert [call.args for call in queued.call_args_list] == [([],)]  # the rest: handed to a next task
        assert events_process_task.delay([]).get() == 2
        assert unprocessed() == set()

    def test_a_task_drains_a_backlog_chunk_after_chunk(self, tenant_a, monkeypatch):
        monkeypatch.setattr(detection, "CHUNK", 3)
        waiting = [request(tenant_a, f"old-{n}", minute=n)[0] for n in range(10)]
        with mock.patch("alerts.services.detection_enqueue") as queued:
            assert events_process_task.delay(waiting[:1]).get() == 10  # 3 + 3 + 3 + 1: the last not full
        assert unprocessed() == set() and not queued.called

    def test_without_claiming_detection_takes_only_the_events_it_is_given(self, tenant_a):
        # Replays and the reprocessing command name their events; only the worker's task claims.
        first, second = request(tenant_a, "ann"), request(tenant_a, "bob")
        assert detection.events_process(event_ids=first) == 1
        assert unprocessed() == set(second)


class TestIngestionQueuesOneWaitingTask:
    """With a broker, a request queues detection only when no task waits unstarted: the waiting
    one will claim its events."""

    @pytest.fixture(autouse=True)
    def _coalescing(self, settings):
        from django.core.cache import cache

        from alerts.services import DETECTION_PENDING_KEY

        settings.DETECTION_COALESCE = True
        cache.delete(DETECTION_PENDING_KEY)  # the cache may be Redis, shared beyond this test
        yield
        cache.delete(DETECTION_PENDING_KEY)

    @pytest.fixture(autouse=True)
    def _on_commit(self, django_capture_on_commit_callbacks):
        self.on_commit = django_capture_on_commit_callbacks

    def queued_by(self, tenant, accounts) -> list[list[int]]:
        """One request's events stored and committed: the tasks it queued (their event ids)."""
        raws = [{"id": f"cq-{next(_ids)}", "type": "mfa.disabled", "occurred_at": T0.isoformat(),
                 "account": {"external_id": account}, "context": {}} for account in accounts]  # fmt: skip
        with mock.patch("alerts.tasks.events_process_task.delay") as delay, self.on_commit(execute=True):
            events_ingest(tenant=tenant, events=[validate_event(r, now=T0 + timedelta(days=1)) for r in raws])
        return [call.args[0] for call in delay.call_args_list]

    def test_requests_while_a_task_waits_queue_nothing_more(self, tenant_a):
        from alerts.services import detection_task_started

        first = self.queued_by(tenant_a, ["ann"])
        assert len(first) == 1
        assert self.queued_by(tenant_a, ["bob"]) == [] and self.queued_by(tenant_a, ["cid"]) == []
        detection_task_started()  # the waiting task starts: what it claims from now on was stored before
        assert len(self.queued_by(tenant_a, ["dan"])) == 1
        # The waiting task claims the events of the requests that queued nothing.
        assert events_process_task.delay(first[0]).get() == 4 and unprocessed() == set()

    def test_a_cache_that_does_not_answer_queues_anyway(self, tenant_a):
        with mock.patch("alerts.services.cache.add", side_effect=ConnectionError("redis down")):
            assert len(self.queued_by(tenant_a, ["ann"])) == 1
            assert len(self.queued_by(tenant_a, ["bob"])) == 1

    def test_the_relay_queues_even_while_a_task_is_marked_waiting(self, tenant_a):
        from alerts.services import detection_enqueue

        assert len(self.queued_by(tenant_a, ["ann"])) == 1  # marked waiting (say its message was lost)
        with mock.patch("alerts.tasks.events_process_task.delay") as delay:
            detection_enqueue([1, 2], coalesce=False)
        assert [call.args[0] for call in delay.call_args_list] == [[1, 2]]


@pytest.fixture
def poisoned_rule(monkeypatch):
    """The two-factor rule fails on one account's events."""
    original = rules.MfaChangeRule.check

    def poisoned(self, check):
        if check.event.customer.external_id == "poison":
            raise ValueError("cannot judge this account")
        return original(self, check)

    monkeypatch.setattr(rules.MfaChangeRule, "check", poisoned)


def test_a_bad_claimed_event_is_set_aside_and_the_others_are_processed(tenant_a, poisoned_rule):
    own = request(tenant_a, "ann", minute=0)
    others = [request(tenant_a, account, minute=n) for n, account in enumerate(["bob", "poison", "cid", "dan"], 1)]
    assert events_process_task.delay(own).get() == 4  # the poisoned one is not counted
    assert unprocessed() == set()
    (letter,) = EventDeadLetter.objects.all()
    assert letter.event_id == others[1][0] and letter.attempts == 1
    assert sorted(Alert.objects.values_list("customer__external_id", flat=True)) == ["ann", "bob", "cid", "dan"]
    assert alert_creations() == 4
    assert [events_process_task.delay(ids).get() for ids in others] == [0, 0, 0, 0]  # and never judged again
    assert EventDeadLetter.objects.get().attempts == 1


def test_a_transient_failure_of_a_claiming_chunk_leaves_every_event_for_the_retry(tenant_a):
    from django.db import OperationalError

    own, other = request(tenant_a, "ann"), request(tenant_a, "bob", minute=1)
    with (
        mock.patch.object(detection, "_states_save", side_effect=OperationalError("connection lost")),
        pytest.raises(OperationalError),
    ):
        detection.events_process_claiming(event_ids=own)
    assert unprocessed() == {*own, *other} and not EventDeadLetter.objects.exists() and not Alert.objects.exists()
    assert detection.events_process_claiming(event_ids=own) == (2, False)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
class TestTwoWorkers:
    """PostgreSQL: the claim skips what another worker holds, so two workers never judge an event
    twice and never wait on each other's events."""

    def test_racing_workers_claiming_the_same_backlog_process_each_event_once(self, tenant_a):
        requests = [request(tenant_a, f"racer-{n % 7}", minute=n) for n in range(60)]

        def worker(tasks):
            return sum(detection.events_process_claiming(event_ids=ids)[0] for ids in tasks)

        # Each worker is handed every other task, as a queue's two consumers would be.
        done = race(lambda: worker(requests[0::2]), lambda: worker(requests[1::2]))
        assert sum(done) == 60 and unprocessed() == set()
        assert sorted(Alert.objects.values_list("customer__external_id", "count")) == [
            (f"racer-{n}", len(range(n, 60, 7))) for n in range(7)
        ]
        assert AlertEvidence.objects.count() == 60
        assert alert_creations() == 7
        # Each event is in exactly one chunk's audit record of its alert.
        records = AuditEvent.objects.filter(target_type="alerts.alert").values_list("metadata", flat=True)
        assert sum(m["occurrences"] for m in records) == 60

    def test_an_event_another_worker_holds_is_skipped_not_waited_for(self, tenant_a):
        held, own = request(tenant_a, "held"), request(tenant_a, "mine", minute=1)
        locked, release = threading.Event(), threading.Event()

        def other_worker():
            try:
                with transaction.atomic():
                    AccountEvent.objects.select_for_update(no_key=True).filter(pk__in=held).get()
                    locked.set()
                    release.wait(30)
            finally:
                connection.close()

        thread = threading.Thread(target=other_worker)
        thread.start()
        try:
            assert locked.wait(10)
            assert detection.events_process_claiming(event_ids=own) == (1, False)  # at once, without the held one
            assert unprocessed() == set(held)
        finally:
            release.set()
            thread.join(30)
        assert detection.events_process_claiming(event_ids=own) == (1, False)  # released (rolled back): claimed now
        assert unprocessed() == set()

"""Detection never stalls: an event that fails on its own account is isolated and set aside as a
dead letter (the rest of its chunk is processed), seen by BPO admins, counted in /readyz, and run
again by `events_reprocess`; only transient failures are retried, a bounded number of times."""

import itertools
from datetime import UTC, datetime, timedelta
from io import StringIO
from unittest import mock

import psycopg.errors
import pytest
from django.core.management import CommandError, call_command
from django.db import DataError, OperationalError

from alerts import rules
from alerts.dead_letters import is_transient
from alerts.detection import events_process
from alerts.models import AccountEvent, Alert, EventDeadLetter
from alerts.raising import AlertBook
from alerts.services import events_ingest
from alerts.tasks import events_process_task
from alerts.validation import validate_event
from audit.models import AuditEvent
from conftest import verified_client

pytestmark = pytest.mark.django_db
_ids = itertools.count()
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SECRET_VALUE = "poison-value-4242"


def ingest(tenant, accounts: list[str], type_="mfa.disabled", **context) -> list[int]:
    raws = [
        {"id": f"dl-{next(_ids)}", "type": type_, "occurred_at": (T0 + timedelta(minutes=n)).isoformat(),
         "account": {"external_id": account}, "context": context}
        for n, account in enumerate(accounts)
    ]  # fmt: skip
    _, _, ids = events_ingest(tenant=tenant, events=[validate_event(r, now=T0 + timedelta(days=1)) for r in raws])
    return ids


ACCOUNTS = [f"user-{n}" for n in range(7)]
POISON = "user-4"


@pytest.fixture(autouse=True)
def _relay_forgets():
    """The relay's memory (the highest id it queued) lives in the cache, which on Redis outlives a
    test database whose ids start again from 1."""
    from django.core.cache import cache

    from alerts.tasks import RELAY_HIGH_KEY

    cache.delete(RELAY_HIGH_KEY)


@pytest.fixture
def poisoned_rule(monkeypatch):
    """The two-factor rule fails on one account's events, with a message quoting a value."""
    original = rules.MfaChangeRule.check

    def poisoned(self, check):
        if check.event.customer.external_id == POISON:
            raise ValueError(f"cannot judge {SECRET_VALUE}")
        return original(self, check)

    monkeypatch.setattr(rules.MfaChangeRule, "check", poisoned)
    return lambda: monkeypatch.setattr(rules.MfaChangeRule, "check", original)


class TestAPoisonedChunk:
    def test_processes_its_other_events_and_leaves_one_dead_letter(self, tenant_a, poisoned_rule):
        ids = ingest(tenant_a, ACCOUNTS)
        assert events_process(event_ids=ids) == 6
        assert sorted(Alert.objects.values_list("customer__external_id", flat=True)) == sorted(
            a for a in ACCOUNTS if a != POISON
        )
        (letter,) = EventDeadLetter.objects.all()
        poisoned = AccountEvent.objects.get(customer__external_id=POISON)
        assert (letter.event_id, letter.tenant_id, letter.attempts) == (poisoned.pk, tenant_a.pk, 1)
        assert letter.error == "builtins.ValueError" and letter.where.endswith("in poisoned")
        assert letter.resolved_at is None and letter.first_failed_at == letter.last_failed_at
        # No personal data, not even the error's message.
        assert SECRET_VALUE not in f"{letter.error} {letter.where}" and POISON not in f"{letter.error} {letter.where}"
        # Set aside: marked processed, so no task picks it up again.
        assert not AccountEvent.objects.filter(processed_at__isnull=True).exists()
        assert events_process(event_ids=ids) == 0
        assert EventDeadLetter.objects.get().attempts == 1

    def test_a_failure_when_the_chunks_alerts_are_written_is_isolated_too(self, tenant_a, monkeypatch):
        ids = ingest(tenant_a, ACCOUNTS)
        poisoned_id = ids[2]
        original = AlertBook.write

        def write(self, **kwargs):
            if any(entry.event_id == poisoned_id for entry in self.entries.values()):
                raise DataError("value too long for type character varying(300)")
            return original(self, **kwargs)

        monkeypatch.setattr(AlertBook, "write", write)
        assert events_process(event_ids=ids) == 6
        assert Alert.objects.count() == 6
        assert list(EventDeadLetter.objects.values_list("event_id", "error")) == [
            (poisoned_id, "django.db.utils.DataError")
        ]

    def test_a_transient_failure_is_not_a_dead_letter_it_propagates_for_a_retry(self, tenant_a, monkeypatch):
        ids = ingest(tenant_a, ACCOUNTS[:2])
        monkeypatch.setattr(AlertBook, "write", mock.Mock(side_effect=OperationalError("server closed the connection")))
        with pytest.raises(OperationalError):
            events_process(event_ids=ids)
        assert not EventDeadLetter.objects.exists()
        assert AccountEvent.objects.filter(processed_at__isnull=True).count() == 2

    def test_a_killed_worker_is_not_a_dead_letter(self, tenant_a, monkeypatch):
        ids = ingest(tenant_a, ACCOUNTS[:2])
        monkeypatch.setattr(rules.MfaChangeRule, "check", mock.Mock(side_effect=SystemExit("killed")))
        with pytest.raises(SystemExit):
            events_process(event_ids=ids)
        assert not EventDeadLetter.objects.exists()


class TestTransientOrNot:
    @pytest.mark.parametrize(
        "error",
        [
            OperationalError("connection lost"),
            _wrapped := OperationalError("could not serialize access"),
            ConnectionResetError(),
        ],
    )
    def test_lost_connections_serialization_failures_and_deadlocks_are_transient(self, error):
        assert is_transient(error)

    def test_a_wrapped_driver_error_is_judged_by_its_cause(self):
        try:
            try:
                raise psycopg.errors.DeadlockDetected("deadlock detected")
            except psycopg.Error as driver_error:
                raise RuntimeError("while writing the chunk") from driver_error
        except RuntimeError as error:
            assert is_transient(error)

    def test_broker_errors_are_transient(self):
        from kombu.exceptions import OperationalError as BrokerError

        assert is_transient(BrokerError("connection refused"))

    @pytest.mark.parametrize("error", [DataError("too long"), OverflowError("date value out of range"), KeyError("x"),
                                       ValueError("bad"), TypeError("bad")])  # fmt: skip
    def test_the_events_own_errors_are_permanent(self, error):
        assert not is_transient(error)


class TestTheTask:
    @pytest.fixture(autouse=True)
    def _eager_retries(self):
        # Eager runs retry inside apply() (as a worker would) only when they do not propagate.
        from config.celery import app

        app.conf.CELERY_TASK_EAGER_PROPAGATES = False  # the namespaced key: it is the one read first
        yield
        app.conf.CELERY_TASK_EAGER_PROPAGATES = True

    def test_a_permanent_error_is_not_retried(self, monkeypatch):
        process = mock.Mock(side_effect=ValueError("bug"))
        monkeypatch.setattr("alerts.detection.events_process_claiming", process)
        result = events_process_task.apply(args=[[1, 2]])
        assert result.failed() and isinstance(result.result, ValueError)
        assert process.call_count == 1

    def test_a_transient_error_is_retried_a_bounded_number_of_times(self, monkeypatch):
        process = mock.Mock(side_effect=OperationalError("connection refused"))
        monkeypatch.setattr("alerts.detection.events_process_claiming", process)
        result = events_process_task.apply(args=[[1, 2]])
        assert result.failed() and isinstance(result.result, OperationalError)
        assert events_process_task.max_retries is not None
        assert process.call_count == events_process_task.max_retries + 1

    def test_a_transient_error_that_passes_is_retried_to_success(self, monkeypatch):
        process = mock.Mock(side_effect=[OperationalError("deadlock"), OperationalError("deadlock"), (2, False)])
        monkeypatch.setattr("alerts.detection.events_process_claiming", process)
        assert events_process_task.apply(args=[[1, 2]]).get() == 2
        assert process.call_count == 3


class TestReprocessing:
    def test_the_command_reruns_dead_letters_once_the_cause_is_fixed(self, tenant_a, poisoned_rule):
        ids = ingest(tenant_a, ACCOUNTS)
        events_process(event_ids=ids)
        out = StringIO()
        with pytest.raises(CommandError):  # still poisoned: fails again, counted
            call_command("events_reprocess", "--all", stdout=out)
        letter = EventDeadLetter.objects.get()
        assert letter.attempts == 2 and letter.resolved_at is None
        poisoned_rule()  # the cause is fixed
        call_command("events_reprocess", "--id", str(letter.pk), stdout=out)
        assert "1 dead letters resolved, 0 failed again." in out.getvalue()
        letter.refresh_from_db()
        assert letter.resolved_at is not None
        assert Alert.objects.filter(customer__external_id=POISON, rule="mfa_change").count() == 1
        record = AuditEvent.objects.get(target_type="alerts.eventdeadletter", target_id=str(letter.pk))
        assert record.action == "update" and record.tenant_id == tenant_a.pk and record.actor_id is None
        # Resolved letters are not run again.
        call_command("events_reprocess", "--all", stdout=out)
        assert Alert.objects.filter(customer__external_id=POISON).get().count == 1

    def test_unprocessed_events_left_by_a_task_that_gave_up_are_picked_up(self, tenant_a):
        with mock.patch("alerts.services.detection_enqueue"):  # the broker was down: never queued
            ids = ingest(tenant_a, ACCOUNTS[:3])
        AccountEvent.objects.filter(pk__in=ids[:2]).update(received_at=T0)
        out = StringIO()
        call_command("events_reprocess", "--unprocessed", stdout=out)
        assert "2 unprocessed events found, 2 processed." in out.getvalue()
        assert AccountEvent.objects.filter(processed_at__isnull=True).count() == 1  # too recent: still queued

    def test_the_relay_requeues_events_whose_task_was_lost_and_leaves_recent_ones(self, tenant_a):
        from alerts.tasks import events_unprocessed_relay_task

        with mock.patch("alerts.services.detection_enqueue"):  # the publish after commit was lost
            ids = ingest(tenant_a, ACCOUNTS[:3])
        AccountEvent.objects.filter(pk__in=ids[:2]).update(received_at=T0)
        from alerts import services

        with (
            mock.patch("alerts.tasks.logger") as log,
            mock.patch("alerts.services.detection_enqueue", wraps=services.detection_enqueue) as queued,
        ):
            assert events_unprocessed_relay_task.delay().get() == 2  # eager in tests: the worker's run
        assert log.warning.call_args.kwargs["extra"] == {"events": 2}  # counted, never silent
        assert [call.args[0] for call in queued.call_args_list] == [ids[:2]]  # the recent one is not re-queued
        # The worker's chunk claims whatever else waits unprocessed, the recent one included (alerts.detection).
        assert not AccountEvent.objects.filter(processed_at__isnull=True).exists()
        assert Alert.objects.filter(evidence__in=ids[:2]).exists()
        assert events_unprocessed_relay_task.delay().get() == 0  # done: nothing queued twice

    def test_the_relay_queues_an_event_at_most_once_per_window_while_the_worker_is_behind(self, tenant_a):
        from django.core.cache import cache

        from alerts.tasks import RELAY_HIGH_KEY, events_unprocessed_relay_task

        with mock.patch("alerts.services.detection_enqueue"):
            ids = ingest(tenant_a, ACCOUNTS[:2])
        AccountEvent.objects.filter(pk__in=ids).update(received_at=T0)
        with mock.patch("alerts.services.detection_enqueue") as queued:  # queued, but the worker is far behind
            assert events_unprocessed_relay_task.delay().get() == 2
            assert events_unprocessed_relay_task.delay().get() == 0  # a minute later: not queued twice
            later = ingest(tenant_a, ACCOUNTS[2:3])
            AccountEvent.objects.filter(pk__in=later).update(received_at=T0)
            assert events_unprocessed_relay_task.delay().get() == 1  # only the newly lost one
            cache.delete(RELAY_HIGH_KEY)  # the window has passed: still unprocessed, so queued again
            assert events_unprocessed_relay_task.delay().get() == 3
        assert [call.args[0] for call in queued.call_args_list] == [ids, later, [*ids, *later]]

    def test_the_command_wants_to_be_told_which(self):
        with pytest.raises(CommandError):
            call_command("events_reprocess")


class TestVisibility:
    def test_readyz_counts_open_dead_letters(self, client, tenant_a, poisoned_rule):
        assert client.get("/readyz").json()["dead_letters"] == 0
        events_process(event_ids=ingest(tenant_a, ACCOUNTS))
        body = client.get("/readyz").json()
        assert body["status"] == "ok" and body["dead_letters"] == 1

    def test_bpo_admins_see_them_and_rerun_them_in_django_admin(self, admin_user, tenant_a, poisoned_rule):
        events_process(event_ids=ingest(tenant_a, ACCOUNTS))
        letter = EventDeadLetter.objects.get()
        client = verified_client(admin_user)
        response = client.get("/admin/alerts/eventdeadletter/")
        assert response.status_code == 200 and b"builtins.ValueError" in response.content
        assert SECRET_VALUE.encode() not in response.content
        assert AuditEvent.objects.filter(action="list", target_type="alerts.eventdeadletter").exists()
        poisoned_rule()
        response = client.post(
            "/admin/alerts/eventdeadletter/", {"action": "reprocess", "_selected_action": [letter.pk]}, follow=True
        )
        assert response.status_code == 200 and b"1 resolved, 0 failed again." in response.content
        letter.refresh_from_db()
        assert letter.resolved_at is not None
        record = AuditEvent.objects.get(target_type="alerts.eventdeadletter", action="update")
        assert record.actor_id == admin_user.pk

    def test_staff_who_are_not_bpo_admins_are_refused(self, agent, tenant_a, poisoned_rule):
        events_process(event_ids=ingest(tenant_a, ACCOUNTS))
        response = verified_client(agent).get("/admin/alerts/eventdeadletter/")
        assert response.status_code == 302 and "/login" in response["Location"]

"""A Celery worker killed with kill -9 in the middle of sending: after a restart every message
reached the backend exactly once. Real services: PostgreSQL, Redis, worker processes.

What "exactly once" relies on here (the development outbox, a transactional backend):
1. The rows were committed with their alert (the transactional outbox), so the task's message
   is not the only record of the work: killing the worker loses no notification.
2. The task is acks_late with reject_on_worker_lost: the broker keeps its message until the task
   finished, and gives it to another worker once the dead one's visibility timeout ran out.
3. The outbox writes its messages in the transaction that claims the rows (FOR UPDATE SKIP
   LOCKED, handed_at set): the kill aborts that transaction (PostgreSQL rolls back a connection
   that died), so the messages written before the kill vanish with the claim, and the rows are
   claimable again. Once committed, a row is delivered and never claimed again, so the tasks
   delivered twice (the restored message, a relay, a repeat) send nothing more.
Other backends are called outside the transaction: for them it is the provider's idempotency key
that makes the retry of a row in doubt safe (alerts/notifications/services.py).
"""

import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path

import pytest
import redis
from celery.exceptions import AlwaysEagerIgnored
from django.conf import settings
from django.db import connection
from django.db.models import Count

from alerts.models import Notification, OutboxMessage
from alerts.notifications import planning
from alerts.notifications.models import State
from alerts.notifications.tests.helpers import account, feed

ROOT = Path(__file__).resolve().parents[3]
BLOCKING = "alerts.notifications.tests.backends.BlockingOutboxBackend"


def start_worker(queue: str, block: Path, log: Path) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_VISIBILITY_TIMEOUT_SECONDS": "3",  # a dead worker's message comes back soon
        "NOTIFICATION_TEST_BLOCK": str(block),
        "LOG_LEVEL": "WARNING",
        **{f"NOTIFICATION_{c.upper()}_BACKEND": BLOCKING for c in ("email", "sms", "push", "voice")},
    }
    return subprocess.Popen(  # noqa: S603 (our own worker, fixed arguments)
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork", "--concurrency", "1",
         "-Q", queue, "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
        cwd=ROOT, env=env, stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_send_loses_nothing_and_duplicates_nothing(tenant_a, tmp_path, monkeypatch):
    from config.celery import app

    def send(ids):  # to the worker's queue, never in-process (send_task is never eager)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AlwaysEagerIgnored)  # the test settings' eager mode: not here
            app.send_task("alerts.notifications.tasks.notification_send_task", args=[ids], queue=queue)

    monkeypatch.setattr(planning, "notifications_enqueue", lambda ids, **_: None)  # the test queues them itself
    for n in range(12):
        feed(tenant_a, "mfa.disabled", account_=account(f"victim-{n}", channels={"email": True, "push": True}))
    ids = list(Notification.objects.filter(state=State.QUEUED).order_by("id").values_list("id", flat=True))
    assert len(ids) == 12 * 4
    first, second = ids[:16], ids[16:]
    queue, block, log = f"notify-kill-{uuid.uuid4().hex[:8]}", tmp_path / "block", tmp_path / "worker.log"
    reached = Path(f"{block}.reached")
    workers = []
    try:
        workers.append(start_worker(queue, block, log))
        send(first)
        wait_for(lambda: OutboxMessage.objects.count() == len(first), 60, "the first batch")

        block.write_text("hold")
        send(second)
        wait_for(reached.exists, 60, "the worker to be mid-send")
        assert OutboxMessage.objects.count() == len(first)  # written, not committed: invisible
        os.killpg(workers[0].pid, signal.SIGKILL)  # the worker and its pool process, mid-send
        workers[0].wait(10)
        block.unlink()

        # Kombu gives a dead worker's unacknowledged message back once it is older than the visibility
        # timeout (3 s here), when a worker starts polling (then only every 100 s): wait that long first.
        time.sleep(4)
        workers.append(start_worker(queue, block, log))
        wait_for(lambda: OutboxMessage.objects.count() >= len(ids), 90, "the redelivered batch")
        # Every task again, as a relay or a duplicate delivery would: nothing more is sent.
        send(ids)
        time.sleep(3)
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(20)
        redis.Redis.from_url(settings.REDIS_URL).delete(queue, f"_kombu.binding.{queue}")
    per_row = dict(OutboxMessage.objects.values_list("notification_id").annotate(n=Count("id")))
    assert per_row == dict.fromkeys(ids, 1), log.read_text()[-3000:]
    assert set(Notification.objects.filter(pk__in=ids).values_list("state", flat=True)) == {State.DELIVERED}
    keys = OutboxMessage.objects.values_list("idempotency_key", flat=True)
    assert len(set(keys)) == len(ids)  # the key is not unique in the table: counted, not hidden

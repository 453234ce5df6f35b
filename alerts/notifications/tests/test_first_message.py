"""Each alert's first message leaves ahead of the others' second to fourth under a backlog.

Planning queues each alert's first due row (the first channel in the tenant's order that has an
address) in a task at URGENT_PRIORITY, the alert's other rows in a task at REST_PRIORITY; the
broker gives a worker the urgent tasks first. The second test shows it on the real stack: a backlog
of alerts queued before any worker runs, then a new alert; the worker hands every first message,
the new alert's included, before any of the backlog's other messages, each exactly once.
"""

import os
import signal
import time
import uuid
import warnings
from datetime import UTC, datetime

import pytest
import redis
from celery.exceptions import AlwaysEagerIgnored
from django.conf import settings

from alerts.detection import events_process
from alerts.models import Notification, NotificationSettings, OutboxMessage
from alerts.notifications import planning
from alerts.notifications.models import State
from alerts.notifications.tests.helpers import account, feed
from alerts.services import events_ingest
from alerts.validation import validate_event

ORDER = ["push", "sms", "email", "voice"]
REAL_ENQUEUE = planning.notifications_enqueue


def record_enqueue(monkeypatch) -> list[tuple[list[int], int]]:
    calls: list[tuple[list[int], int]] = []

    def enqueue(ids, *, priority=planning.URGENT_PRIORITY):
        calls.append((sorted(ids), priority))

    monkeypatch.setattr(planning, "notifications_enqueue", enqueue)
    return calls


def rows_by_channel(**filters) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for pk, channel in Notification.objects.filter(state=State.QUEUED, **filters).values_list("id", "channel"):
        found.setdefault(channel, []).append(pk)
    return {channel: sorted(ids) for channel, ids in found.items()}


@pytest.mark.django_db
def test_each_alerts_first_channel_is_queued_alone_and_ahead_of_the_rest(
    tenant_a, monkeypatch, django_capture_on_commit_callbacks
):
    NotificationSettings.objects.create(tenant=tenant_a, channel_order=ORDER)
    calls = record_enqueue(monkeypatch)
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    raws = [
        {"id": f"first-{n}", "type": "mfa.disabled", "occurred_at": now.isoformat(),
         "account": account(f"first-{n}", channels={"email": True, "push": True}), "context": {}}
        for n in range(3)
    ]  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        _, _, ids = events_ingest(tenant=tenant_a, events=[validate_event(r, now=now) for r in raws])
        events_process(event_ids=ids)  # one detection chunk: three alerts planned together
    rows = rows_by_channel()
    assert {c: len(ids) for c, ids in rows.items()} == dict.fromkeys(ORDER, 3)
    assert calls == [
        (rows["push"], planning.URGENT_PRIORITY),  # the tenant's first channel, one row per alert
        (sorted(rows["sms"] + rows["email"] + rows["voice"]), planning.REST_PRIORITY),
    ]


@pytest.mark.django_db
def test_the_first_channel_with_an_address_is_the_first_message(
    tenant_a, monkeypatch, django_capture_on_commit_callbacks
):
    NotificationSettings.objects.create(tenant=tenant_a, channel_order=ORDER)
    calls = record_enqueue(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):  # no push on file: SMS comes first
        feed(tenant_a, "mfa.disabled", account_=account(channels={"email": True}))
    rows = rows_by_channel()
    assert set(rows) == {"sms", "email", "voice"}
    assert calls == [(rows["sms"], planning.URGENT_PRIORITY), (rows["email"] + rows["voice"], planning.REST_PRIORITY)]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_new_alerts_first_message_is_handed_before_a_backlog_of_other_messages(tenant_a, tmp_path, monkeypatch):
    from alerts.notifications.tests.test_worker_killed import start_worker, wait_for
    from config.celery import app

    NotificationSettings.objects.create(tenant=tenant_a, channel_order=ORDER)
    calls = record_enqueue(monkeypatch)  # planned in the tests' eager mode; queued below, to the broker
    for n in range(8):
        feed(tenant_a, "mfa.disabled", account_=account(f"backlog-{n}", channels={"email": True, "push": True}))
    feed(tenant_a, "mfa.disabled", account_=account("newcomer", channels={"email": True, "push": True}))
    rows = rows_by_channel()
    assert {c: len(ids) for c, ids in rows.items()} == dict.fromkeys(ORDER, 9)
    newcomer_first = Notification.objects.get(customer__external_id="newcomer", channel="push").pk
    queue, log = f"notify-first-{uuid.uuid4().hex[:8]}", tmp_path / "worker.log"
    monkeypatch.setattr(settings, "NOTIFICATION_QUEUE", queue)
    monkeypatch.setitem(app.conf, "CELERY_TASK_ALWAYS_EAGER", False)  # the namespaced key is the one read
    worker = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AlwaysEagerIgnored)
            for ids, priority in calls:  # in planning's order: the newcomer's two tasks are queued last
                REAL_ENQUEUE(ids, priority=priority)
        worker = start_worker(queue, tmp_path / "no-block", log)  # one process: one task at a time
        wait_for(lambda: OutboxMessage.objects.count() >= 9 * 4, 60, "every message")
        time.sleep(1)  # nothing more comes
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(20)
        client = redis.Redis.from_url(settings.REDIS_URL)
        client.delete(queue, f"_kombu.binding.{queue}", *(f"{queue}\x06\x16{step}" for step in (3, 6, 9)))
    sent = list(OutboxMessage.objects.order_by("id").values_list("notification_id", flat=True))
    assert sorted(sent) == sorted(pk for ids in rows.values() for pk in ids), log.read_text()[-3000:]  # each once
    assert set(sent[:9]) == set(rows["push"])  # every alert's first message, then the others
    assert newcomer_first in sent[:9]

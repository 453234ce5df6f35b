"""Customer notifications on the real stack: PostgreSQL, Redis, Celery workers, the outbox backends.

1. Throughput: --messages notification rows are planned (by the real planning code, as detection
   plans them) without being queued; then the worker processes (--concurrency) are given them in
   tasks of 100 ids, as detection's on-commit hand-off does. Reports the messages handed to the
   backends per second, and checks each reached the outbox exactly once.
2. Latency: --rate alerting events per second for --seconds (critical: two-factor turned off, each
   for a new account with email, phone and push on file, so each alert plans 4 messages) go through
   ingestion (events_ingest, committed, detection queued after commit) and detection in the worker,
   which plans the messages in the alert's transaction and queues the send task after commit. Per
   alert: from its chunk's timestamp (taken before the chunk commits: an upper bound of "alert
   committed") to its first message handed to a backend (handed_at); and from the event's ingestion
   to that message. Reports median/p95/p99.
3. Where the time goes: one send task of 100 messages in this process, its statements and CPU time
   per message (time.process_time, after a warm-up task), then a cProfile of another.

Each part prints the load average beside its figures, and parts 1 and 2 the CPU time the worker
processes spent per message or alert (from /proc: a figure the other loads of a shared machine move
much less than wall time). --only runs some parts.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alertdesk_notify REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/notifications.py --messages 20000 --rate 500 --seconds 20

--smoke runs a tiny size (for config/tests/test_bench.py).
"""

import argparse
import cProfile
import io
import os
import pstats
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from _setup import ROOT, django_setup, summary

QUEUE = "bench-notifications"


def start_worker(queue: str, concurrency: int, log) -> subprocess.Popen:
    """A worker on one queue: the default one (detection) or the notifications' own (NOTIFICATION_QUEUE)."""
    env = {**os.environ, "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "config.settings"}
    for channel in ("EMAIL", "SMS", "PUSH", "VOICE"):
        env.pop(f"NOTIFICATION_{channel}_BACKEND", None)  # the outbox, the embedded default
    python = str(Path(sys.executable).parent)
    return subprocess.Popen(  # noqa: S603 (our own worker)
        [f"{python}/celery", "-A", "config", "worker", "-Q", queue, "--concurrency", str(concurrency),
         "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "-n", f"{queue}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
    )  # fmt: skip


def _stat(pid) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 4 on), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` and its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(entry)) is not None:
            children.setdefault(int(stat[1]), []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if (stat := _stat(current)) is not None:
            total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
            todo += children.get(current, [])
    return total


def backends_cpu(since: datetime) -> float:
    """CPU seconds used by the PostgreSQL backends that connected to this database since `since`
    (the workers' connections; this process's own left out), read before the workers stop. The
    server's shared processes (WAL writer, checkpointer) are not in it."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_start >= %s",
            [since],
        )
        pids = [pid for (pid,) in cursor.fetchall()]
    return sum(tree_cpu(pid) for pid in pids)


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def stop(*workers: subprocess.Popen) -> None:
    for worker in workers:
        os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        worker.wait(30)


def tenant_get(slug: str):
    from accounts.models import Tenant
    from accounts.services import tenant_create

    return Tenant.objects.filter(slug=slug).first() or tenant_create(slug=slug, name=slug)


def customers_make(tenant, count: int, prefix: str) -> list[int]:
    """`count` customers with an email, a phone and push on file (straight in SQL, like ingest.py's)."""
    from alerts.crypto import encrypt
    from alerts.models import Customer

    email, phone = encrypt("bench.customer@example.com"), encrypt("+14155550100")
    now = datetime.now(UTC)
    rows = [
        Customer(tenant=tenant, external_id=f"{prefix}{i}", created_at=now, updated_at=now,
                 channels={"email": True, "sms": True, "push": True}, email_masked="b***@e***",
                 phone_masked="+***00")
        for i in range(count)
    ]  # fmt: skip
    Customer.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    customers = Customer.objects.filter(tenant=tenant, external_id__startswith=prefix)
    from django.db import connection

    with connection.cursor() as cursor:  # the same ciphertext for all: encrypting 10^5 times is not the point
        cursor.execute(
            "UPDATE alerts_customer SET email = %s, phone = %s WHERE tenant_id = %s AND external_id LIKE %s",
            [email, phone, tenant.pk, f"{prefix}%"],
        )
    return list(customers.values_list("pk", flat=True))


def throughput(messages: int, concurrency: int, log) -> None:
    from django.db import transaction
    from django.utils import timezone

    from alerts.models import Alert, Notification, OutboxMessage
    from alerts.notifications import planning
    from alerts.notifications.models import State
    from config.celery import app

    tenant = tenant_get(f"nbench-t-{os.getpid()}")
    alerts_needed = messages // 3  # email, sms, push (two-factor turned on: not critical, opted-in channels)
    customer_ids = customers_make(tenant, alerts_needed, "t")
    now = timezone.now()
    planned: list[int] = []
    real_enqueue = planning.notifications_enqueue
    planning.notifications_enqueue = lambda ids, **_: None  # planned, not queued yet
    try:
        for start in range(0, len(customer_ids), 500):
            with transaction.atomic():
                alerts = Alert.objects.bulk_create([
                    Alert(tenant=tenant, customer_id=pk, type="two_factor", rule="mfa_change", severity=2,
                          reason="A new two-factor method was added.", dedupe_key=f"bench:{pk}:{now.timestamp()}",
                          first_seen_at=now, last_seen_at=now, created_at=now, updated_at=now)
                    for pk in customer_ids[start : start + 500]
                ])  # fmt: skip
                items = [planning.PlanItem(a, True, {"mfa.enrolled"}) for a in alerts]
                planned += planning.notifications_plan(items, now=now)
    finally:
        planning.notifications_enqueue = real_enqueue
    planned.sort()
    worker = start_worker(QUEUE, concurrency, log)
    try:
        time.sleep(4)  # the worker is up
        cpu_before, since = tree_cpu(worker.pid), datetime.now(UTC)
        started = time.time()
        for start in range(0, len(planned), planning.SEND_BATCH):
            app.send_task(
                "alerts.notifications.tasks.notification_send_task",
                args=[planned[start : start + planning.SEND_BATCH]],
                queue=QUEUE,
            )
        queued_in = time.time() - started
        # The tenant's rows are the planned ones: asking by tenant (the partial index of queued rows)
        # costs this process and the database next to nothing; 20,000 ids in an IN list ten times a
        # second took CPU from the workers being measured.
        pending = Notification.objects.filter(tenant=tenant, state=State.QUEUED)
        while pending.exists() and time.time() - started < 600:
            time.sleep(0.1)
        elapsed = time.time() - started
        cpu, database_cpu = tree_cpu(worker.pid) - cpu_before, backends_cpu(since)
    finally:
        stop(worker)
    sent = OutboxMessage.objects.filter(notification_id__in=planned).count()
    keys = OutboxMessage.objects.filter(notification_id__in=planned).values("idempotency_key").distinct().count()
    print(f"throughput: {len(planned):,} messages handed to the outbox backends in {elapsed:.1f} s = "
          f"{len(planned) / elapsed:,.0f} messages/s ({concurrency} worker processes; queuing the "
          f"{len(planned) // planning.SEND_BATCH} tasks took {queued_in:.1f} s of it)")  # fmt: skip
    print(f"  exactly once: {sent:,} outbox messages for {len(planned):,} rows, {keys:,} distinct keys")
    print(f"  CPU per message: worker {cpu * 1000 / len(planned):.3f} ms ({cpu:.1f} s in all), its PostgreSQL "
          f"backends {database_cpu * 1000 / len(planned):.3f} ms ({database_cpu:.1f} s); {load()}")  # fmt: skip


def latency(rate: int, seconds: float, concurrency: int, detection: int, log) -> None:
    from django.db import connection

    from alerts.models import Alert, Notification
    from alerts.services import events_ingest
    from alerts.validation import validate_event

    tenant = tenant_get(f"nbench-l-{os.getpid()}")
    workers = start_worker("celery", detection, log), start_worker(QUEUE, concurrency, log)
    ingested: dict[int, float] = {}  # event id -> when its ingestion committed (epoch seconds)
    try:
        time.sleep(4)
        cpu_before, since = [tree_cpu(w.pid) for w in workers], datetime.now(UTC)
        tick, n = 0.1, 0
        per_tick = max(1, int(rate * tick))
        started = next_tick = time.time()
        while next_tick < started + seconds:
            now = datetime.now(UTC)
            raws = []
            for _ in range(per_tick):
                n += 1
                raws.append({
                    "id": f"nb-{os.getpid()}-{n}", "type": "mfa.disabled", "occurred_at": now.isoformat(),
                    "account": {"external_id": f"l{os.getpid()}-{n}", "email": f"u{n}@example.com",
                                "phone": "+14155550100", "channels": {"email": True, "sms": True, "push": True}},
                    "context": {"factor": "totp"},
                })  # fmt: skip
            _, _, ids = events_ingest(tenant=tenant, events=[validate_event(r, now=now) for r in raws])
            at = time.time()
            ingested.update(dict.fromkeys(ids, at))
            next_tick += tick
            time.sleep(max(0.0, next_tick - time.time()))
        elapsed = time.time() - started
        deadline = time.time() + 120
        while time.time() < deadline:
            if (
                Alert.objects.filter(tenant=tenant).count() >= len(ingested)
                and not Notification.objects.filter(tenant=tenant, handed_at__isnull=True, state="queued").exists()
            ):
                break
            time.sleep(0.5)
        cpu = [tree_cpu(w.pid) - before for w, before in zip(workers, cpu_before, strict=True)]
        database_cpu = backends_cpu(since)
    finally:
        stop(*workers)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.id, extract(epoch from a.created_at), extract(epoch from min(n.handed_at)),"
            " min(e.id) FROM alerts_alert a JOIN alerts_notification n ON n.alert_id = a.id"
            " JOIN alerts_alertevidence ae ON ae.alert_id = a.id JOIN alerts_accountevent e ON e.id = ae.event_id"
            " WHERE a.tenant_id = %s GROUP BY a.id",
            [tenant.pk],
        )
        rows = cursor.fetchall()
    raised = [(float(handed) - float(created)) * 1000 for _, created, handed, _ in rows if handed is not None]
    end_to_end = [
        (float(handed) - ingested[event]) * 1000
        for _, _, handed, event in rows
        if handed is not None and event in ingested
    ]
    messages = Notification.objects.filter(tenant=tenant).count()
    handed = Notification.objects.filter(tenant=tenant, handed_at__isnull=False).count()
    print(f"latency: {len(ingested):,} alerting events in {elapsed:.0f} s = {len(ingested) / elapsed:,.0f} alerts/s "
          f"({messages:,} messages; worker processes: {detection} detecting, {concurrency} sending):")  # fmt: skip
    if raised:
        print("  " + summary("alert raised (chunk time) -> first handed", raised))
        print("  " + summary("event ingested -> first message handed", end_to_end))
    print(f"  {len(raised)} of {len(ingested)} alerts had a message handed")
    if ingested:
        print(f"  CPU: detection workers {cpu[0] * 1000 / len(ingested):.3f} ms per alert, sending workers "
              f"{cpu[1] * 1000 / max(1, handed):.3f} ms per message handed, the workers' PostgreSQL backends "
              f"{database_cpu * 1000 / len(ingested):.3f} ms per alert; {load()}")  # fmt: skip


def profile() -> None:
    """One send task of 100 messages in this process (the outbox backend): its statements and CPU
    time, then a cProfile of another."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from alerts.notifications.services import notifications_send

    notifications_send(notification_ids=_profile_rows("w")[:10])  # warm: imports, caches
    ids = _profile_rows("m")[:100]
    with CaptureQueriesContext(connection) as statements:
        started, started_cpu = time.perf_counter(), time.process_time()
        handed = notifications_send(notification_ids=ids).handed
        cpu, took = time.process_time() - started_cpu, time.perf_counter() - started
    print(
        f"profile: one task of {len(ids)} messages ({handed} handed): {len(statements)} statements, "
        f"CPU {cpu * 1000 / len(ids):.3f} ms per message in this process, {took * 1000:.0f} ms in all ({load()})"
    )
    _profiled(_profile_rows("p")[:100])


def _profile_rows(prefix: str) -> list[int]:
    """34 alerts of new customers planned (not queued): 102 messages, email, SMS and push."""
    from django.utils import timezone

    from alerts.models import Alert
    from alerts.notifications import planning

    tenant = tenant_get(f"nbench-p-{os.getpid()}")
    customer_ids = customers_make(tenant, 34, prefix)
    now = timezone.now()
    real_enqueue = planning.notifications_enqueue
    planning.notifications_enqueue = lambda ids, **_: None
    try:
        alerts = Alert.objects.bulk_create([
            Alert(tenant=tenant, customer_id=pk, type="two_factor", rule="mfa_change", severity=2, reason="x",
                  dedupe_key=f"benchp:{pk}:{now.timestamp()}", first_seen_at=now, last_seen_at=now, created_at=now,
                  updated_at=now)
            for pk in customer_ids
        ])  # fmt: skip
        return planning.notifications_plan([planning.PlanItem(a, True, set()) for a in alerts], now=now)
    finally:
        planning.notifications_enqueue = real_enqueue


def _profiled(ids: list[int]) -> None:
    from alerts.notifications.services import notifications_send

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    notifications_send(notification_ids=ids)
    profiler.disable()
    took = (time.perf_counter() - started) * 1000
    print(f"  profiled: one task of {len(ids)} messages took {took:.0f} ms under cProfile")
    for order, count in (("cumulative", 14), ("tottime", 10)):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(count)
        lines = [line for line in out.getvalue().splitlines() if line.strip()]
        start = next(i for i, line in enumerate(lines) if "ncalls" in line)
        print(f"  by {order} time:")
        print("\n".join("  " + line.replace(str(ROOT), "")[:150] for line in lines[start : start + count + 1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=500, help="alerting events (alerts) per second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes sending")
    parser.add_argument("--detection", type=int, default=2, help="worker processes running detection")
    parser.add_argument("--smoke", action="store_true", help="a tiny run (the test suite's)")
    parser.add_argument(
        "--only", action="append", choices=["throughput", "latency", "profile"], help="run this part (repeatable)"
    )
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        sys.exit("Set REDIS_URL too: the bench runs real Celery workers.")
    os.environ["NOTIFICATION_QUEUE"] = QUEUE  # the send tasks' own queue and workers, as in production
    if args.smoke:
        args.messages, args.rate, args.seconds, args.concurrency, args.detection = 300, 20, 2, 1, 1
    django_setup()
    log = open(os.devnull, "w")  # noqa: SIM115 (for the worker's whole life)
    parts = args.only or ["throughput", "latency", "profile"]
    if "throughput" in parts:
        throughput(args.messages, args.concurrency, log)
    if "latency" in parts:
        latency(args.rate, args.seconds, args.concurrency, args.detection, log)
    if "profile" in parts:
        profile()


if __name__ == "__main__":
    main()

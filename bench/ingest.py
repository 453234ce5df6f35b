"""Event ingestion and detection on the real stack: PostgreSQL, Redis, daphne, a Celery worker.

1. Generates --customers accounts (default 1,000,000) across 100 tenants, straight in SQL.
2. Starts --web daphne processes, a Celery worker (--concurrency) and beat, as production would.
3. Sustained load: signed batches of --batch events for --seconds; reports events/s accepted
   (durable: committed before the 202) and how long the worker took to process them all.
   Traffic is ordinary (sign-ins, codes they asked for, failures, edits, payments, each account
   with its usual device and address) plus --alerting of events that raise an alert.
4. Latency: --rate events/s for --latency-seconds (--latency-alerting of them raise an alert);
   p50/p95/p99 from the 202 to the alert being committed, seen by a poller every 20 ms.
5. Memory (RSS) of the web and worker processes, database size per million events.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alertdesk_ingest REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/ingest.py --seconds 60
"""

import argparse
import hashlib
import hmac
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from _setup import ROOT, django_setup, summary

TYPES = ["login.succeeded"] * 6 + ["login.failed"] * 2 + ["profile.changed", "transaction.created"]


def generate(customers: int) -> list[tuple[str, str, str]]:
    """Tenants, keys and customers; returns (slug, api_key, secret) per tenant."""
    from django.db import connection

    from accounts.models import Tenant
    from alerts.keys import api_key_issue
    from alerts.models import Customer, IngestSettings

    tenants = []
    for i in range(100):
        tenant, _ = Tenant.objects.get_or_create(slug=f"load-{i:03d}", defaults={"name": f"Load {i}"})
        tenants.append(tenant)
    keys = []
    for tenant in tenants:
        issued = api_key_issue(tenant=tenant)
        keys.append((tenant.slug, issued.api_key, issued.signing_secret))
    IngestSettings.objects.filter(tenant__in=tenants).update(rate_limit_per_second=1_000_000)
    have = Customer.objects.filter(tenant__in=tenants).count()
    if have < customers:
        started = time.perf_counter()
        ids = [t.pk for t in tenants]
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO alerts_customer (tenant_id, external_id, email, phone, display_name, locale, channels,"
                " contact_digests, created_at, updated_at)"
                " SELECT (%s::bigint[])[1 + g %% 100], 'c' || (g / 100), '', '', '', 'en', '{}', '{}', now(), now()"
                " FROM generate_series(%s, %s - 1) g ON CONFLICT DO NOTHING",
                [ids, have, customers],
            )
            cursor.execute("VACUUM ANALYZE alerts_customer")
        print(f"generated {customers - have:,} customers in {time.perf_counter() - started:.0f} s")
    return keys


def start_services(
    web: int, concurrency: int, base_port: int = 8300, log=subprocess.DEVNULL, app: str = "config.asgi:application"
) -> tuple[list, list[int]]:
    """`log`: where the processes' output goes (a file to read their warnings; none by default); `app`:
    the ASGI application the web processes serve."""
    env = {**os.environ, "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "config.settings"}
    python = str(Path(sys.executable).parent)
    procs, ports = [], []
    for i in range(web):
        port = base_port + i
        procs.append(
            subprocess.Popen(
                [
                    f"{python}/daphne",
                    "--access-log",
                    "/dev/null",
                    # As `make run`: a handshake the server is still working on is not cut at 5 s
                    # (daphne's default) in a reconnect storm on a loaded machine; see the Makefile.
                    "--websocket_connect_timeout",
                    "30",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    app,
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )  # fmt: skip
        )
        ports.append(port)
    procs.append(
        subprocess.Popen(
            [
                f"{python}/celery",
                "-A",
                "config",
                "worker",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )  # fmt: skip
    )
    schedule = f"/tmp/alertdesk-bench-beat-{os.getpid()}"  # its own: several benches may run at once
    procs.append(
        subprocess.Popen(
            [f"{python}/celery", "-A", "config", "beat", "--loglevel", "WARNING", "-s", schedule],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )  # fmt: skip
    )
    for port in ports:
        for _ in range(100):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
    time.sleep(2)
    return procs, ports


def stop_services(procs: list) -> None:
    """Stop what start_services started: SIGTERM to all, then a kill for any still up after 20 s."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def rss_of(pid: int) -> float:
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except FileNotFoundError:
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


class Sender:
    """One keep-alive connection; signs and posts batches, returns the 202 time."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def send(self, key: tuple[str, str, str], events: list[dict]) -> tuple[int, float, dict]:
        body = json.dumps({"events": events}).encode()
        stamp = str(int(time.time()))
        signature = hmac.new(key[2].encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        self.conn.request("POST", "/api/v1/events/", body=body, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {key[1]}",
            "X-AlertDesk-Timestamp": stamp, "X-AlertDesk-Signature": f"sha256={signature}",
        })  # fmt: skip
        response = self.conn.getresponse()
        payload = response.read()
        return response.status, time.time(), json.loads(payload or b"{}")


_counter = iter(range(10**12))


def make_event(per_tenant: int, type_: str | None = None, n: int | None = None, **context) -> dict:
    """An event about one of a tenant's existing customers (external ids c0 .. c<per_tenant - 1>).
    Each account has its own usual device, address and spending, so ordinary events raise nothing."""
    n = random.randrange(per_tenant) if n is None else n  # noqa: S311 (load generation, not security)
    type_ = type_ or random.choice(TYPES)  # noqa: S311
    context = {"ip": f"81.2.{n % 250}.{n % 200}", "device_id": f"dev-{n % 3}", "user_agent": "Mozilla/5.0 (bench)",
               **context}  # fmt: skip
    if type_ == "profile.changed":
        context["fields"] = ["address"]
    if type_ == "transaction.created":
        context.update(amount=f"{10 + n % 90}.00", currency="EUR")
    return {
        "id": f"b{os.getpid()}-{next(_counter)}", "type": type_, "occurred_at": datetime.now(UTC).isoformat(),
        "account": {"external_id": f"c{n}", "email": f"user{n}@example.com"}, "context": context,
    }  # fmt: skip


def make_batch(per_tenant: int, size: int, alerting: float) -> tuple[list[dict], set[str]]:
    """A batch of ordinary traffic (sign-ins, some with the one-time code they asked for, failures,
    profile edits, payments) with a share `alerting` of events that raise an alert (two-factor
    turned off). Returns the events and the ids of the alerting ones."""
    events, alerting_ids = [], set()
    while len(events) < size:
        n = random.randrange(per_tenant)  # noqa: S311
        if random.random() < alerting:  # noqa: S311
            event = make_event(per_tenant, "mfa.disabled", n=n)
            alerting_ids.add(event["id"])
            events.append(event)
            continue
        event = make_event(per_tenant, n=n)
        events.append(event)
        if event["type"] == "login.succeeded" and random.random() < 0.3:  # noqa: S311 (asked for a code)
            events.append(make_event(per_tenant, "mfa.otp_sent", n=n, channel="sms"))
    return events[:size], alerting_ids


def sustained(keys, ports, customers: int, seconds: float, batch: int, threads: int, alerting: float):
    accepted, errors = [0], []
    deadline = time.time() + seconds

    def run(i):
        sender = Sender(ports[i % len(ports)])
        tenant = i
        while time.time() < deadline:
            # One tenant per request (a key belongs to one tenant), its own customers.
            tenant = (tenant + threads) % 100
            events, _ = make_batch(customers // 100, batch, alerting)
            status, _, body = sender.send(keys[tenant], events)
            if status != 202:
                errors.append(status)
                continue
            accepted[0] += body["accepted"]

    started = time.time()
    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.time() - started
    if errors:
        print(f"  non-202 answers: {len(errors)} ({sorted(set(errors))})")
    return accepted[0], elapsed


def latency(key, port: int, per_tenant: int, rate: int, seconds: float, alerting: float) -> None:
    """Events at a steady rate (ticks on an absolute schedule); a poller sees each one's chunk
    commit (its alert, if it raised one, commits in the same transaction) and times it from the
    202. The sender does nothing but send, so the rate holds."""
    from django.db import connection

    from accounts.models import Tenant
    from alerts.models import AccountEvent, AlertEvidence

    tenant_id = Tenant.objects.get(slug=key[0]).pk
    sender = Sender(port)
    sent: dict[str, float] = {}
    alerting_ids: set[str] = set()
    seen: dict[str, float] = {}
    lock, done = threading.Lock(), threading.Event()

    def poll():
        while True:
            with lock:
                pending = [external_id for external_id in sent if external_id not in seen]
            finished = done.is_set()
            if pending:
                found = AccountEvent.objects.filter(
                    tenant_id=tenant_id, external_id__any=pending, processed_at__isnull=False
                ).values_list("external_id", flat=True)
                now = time.time()
                for external_id in found:
                    seen[external_id] = now
            if finished and (len(seen) == len(sent) or time.time() > done_at[0] + 120):
                break
            time.sleep(0.02)
        connection.close()

    done_at = [0.0]
    poller = threading.Thread(target=poll)
    poller.start()
    tick = 0.1
    per_tick = max(1, int(rate * tick))
    started = next_tick = time.time()
    while next_tick < started + seconds:
        events, alerting_now = make_batch(per_tenant, per_tick, alerting)
        status, at, _ = sender.send(key, events)
        if status == 202:
            with lock:
                for event in events:
                    sent[event["id"]] = at
                alerting_ids.update(alerting_now)
        next_tick += tick
        time.sleep(max(0.0, next_tick - time.time()))
    elapsed = time.time() - started
    done_at[0] = time.time()
    done.set()
    poller.join()
    linked = AlertEvidence.objects.filter(event__tenant_id=tenant_id, event__external_id__any=list(alerting_ids))
    with_alert = set(linked.values_list("event__external_id", flat=True))
    everything = [(seen[i] - at) * 1000 for i, at in sent.items() if i in seen]
    alerted = [(seen[i] - sent[i]) * 1000 for i in with_alert if i in seen]
    print(f"latency: {len(sent):,} events in {elapsed:.0f} s = {len(sent) / elapsed:,.0f} events/s "
          f"({alerting:.0%} of them raise an alert; polled every 20 ms):")  # fmt: skip
    print("  " + summary("202 -> alert committed", alerted) if alerted else "  no alerts measured")
    print("  " + summary("202 -> any event processed", everything) if everything else "  nothing processed")
    print(f"  {len(with_alert)} of {len(alerting_ids)} alerting events had their alert; "
          f"{len(seen)} of {len(sent)} events processed")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--web", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--latency-seconds", type=float, default=60)
    parser.add_argument("--alerting", type=float, default=0.01, help="share of sustained events that raise an alert")
    parser.add_argument("--latency-alerting", type=float, default=0.1, help="the same in the latency run")
    parser.add_argument("--port", type=int, default=8300, help="the first web process's port (then +1, +2...)")
    parser.add_argument("--drain-limit", type=int, default=1800, help="seconds to wait for the worker to catch up")
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        sys.exit("Set REDIS_URL too: the bench runs a real Celery worker.")
    django_setup()
    from django.db import connection

    from alerts.models import AccountEvent, Alert

    keys = generate(args.customers)
    procs, ports = start_services(args.web, args.concurrency, args.port)
    try:
        if args.seconds > 0:  # 0: the latency run alone
            before = AccountEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            accepted, elapsed = sustained(
                keys, ports, args.customers, args.seconds, args.batch, args.threads, args.alerting
            )
            print(f"sustained: {accepted:,} events accepted in {elapsed:.0f} s = {accepted / elapsed:,.0f} events/s "
                  f"(batches of {args.batch}, {args.threads} client threads, {args.web} web processes)")  # fmt: skip
            rss_web = sum(rss_of(p.pid) for p in procs[: args.web])
            rss_worker = rss_of(procs[args.web].pid)
            started = time.time()
            while AccountEvent.objects.filter(pk__gt=before, processed_at__isnull=True).exists():
                if time.time() - started > args.drain_limit:
                    print(f"  gave up waiting for the worker after {args.drain_limit} s")
                    break
                time.sleep(1)
            drained = time.time() - started
            processed = AccountEvent.objects.filter(pk__gt=before, processed_at__isnull=False).count()
            print(f"  worker finished processing {drained:.0f} s after the load stopped: detection ran at "
                  f"{processed / (elapsed + drained):,.0f} events/s over the whole run")  # fmt: skip
            print(f"  RSS: web {rss_web:.0f} MB in {args.web} processes, worker {rss_worker:.0f} MB "
                  f"({args.concurrency} children)")  # fmt: skip

        latency(keys[0], ports[0], args.customers // 100, args.rate, args.latency_seconds, args.latency_alerting)
        print(f"  alerts in total {Alert.objects.count():,}")
    finally:
        stop_services(procs)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_total_relation_size('alerts_accountevent'), (SELECT count(*) FROM alerts_accountevent)"
        )
        size, count = cursor.fetchone()
    print(f"database: {count:,} events take {size / 2**20:,.0f} MB with indexes = "
          f"{size / max(count, 1) * 1e6 / 2**30:.2f} GiB per million events")  # fmt: skip


if __name__ == "__main__":
    main()

"""The live desk on the real stack: PostgreSQL, Redis, daphne processes, a Celery worker.

1. Makes --agents agents across the first --tenants load tenants (bench/ingest.py's), each granted
   their tenant's default queue, signed in and past the OTP step; opens one desk WebSocket per agent,
   spread over --web daphne processes.
2. Sends --rate events/s for --seconds, spread over those tenants, every one of them raising (or
   folding into) an alert. For each alerting event and each connected socket of its queue: the time
   from the event's 202 to its alert's id reaching that socket in a queue.changed signal, or to a
   refetch signal of that queue covering it (received after the event was processed). Prints
   p50/p95/p99, frames per socket, and (alert, socket) pairs that never reached a screen.
3. Reconnect storms (--storms, default 3): every socket closed and reopened at once; time until
   every socket has its hello again, errors, and Redis's connected_clients before and after each.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alertdesk_live REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/live.py --rate 500 --seconds 20

--smoke runs a tiny size (for config/tests/test_bench.py). The socket client is a minimal RFC 6455
client on asyncio streams (text frames, no extensions), so that 200 sockets cost the bench little.
Caveat: "processed" is the chunk's own timestamp, taken just before its commit, so a refetch in the
few milliseconds between the two is counted as covering an alert it may have missed.
"""

import argparse
import asyncio
import base64
import bisect
import json
import os
import random
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from _setup import django_setup, summary
from ingest import Sender, generate, make_event, start_services, stop_services


def agents_setup(count: int, tenant_slugs: list[str]) -> list[tuple[str, int, int]]:
    """`count` agents (made once, then reused), each granted the default queue of one of the
    tenants; returns (session cookie, tenant id, queue id) per agent."""
    from django.conf import settings
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts import services
    from accounts.models import Role, Tenant, User
    from accounts.testing import TEST_PASSWORD, verified_client
    from desk.services import queue_create_default, queue_grant

    tenants = [Tenant.objects.get(slug=slug) for slug in tenant_slugs]
    queues = [queue_create_default(tenant=t) for t in tenants]
    agents = []
    for i in range(count):
        tenant, queue = tenants[i % len(tenants)], queues[i % len(tenants)]
        username = f"live-agent-{i}-of-{len(tenants)}"  # one tenant each, whatever an earlier run used
        user = User.objects.filter(username=username).first()
        if user is None:
            user = services.user_create(username=username, password=TEST_PASSWORD)
            TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
        services.membership_set(user=user, tenant=tenant, role=Role.AGENT)
        queue_grant(queue=queue, user=user)
        client = verified_client(user)
        agents.append((client.cookies[settings.SESSION_COOKIE_NAME].value, tenant.pk, queue.pk))
    return agents


class Socket:
    """One agent's desk connection: what it heard, when."""

    def __init__(self, port: int, cookie: str, queue: int):
        self.port, self.cookie, self.queue = port, cookie, queue
        self.reader = self.writer = None
        self.frames = 0
        self.listed: dict[int, list[float]] = {}
        self.refetches: list[float] = []
        self.gaps = 0
        self.closed_by_server = 0
        self.errors: list[str] = []
        self.hello = asyncio.Event()
        self.task = None

    async def open(self) -> None:
        from django.conf import settings

        self.hello.clear()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write(
            (
                f"GET /ws/desk/ HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: http://127.0.0.1:{self.port}\r\n"
                f"Cookie: {settings.SESSION_COOKIE_NAME}={self.cookie}\r\n\r\n"
            ).encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
        self.seq = 0
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                b0, b1 = await self.reader.readexactly(2)
                length = b1 & 0x7F
                if length == 126:
                    (length,) = struct.unpack(">H", await self.reader.readexactly(2))
                elif length == 127:
                    (length,) = struct.unpack(">Q", await self.reader.readexactly(8))
                data = await self.reader.readexactly(length)
                opcode = b0 & 0x0F
                if opcode == 0x8:  # close: from the server, unless we closed first (counted)
                    if self.writer is not None:
                        self.closed_by_server += 1
                    return
                if opcode == 0x9:  # ping: answer it, as browsers do (daphne closes a socket that does not)
                    self._send(0xA, data)
                    continue
                if opcode != 0x1:
                    continue
                now = time.time()
                message = json.loads(data)
                self.frames += 1
                if message["seq"] != self.seq + 1:
                    self.gaps += 1
                self.seq = message["seq"]
                if message["type"] == "hello":
                    self.hello.set()
                elif message["type"] == "queue.changed":
                    if message["payload"]["refetch"]:
                        self.refetches.append(now)
                    for alert in message["payload"]["alerts"]:
                        self.listed.setdefault(alert["id"], []).append(now)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        except Exception as error:  # counted, not hidden: a reader that died would look like losses
            self.errors.append(repr(error))

    def _send(self, opcode: int, data: bytes) -> None:
        """A masked frame (client to server) of up to 125 bytes."""
        mask = os.urandom(4)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        try:
            self.writer.write(bytes([0x80 | opcode, 0x80 | len(data)]) + mask + payload)
        except (ConnectionError, AttributeError):
            pass

    async def close(self) -> None:
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        mask = os.urandom(4)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(struct.pack(">H", 1000)))
        try:
            writer.write(bytes([0x88, 0x80 | 2]) + mask + payload)
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()
        if self.task is not None:
            self.task.cancel()


def redis_clients_by_command() -> Counter:
    """This database's Redis clients by the last command each sent (who holds them: the channel
    layer's BZPOPMIN/ZADD, the cache's GET/SET, ...)."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    db = client.connection_pool.connection_kwargs.get("db", 0)
    try:
        return Counter(c["cmd"] for c in client.client_list() if int(c["db"]) == db and c["cmd"] != "client|list")
    finally:
        client.close()


def redis_clients() -> int:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    db = client.connection_pool.connection_kwargs.get("db", 0)
    try:  # the shared server's other databases are other people's: count this one's (and not ourselves)
        return sum(1 for c in client.client_list() if int(c["db"]) == db) - 1
    finally:
        client.close()


def send_load(keys, per_tenant: int, rate: int, seconds: float, sent: dict[str, tuple[float, int]]) -> float:
    """Every event raises an alert (two-factor turned off), `rate` per second over the tenants, in
    ticks of 0.1 s on an absolute schedule; each tenant's ticks are shared by SENDERS threads, so one
    slow answer does not hold the next tick back."""
    lock, refused = threading.Lock(), Counter()
    ticks = int(seconds / 0.1)
    per_tenant_tick = rate * 0.1 / len(keys)
    started = time.time() + 0.5

    def run(key, first):
        sender = Sender(PORTS[first % len(PORTS)])
        for tick in range(first % SENDERS, ticks, SENDERS):
            count = int((tick + 1) * per_tenant_tick) - int(tick * per_tenant_tick)  # exact on average
            time.sleep(max(0.0, started + tick * 0.1 - time.time()))
            if not count:
                continue
            events = [make_event(per_tenant, "mfa.disabled", n=random.randrange(per_tenant)) for _ in range(count)]  # noqa: S311
            try:
                status, at, _ = sender.send(key, events)
            except (OSError, ValueError) as error:  # an error page is not JSON
                refused[type(error).__name__] += 1
                sender = Sender(PORTS[first % len(PORTS)])
                continue
            if status != 202:
                refused[status] += 1
            else:
                with lock:
                    for event in events:
                        sent[event["id"]] = (at, key[3])

    threads = [threading.Thread(target=run, args=(key, n)) for key in keys for n in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if refused:
        print(f"  requests not answered 202: {dict(refused)}")
    return time.time() - started


SENDERS = 3
PORTS: list[int] = []
WEB_PIDS: list[int] = []
WORKER_PIDS: list[int] = []


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) used so far by these processes and their live descendants (the
    worker's pool processes), and by descendants they reaped: less sensitive to the machine's other
    load than wall-clock times."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    ticks, todo, seen = 0, list(pids), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        fields = stats[pid]  # after the name: state, ppid, ... utime stime cutime cstime at 11-14
        ticks += sum(int(f) for f in fields[11:15])
        todo += children.get(pid, [])
    return ticks / os.sysconf("SC_CLK_TCK")


def redis_sockets_of(pids: list[int]) -> list[int]:
    """Open TCP connections to Redis's port held by each of these processes (or their children)."""
    import redis
    from django.conf import settings

    port = redis.Redis.from_url(settings.REDIS_URL).connection_pool.connection_kwargs.get("port", 6379)
    counts = []
    for pid in pids:
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        count = 0
        for table in ("tcp", "tcp6"):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[2].split(":")[1], 16) == port and fields[3] == "01" and fields[9] in inodes:
                    count += 1
        counts.append(count)
    return counts


async def storm(sockets: list[Socket]) -> tuple[float, int]:
    """Close every socket at once, open them all again at once: seconds until every one has its
    hello, and how many failed."""
    await asyncio.gather(*(s.close() for s in sockets))
    started = time.perf_counter()

    async def reopen(s):
        try:
            await s.open()
            await asyncio.wait_for(s.hello.wait(), 15)
            return None
        except (OSError, ConnectionError, TimeoutError, asyncio.IncompleteReadError) as error:
            return f"{type(error).__name__}: {error}"[:80]

    results = await asyncio.gather(*(reopen(s) for s in sockets))
    return time.perf_counter() - started, Counter(r for r in results if r is not None)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--web", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--customers", type=int, default=100_000, help="across bench/ingest.py's 100 load tenants")
    parser.add_argument("--rate", type=int, default=100, help="alerting events per second, over all tenants")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--storms", type=int, default=3)
    parser.add_argument("--port", type=int, default=8400)
    parser.add_argument("--drain-limit", type=float, default=300)
    parser.add_argument("--log", help="a file for the web and worker processes' log lines (warnings)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    args = parser.parse_args()
    if args.smoke:
        args.agents, args.tenants, args.web, args.concurrency = 6, 2, 1, 1
        args.customers, args.rate, args.seconds, args.storms = 400, 20, 2, 1
    if not os.environ.get("REDIS_URL"):
        sys.exit("Set REDIS_URL too: the bench runs a real Celery worker and the Redis channel layer.")
    django_setup()
    import logging

    from django.db import connection

    # This process's own pushes (grants made in set-up) are not what is measured: no layer noise here.
    logging.getLogger("channels_redis").setLevel(logging.ERROR)

    from accounts.models import Tenant
    from alerts.models import AccountEvent, AlertEvidence

    keys = generate(args.customers)[: args.tenants]
    tenant_ids = dict(Tenant.objects.filter(slug__in=[k[0] for k in keys]).values_list("slug", "pk"))
    keys = [(*k, tenant_ids[k[0]]) for k in keys]
    agents = agents_setup(args.agents, [k[0] for k in keys])
    connection.close()
    log = open(args.log, "w") if args.log else subprocess.DEVNULL  # noqa: SIM115 (open for the processes' lifetime)
    procs, ports = start_services(args.web, args.concurrency, args.port, log=log)
    PORTS[:] = ports
    WEB_PIDS[:] = [p.pid for p in procs[: args.web]]
    WORKER_PIDS[:] = [procs[args.web].pid]
    try:
        asyncio.run(run(args, keys, agents, ports, AccountEvent, AlertEvidence))
    finally:
        stop_services(procs)


async def run(args, keys, agents, ports, AccountEvent, AlertEvidence):  # noqa: N803 (model classes)
    from asgiref.sync import sync_to_async

    sockets = [Socket(ports[i % len(ports)], cookie, queue) for i, (cookie, _, queue) in enumerate(agents)]
    tenant_of_queue = {queue: tenant for _, tenant, queue in agents}
    started = time.perf_counter()
    opened = await asyncio.gather(*(s.open() for s in sockets), return_exceptions=True)
    failed = Counter(f"{type(o).__name__}: {o}"[:80] for o in opened if isinstance(o, BaseException))
    await asyncio.gather(*(asyncio.wait_for(s.hello.wait(), 15) for s in sockets), return_exceptions=True)
    print(f"{len(sockets)} sockets across {len(keys)} tenants on {len(ports)} daphne processes: open in "
          f"{time.perf_counter() - started:.2f} s, {failed.total()} failed, "
          f"{sum(not s.hello.is_set() for s in sockets)} without their hello")  # fmt: skip
    for reason, count in failed.most_common(3):
        print(f"  {count} x {reason}")

    sent: dict[str, tuple[float, int]] = {}
    per_tenant = args.customers // 100
    cpu_before = cpu_seconds(WEB_PIDS), cpu_seconds(WORKER_PIDS)
    elapsed = await asyncio.to_thread(send_load, keys, per_tenant, args.rate, args.seconds, sent)
    print(f"load: {len(sent):,} alerting events accepted in {elapsed:.1f} s = {len(sent) / elapsed:,.0f}/s")

    def processed_all():
        pending = AccountEvent.objects.filter(external_id__in=list(sent), processed_at__isnull=True).exists()
        connection_close()
        return not pending

    def connection_close():
        from django.db import connection

        connection.close()

    waited = time.time()
    while not await sync_to_async(processed_all, thread_sensitive=False)():
        if time.time() - waited > args.drain_limit:
            print(f"  gave up waiting for the worker after {args.drain_limit:.0f} s")
            break
        await asyncio.sleep(0.5)
    cpu_web, cpu_worker = cpu_seconds(WEB_PIDS) - cpu_before[0], cpu_seconds(WORKER_PIDS) - cpu_before[1]
    # The last signals: until no socket has heard anything for 3 s (at most 60 s).
    quiet_since, heard, deadline = time.time(), sum(s.frames for s in sockets), time.time() + 60
    while time.time() - quiet_since < 3 and time.time() < deadline:
        await asyncio.sleep(0.5)
        if (now_heard := sum(s.frames for s in sockets)) != heard:
            heard, quiet_since = now_heard, time.time()

    def mapping():
        rows = AlertEvidence.objects.filter(event__external_id__in=list(sent)).values_list(
            "event__external_id", "alert_id", "event__processed_at"
        )
        result = [(ext, alert_id, processed.timestamp()) for ext, alert_id, processed in rows]
        connection_close()
        return result

    rows = await sync_to_async(mapping, thread_sensitive=False)()
    by_tenant: dict[int, list[Socket]] = {}
    for s in sockets:
        by_tenant.setdefault(tenant_of_queue[s.queue], []).append(s)
    latencies, never, by_refetch, after_commit, worker = [], 0, 0, [], []
    missed_alerts: Counter = Counter()
    missing_sockets: Counter = Counter()
    for ext, alert_id, processed_at in rows:
        at, tenant_id = sent[ext]
        worker.append((processed_at - at) * 1000)
        for s in by_tenant.get(tenant_id, []):
            # After the chunk that processed the event began (a signal may beat the 202 to the bench).
            times = sorted(s.listed.get(alert_id, []))
            i = bisect.bisect_left(times, processed_at)
            listed = times[i] if i < len(times) else None
            j = bisect.bisect_left(s.refetches, processed_at)
            refetch = s.refetches[j] if j < len(s.refetches) else None
            reached = min(t for t in (listed, refetch) if t is not None) if (listed or refetch) else None
            if reached is None:
                never += 1
                missed_alerts[alert_id] += 1
                missing_sockets[id(s)] += 1
                continue
            if listed is None or (refetch is not None and refetch < listed):
                by_refetch += 1
            latencies.append((reached - at) * 1000)
            after_commit.append((reached - processed_at) * 1000)
    pairs = len(latencies) + never
    print(f"  {len(rows):,} of {len(sent):,} alerting events linked to an alert; {pairs:,} (alert, socket) pairs")
    if latencies:
        print("  " + summary("202 -> on each socket of its queue", latencies))
        print("  " + summary("  of which 202 -> processed (the worker)", worker))
        print("  " + summary("  and processed -> on the socket (live)", after_commit))
    if sent:
        print(f"  CPU from the first event until the worker was done: web processes {cpu_web:.1f} s, worker "
              f"{cpu_worker:.1f} s = {1000 * cpu_web / len(sent):.1f} + {1000 * cpu_worker / len(sent):.1f} ms "
              f"per alerting event; at most {len(sent) / max(cpu_web + cpu_worker, 1e-9):.0f} events/s "
              f"per fully used core, {os.cpu_count()} cores here")  # fmt: skip
    errors = sum(len(s.errors) for s in sockets)
    print(f"  never reached a screen: {never} pairs ({len(missed_alerts)} alerts, on {len(missing_sockets)} sockets); "
          f"reached by a refetch signal: {by_refetch}; socket reader errors: {errors}")  # fmt: skip
    frames = Counter(s.frames for s in sockets)
    per_socket = sorted(s.frames for s in sockets)
    print(f"  frames per socket: min {per_socket[0]}, median {per_socket[len(per_socket) // 2]}, "
          f"max {per_socket[-1]} (over {elapsed:.0f} s); seq gaps {sum(s.gaps for s in sockets)}; "
          f"sockets closed by the server {sum(s.closed_by_server for s in sockets)}")  # fmt: skip
    del frames

    for n in range(args.storms):
        before, web_before = await asyncio.to_thread(redis_clients), redis_sockets_of(WEB_PIDS)
        took, errors = await storm(sockets)
        await asyncio.sleep(2)
        after, web_after = await asyncio.to_thread(redis_clients), redis_sockets_of(WEB_PIDS)
        print(f"reconnect storm {n + 1}: {len(sockets)} sockets again in {took:.2f} s, {errors.total()} errors; "
              f"Redis clients on this database {before} -> {after}; "
              f"held by the daphne processes {web_before} -> {web_after}")  # fmt: skip
        for reason, count in errors.most_common(3):
            print(f"  {count} x {reason}")
        commands = await asyncio.to_thread(redis_clients_by_command)
        print(f"  Redis clients by their last command: {', '.join(f'{c} {n}' for c, n in commands.most_common())}")
    await asyncio.gather(*(s.close() for s in sockets))


if __name__ == "__main__":
    main()

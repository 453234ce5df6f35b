"""The desk's queue at size: server time of a queue's pages and of the alert page (PostgreSQL).

Generates --alerts alerts (default 1,000,000) over a year across --tenants tenants (default 100),
about 10% of them active, with 1,000 customers per tenant and two queues per tenant (its default
queue and a "Takeover and recovery" queue: 200 queues), straight in SQL. Then, as an agent granted
one tenant's default queue and as that tenant's supervisor, it asks through the whole middleware
stack (session, MFA wall, audit record of what was shown included):
- the queue API's first page of active alerts in queue order, and the page 20 pages deep;
- the queue page (the desk's HTML), first page and 20 pages deep (following its "Older" links);
- the alert page of an active alert.
It prints median, p95 and p99 server time, the CPU time of this process per request (less moved
by the other loads of a shared machine than wall time), throughput (one client, one after another),
the number of statements each request sent (the audit record's INSERT included) and the garbage
collector's full collections during the timing. The start-up objects are frozen first, as
config.wsgi / config.asgi do (`--no-gc-freeze` to compare).

With 100 tenants a queue holds about 940 active alerts at 1,000,000 (so "20 pages deep" stops at
its last page, 17 pages deep) but only 9 at 10,000: to compare equal pages at 10,000, give it one
tenant (`--tenants 1`: about 940 active alerts in the queue, as at 1,000,000 across 100).

`--queries` prints the statements of the queue page and the alert page; `--profile queue|alert`
runs that page under cProfile and prints where the time goes (PROFILE_OUT=file keeps the stats);
`--instructions queue|alert` counts the instructions a request of it runs, with callgrind (the
Python side only, and the same whatever the machine's load: the figure to compare two commits by).

Targets (issue 9): queue page p95 under 25 ms with at most 8 queries, flat from 10,000 to
1,000,000 alerts, the same 20 pages deep; alert page p95 under 20 ms. Run it at two sizes on two
databases to see the flatness:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_queue_10k .venv/bin/python bench/queue_pages.py \
        --alerts 10000 --tenants 1
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_queue_1m .venv/bin/python bench/queue_pages.py
"""

import argparse
import cProfile
import gc
import os
import pstats
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from html import unescape

from _setup import Statements, alerts_generate, django_setup, summary


class FullCollections:
    """The garbage collector's full (oldest generation) collections while it is open: how many,
    and the longest, in ms."""

    def __init__(self):
        self.pauses: list[float] = []
        self._started = 0.0

    def _callback(self, phase, info):
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self._started) * 1000)

    def __enter__(self):
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self._callback)


@dataclass
class Timing:
    """One URL asked `repeat` times: wall and CPU time (this process's) of each request, in ms."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    statements: int = 0
    full_collections: list[float] = field(default_factory=list)

    def line(self, label: str) -> str:
        throughput = 1000 * len(self.wall) / sum(self.wall)
        pauses = self.full_collections
        gc_note = f"  full gc: {len(pauses)}, longest {max(pauses):.0f} ms" if pauses else "  full gc: 0"
        return summary(f"{label} [{self.statements} q]", self.wall, self.cpu) + f"  {throughput:5.0f}/s" + gc_note


def _timed(client, method: str, url: str, repeat: int, **params) -> tuple[Timing, object]:
    timing, response = Timing(), None
    for _ in range(3):
        getattr(client, method)(url, params)  # warm: first-use caches
    with Statements() as captured:  # counted apart: the query log's cursor costs time of its own
        getattr(client, method)(url, params)
    timing.statements = len(captured)
    gc.collect()
    with FullCollections() as collections:
        for _ in range(repeat):
            started, cpu_started = time.perf_counter(), time.process_time()
            response = getattr(client, method)(url, params)
            timing.cpu.append((time.process_time() - cpu_started) * 1000)
            timing.wall.append((time.perf_counter() - started) * 1000)
    timing.full_collections = collections.pauses
    return timing, response


def _plans() -> str:
    """How PostgreSQL planned this connection's prepared statements: a statement planned again at
    every run (custom plans only) pays its planning each request (the queue's rows once did: 1.5 ms)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
        prepared = cursor.fetchall()
    replanned = [" ".join(text.split()) for text, generic, custom in prepared if custom > 5 and generic == 0]
    line = f"prepared statements: {len(prepared)}, planned again at every run: {len(replanned)}"
    return line + "".join(f"\n  - {text}" for text in replanned)


def _older_link(response) -> str | None:
    match = re.search(r'<a href="([^"]+)" id="older-link"', response.content.decode())
    return unescape(match[1]) if match else None


def _profile(client, url: str, repeat: int) -> None:
    for _ in range(5):
        client.get(url)  # warm
    with Statements() as captured:
        client.get(url)
    print(f"{url}: {len(captured)} statements\n{captured.listing()}")
    # CPU time of this process (PROFILE_TIMER=wall for wall time): the shares of the Python side,
    # which the machine's other loads and the database's own time do not blur.
    timer = time.perf_counter if os.environ.get("PROFILE_TIMER") == "wall" else time.process_time
    profiler = cProfile.Profile(timer)
    profiler.enable()
    for _ in range(repeat):
        client.get(url)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(70)
    stats.sort_stats("tottime").print_stats(30)
    if out := os.environ.get("PROFILE_OUT"):
        stats.dump_stats(out)  # for pstats or snakeviz


def _callgrind_child(client, url: str, repeat: int) -> None:
    """Under callgrind (started with instrumentation off): warm, then count `repeat` requests."""
    for _ in range(5):
        client.get(url)
    gc.collect()
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)  # noqa: S603, S607
    for _ in range(repeat):
        client.get(url)
    subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True, capture_output=True)  # noqa: S603, S607


def instructions(page: str, repeat: int, tenants: int) -> None:
    """Instructions this process runs per request of the agent's `page` (callgrind): the Python
    side's cost, which the other loads of a shared machine do not move (the database's is not in it)."""
    out = f"/tmp/queue_pages.{os.getpid()}.callgrind"  # noqa: S108 (a scratch file of this run)
    command = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
        sys.executable, os.path.abspath(__file__), "--callgrind-child", page, "--repeat", str(repeat),
        "--tenants", str(tenants),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    with open(out) as f:
        total = next(int(line.split()[1]) for line in f if line.startswith("totals:"))
    os.unlink(out)
    print(f"agent: {page} page: {total / repeat / 1e6:,.1f} M instructions a request (callgrind, {repeat} requests)")


PAGES = ("api", "queue", "alert")


def measure(
    repeat: int, tenants: int, *, queries: bool = False, profile: str = "", callgrind: str = "", pages=PAGES
) -> None:
    from django.urls import reverse

    from accounts.models import Role, Tenant, User
    from accounts.testing import make_staff, verified_client
    from alerts.models import ACTIVE_STATUSES, Alert
    from desk.models import Queue

    slug = "bench-007" if tenants > 7 else "bench-000"
    tenant = Tenant.objects.get(slug=slug)
    default = Queue.objects.get(tenant=tenant, is_default=True)
    agent = User.objects.filter(username="bench-agent").first() or make_staff(
        "bench-agent", role=Role.AGENT, tenants=[tenant], default_queue=True
    )
    supervisor = User.objects.filter(username="bench-supervisor").first() or make_staff(
        "bench-supervisor", role=Role.SUPERVISOR, tenants=[tenant]
    )
    active = (
        Alert.objects.filter(tenant=tenant, status__in=ACTIVE_STATUSES)
        .exclude(type__in=["account_takeover", "recovery"])  # in the default queue, which the agent works
        .order_by("-id")
        .first()
    )
    print(f"tenant {slug}: {Alert.objects.filter(tenant=tenant).count():,} alerts, "
          f"{Alert.objects.filter(tenant=tenant, status__in=ACTIVE_STATUSES).count():,} active")  # fmt: skip
    if one := profile or callgrind:
        page = reverse("desk:queue", args=[default.pk]) if one == "queue" else f"/alerts/{active.pk}/"
        if callgrind:
            _callgrind_child(verified_client(agent), page, repeat)
        else:
            _profile(verified_client(agent), page, repeat)
        return
    for who, user in (("agent", agent), ("supervisor", supervisor)):
        client = verified_client(user)
        if "api" in pages:
            api = f"/api/v1/queues/{default.pk}/alerts/"
            timing, response = _timed(client, "get", api, repeat)
            assert response.status_code == 200, response.status_code
            print(timing.line(f"{who}: queue API, first page"))
            cursor_url, depth = api, 0
            while depth < 20:  # walk up to 20 pages deep, then time that page
                following = client.get(cursor_url).json()["next"]
                if following is None:
                    break
                cursor_url, depth = following.split("testserver", 1)[-1], depth + 1
            timing, response = _timed(client, "get", cursor_url, repeat)
            assert response.status_code == 200, response.status_code
            print(timing.line(f"{who}: queue API, {depth} pages deep"))
        if "queue" in pages:
            page = reverse("desk:queue", args=[default.pk])
            timing, response = _timed(client, "get", page, repeat)
            assert response.status_code == 200, response.status_code
            print(timing.line(f"{who}: queue page (HTML), first page"))
            if queries and who == "agent":
                with Statements() as captured:
                    client.get(page)
                print(captured.listing())
            deep, depth = page, 0
            while depth < 20 and (older := _older_link(client.get(deep))):
                deep, depth = older, depth + 1
            timing, response = _timed(client, "get", deep, repeat)
            assert response.status_code == 200, response.status_code
            print(timing.line(f"{who}: queue page (HTML), {depth} pages deep"))
        if "alert" in pages:
            timing, response = _timed(client, "get", f"/alerts/{active.pk}/", repeat)
            assert response.status_code == 200, response.status_code
            print(timing.line(f"{who}: alert page"))
            if queries and who == "agent":
                with Statements() as captured:
                    client.get(f"/alerts/{active.pk}/")
                print(captured.listing())
        print(f"{who}: {_plans()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--queries", action="store_true", help="print the statements of the agent's pages")
    parser.add_argument("--profile", choices=["queue", "alert"], help="profile the agent's queue or alert page")
    parser.add_argument(
        "--instructions",
        choices=["queue", "alert"],
        help="count the instructions a request of the agent's queue or alert page runs (callgrind)",
    )
    parser.add_argument("--no-gc-freeze", action="store_true", help="leave the start-up objects to the collector")
    parser.add_argument("--callgrind-child", choices=["queue", "alert"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--pages", default=",".join(PAGES), help=f"which to time, comma-separated among {','.join(PAGES)} (all)"
    )
    args = parser.parse_args()
    pages = [p for p in args.pages.split(",") if p]
    if unknown := set(pages) - set(PAGES):
        parser.error(f"unknown pages: {', '.join(sorted(unknown))}")
    os.environ["AUDIT_SEAL_ON_COMMIT"] = "0"
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
    try:  # as config.wsgi / config.asgi do once the application is loaded
        from config.memory import startup_objects_freeze
    except ImportError:  # a commit from before it (comparing two commits on one database)
        startup_objects_freeze = None
    if args.instructions:
        django_setup()  # migrated before the counted run, which does not migrate
        instructions(args.instructions, args.repeat, args.tenants)
        return
    django_setup(migrate=not args.callgrind_child)
    if not args.callgrind_child:
        alerts_generate(args.alerts, args.tenants)
    if startup_objects_freeze is None or args.no_gc_freeze:
        print("gc.freeze: not used")
    else:
        print(f"start-up objects frozen: {startup_objects_freeze():,}")
    measure(
        args.repeat, args.tenants, queries=args.queries, profile=args.profile or "",
        callgrind=args.callgrind_child or "", pages=pages,
    )  # fmt: skip


if __name__ == "__main__":
    main()

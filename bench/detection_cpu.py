"""Detection's CPU per event by chunk size: what a one-event task costs against a batched one.

Stores --events alerting events (two-factor turned off, as bench/live.py sends) over --tenants of
bench/ingest.py's load tenants, through the ingestion service with detection not queued, then runs
detection over them in calls of each --sizes events (as that many tasks would, one after the
other) and prints, per size: this process's CPU time per event (time.process_time: the database's
share is not in it), wall time per event, statements per event. --profile N: a cProfile of N
one-event calls, the top functions by own time and by cumulative time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alertdesk_detect .venv/bin/python bench/detection_cpu.py

The customers' notifications are planned (rows written, in the chunk) but not queued for sending:
their tasks would pile up unconsumed on the broker, or run here when no broker is set (Celery eager);
that publish is one per chunk, so leaving it out only understates what small chunks cost.

--smoke runs a tiny size (for config/tests/test_bench.py).
"""

import argparse
import cProfile
import io
import pstats
import random
import time
from unittest import mock

from _setup import Statements, django_setup
from ingest import generate, make_event


def store(keys, per_tenant: int, count: int) -> list[int]:
    """`count` alerting events over these tenants, stored as the API would (one request per event,
    the way bench/live.py sends them), detection not queued; their ids in arrival order."""
    from accounts.models import Tenant
    from alerts.services import events_ingest
    from alerts.validation import validate_event

    tenants = {t.slug: t for t in Tenant.objects.filter(slug__in=[k[0] for k in keys])}
    ids = []
    with mock.patch("alerts.services.detection_enqueue"):
        for n in range(count):
            key = keys[n % len(keys)]
            raw = make_event(per_tenant, "mfa.disabled", n=random.randrange(per_tenant))  # noqa: S311
            _, _, stored = events_ingest(tenant=tenants[key[0]], events=[validate_event(raw)])
            ids += stored
    return ids


def measure(ids: list[int], size: int, claim: bool = False) -> tuple[float, float, float]:
    """Detection over `ids` in calls of `size` (with `claim`, as the worker's task calls it): CPU ms,
    wall ms and statements per event."""
    from django.db import connection

    from alerts.detection import events_process, events_process_claiming

    def process(chunk):
        return events_process_claiming(event_ids=chunk)[0] if claim else events_process(event_ids=chunk)

    done = statements = 0
    cpu = wall = 0.0
    for start in range(0, len(ids), size):
        connection.queries_log.clear()  # the log keeps the last 9,000: a full one would count nothing
        with Statements() as captured:
            started, started_cpu = time.perf_counter(), time.process_time()
            done += process(ids[start : start + size])
            cpu, wall = cpu + time.process_time() - started_cpu, wall + time.perf_counter() - started
        statements += len(captured)
    assert done == len(ids), (done, len(ids))
    return 1000 * cpu / done, 1000 * wall / done, statements / done


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000, help="across bench/ingest.py's 100 load tenants")
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--events", type=int, default=600, help="per chunk size")
    parser.add_argument("--sizes", default="1,10,50,200")
    parser.add_argument("--profile", type=int, default=0, help="profile this many one-event calls")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.customers, args.events, args.sizes = 400, 20, "1,10"
    django_setup()
    with mock.patch("alerts.notifications.planning.notifications_enqueue"):
        run(args)


def run(args):
    import logging

    logging.getLogger("channels_redis").setLevel(logging.ERROR)
    keys = generate(args.customers)[: args.tenants]
    per_tenant = args.customers // 100
    sizes = [int(s) for s in args.sizes.split(",")]
    store(keys, per_tenant, 50)  # warm-up: caches, prepared statements, the accounts' first state rows
    from alerts.detection import events_process
    from alerts.models import AccountEvent

    events_process(event_ids=list(AccountEvent.objects.filter(processed_at__isnull=True).values_list("pk", flat=True)))
    results = {}
    for size in sizes:
        ids = store(keys, per_tenant, args.events)
        results[size] = measure(ids, size)
        cpu, wall, queries = results[size]
        print(f"chunks of {size:>4}: {len(ids)} alerting events, CPU {cpu:6.2f} ms/event, wall {wall:6.2f} ms/event, "
              f"{queries:5.1f} statements/event")  # fmt: skip
    # The worker's way with a task per request (no coalescing of tasks at ingestion: the worst case),
    # each claiming what else is waiting: the first takes a chunk, the others find their events done.
    ids = store(keys, per_tenant, args.events)
    results["one-event tasks, claiming"] = cpu, wall, queries = measure(ids, 1, claim=True)
    print(f"one-event tasks, claiming: {len(ids)} alerting events, CPU {cpu:6.2f} ms/event, "
          f"wall {wall:6.2f} ms/event, {queries:5.1f} statements/event")  # fmt: skip
    base = results[sizes[0]][0]
    print("CPU per event against chunks of " + str(sizes[0]) + ": "
          + ", ".join(f"{size}: {base / cpu:.1f}x less" for size, (cpu, _, _) in results.items()))  # fmt: skip
    if args.profile:
        ids = store(keys, per_tenant, args.profile)
        profiler = cProfile.Profile()
        profiler.enable()
        for event_id in ids:
            events_process(event_ids=[event_id])
        profiler.disable()
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(30)
            print(f"--- {args.profile} one-event calls, by {order}")
            print("\n".join(out.getvalue().splitlines()[4:40]))


if __name__ == "__main__":
    main()

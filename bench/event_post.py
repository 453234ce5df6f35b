"""The event API under daphne: CPU of the web process per request, and the request's latency.

Starts one daphne process serving the project (config.asgi: config.asgi_handler's handler), a Celery
worker (so that detection keeps up and leaves no backlog) and beat, then sends --requests signed
batches of --batch events of ordinary traffic (bench/ingest.py's mix, a tenth of them alerting) from
--senders keep-alive connections, and prints the daphne process's CPU per request (user + system,
from /proc: what the machine's other load moves least), requests/s and the latency of each 202.
With --compare, does the same with Django's own ASGI handler (bench/stock_asgi.py) in the same run,
alternating --rounds times, and prints the ratio.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alertdesk_live REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/event_post.py --compare
"""

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from _setup import django_setup, summary
from ingest import Sender, generate, make_batch, start_services, stop_services

APPS = {"project": "config.asgi:application", "django": "bench.stock_asgi:application"}


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115, PTH123
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(app: str, args, keys) -> tuple[float, float, list[float]]:
    """(daphne CPU ms per request, requests/s, latencies in ms) for one server run."""
    procs, ports = start_services(1, 1, args.port, app=APPS[app])
    try:
        per_tenant = args.customers // 100

        def send(count: int, latencies: list[float], n: int):
            sender = Sender(ports[0])
            for i in range(count):
                events, _ = make_batch(per_tenant, args.batch, 0.1)
                started = time.perf_counter()
                status, _, _ = sender.send(keys[(n + i) % len(keys)], events)
                latencies.append((time.perf_counter() - started) * 1000)
                if status != 202:
                    raise RuntimeError(f"{app}: answered {status}")

        send(args.warmup, [], 0)
        latencies: list[float] = []
        before, started = cpu_seconds(procs[0].pid), time.perf_counter()
        per_sender = args.requests // args.senders
        with ThreadPoolExecutor(args.senders) as pool:
            for done in [pool.submit(send, per_sender, latencies, n) for n in range(args.senders)]:
                done.result()  # a sender's error ends the run here, not silently in its thread
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(procs[0].pid) - before
        return cpu * 1000 / len(latencies), len(latencies) / elapsed, latencies
    finally:
        stop_services(procs)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000, help="across bench/ingest.py's 100 load tenants")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--batch", type=int, default=12, help="events per request (bench/live.py sends about 12)")
    parser.add_argument("--senders", type=int, default=1, help="concurrent keep-alive connections")
    parser.add_argument("--compare", action="store_true", help="Django's own ASGI handler too, alternating")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--port", type=int, default=8470)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    args = parser.parse_args()
    if args.smoke:
        args.customers, args.requests, args.warmup, args.rounds = 1000, 20, 5, 1
    django_setup()
    from django.db import connection

    keys = generate(args.customers)[:4]
    connection.close()
    apps = ["django", "project"] if args.compare else ["project"]
    print(f"{args.requests} requests of {args.batch} events, {args.senders} sender(s), one daphne process:")
    cpu: dict[str, list[float]] = {app: [] for app in apps}
    for _ in range(args.rounds if args.compare else 1):
        for app in apps:
            per_request, rate, latencies = measure(app, args, keys)
            cpu[app].append(per_request)
            label = f"{app} handler: 202 latency"
            print(f"  {summary(label, latencies)}  | daphne CPU {per_request:.2f} ms/request, {rate:.0f} requests/s")
    if args.compare:
        ratio = statistics.median(cpu["django"]) / statistics.median(cpu["project"])
        print(f"daphne CPU per request, Django's handler / the project's: {ratio:.2f}x (medians of the rounds)")


if __name__ == "__main__":
    main()

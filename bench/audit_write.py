"""What the audit trail costs on the write side, on PostgreSQL.

1. The server time a view's @shows_data adds to a case-sized page: the same view, decorated and
   not, on the same request (targets: under 1 ms median, under 3 ms p99, hash chain on).
2. Audit throughput with 8 concurrent writer processes, each recording view events one by one
   in autocommit as requests do, while a sealer process chains them (target: 5,000 events/s).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alertdesk_bench .venv/bin/python bench/audit_write.py
"""

import argparse
import multiprocessing
import os
import time

from _setup import django_setup, rss_mb, summary


def case_page_view(request):
    """A stand-in for a case page: ~40 fields and a 30-entry timeline, rendered to HTML."""
    from django.http import HttpResponse
    from django.template import Context

    context = {
        "case": {f"field_{i}": f"value {i} " * 3 for i in range(40)},
        "timeline": [{"at": f"2026-11-{i % 28 + 1:02d}", "what": "note " * 12} for i in range(30)],
    }
    html = CASE_TEMPLATE.render(Context(context))
    if getattr(request, "audit_shown", None) is not None:
        from audit.decorators import audit_shown

        audit_shown(request).object(request.tenant)
    return HttpResponse(html)


CASE_TEMPLATE = None


def measure_view_cost(n: int) -> None:
    global CASE_TEMPLATE
    from django.contrib.auth.models import AnonymousUser  # noqa: F401 (loads auth)
    from django.template import Template
    from django.test import RequestFactory

    from accounts.models import Tenant
    from accounts.testing import make_staff
    from audit.decorators import shows_data
    from config.logging import RequestContext, _context

    CASE_TEMPLATE = Template(
        "<dl>{% for k, v in case.items %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl>"
        "<ol>{% for e in timeline %}<li>{{ e.at }} {{ e.what }}</li>{% endfor %}</ol>"
    )
    tenant, _ = Tenant.objects.get_or_create(slug="bench-view", defaults={"name": "Bench view"})
    from accounts.models import User

    user = User.objects.filter(username="bench-agent").first() or make_staff(
        "bench-agent", role="agent", tenants=[tenant]
    )
    factory = RequestFactory()
    audited = shows_data(case_page_view)
    plain, recorded = [], []
    for i in range(n):
        request = factory.get("/cases/1/")
        request.user, request.tenant, request.tenant_role = user, tenant, "agent"
        token = _context.set(
            RequestContext(request_id=f"bench{i:08d}", ip="10.1.2.3", user_agent="bench", path="/cases/1/")
        )
        try:
            view = audited if i % 2 else case_page_view  # interleave, so drift hits both alike
            started = time.perf_counter()
            view(request)
            elapsed = (time.perf_counter() - started) * 1000
        finally:
            _context.reset(token)
        (recorded if i % 2 else plain).append(elapsed)
    print(summary("case page, not recorded", plain))
    print(summary("case page, recorded (@shows_data)", recorded))
    added = sorted(r - p for r, p in zip(sorted(recorded), sorted(plain), strict=False))
    print(summary("added by recording (quantile difference)", added))


def _writer(seconds: float, per_commit: int, counter, ready, go) -> None:
    # The parent has migrated: no migrate here. Several children running it at once raced in its
    # post_migrate hooks, and a child that died before `ready` left the parent waiting for ever.
    django_setup(migrate=False)
    from django.db import connection, transaction

    from accounts.models import Tenant, User
    from audit.models import Action
    from audit.services import audit_record
    from config.logging import RequestContext, _context

    tenants = list(Tenant.objects.filter(slug__startswith="bench-t"))
    user = User.objects.get(username="bench-agent")
    connection.ensure_connection()
    ready.release()
    go.wait()
    done, i = 0, 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        token = _context.set(RequestContext(request_id=f"w{os.getpid()}-{i}", ip="10.0.0.1", user_agent="b", path="/x"))
        with transaction.atomic():
            for _ in range(per_commit):
                audit_record(
                    action=Action.VIEW, actor=user, tenant=tenants[i % len(tenants)], target_type="desk.case",
                    target_id=str(i), actor_role="agent",
                )  # fmt: skip
                done, i = done + 1, i + 1
        _context.reset(token)
    with counter.get_lock():
        counter.value += done


def _sealer(stop, sealed) -> None:
    django_setup(migrate=False)  # as _writer
    from audit.services import audit_seal

    total = 0
    while not stop.is_set():
        n = audit_seal()
        total += n
        if n == 0:
            time.sleep(0.2)
    while (n := audit_seal()) > 0:
        total += n
    with sealed.get_lock():
        sealed.value = total


def measure_throughput(writers: int, seconds: float, per_commit: int = 1) -> None:
    from accounts.models import Tenant
    from audit.models import AuditEvent

    for t in range(10):
        Tenant.objects.get_or_create(slug=f"bench-t{t}", defaults={"name": f"Bench {t}"})
    # Spawned, not forked: each child starts its own interpreter, Django and database connection.
    # A forked writer inherited the parent's state after its page-view run and once, in CI, failed
    # its first audit INSERT with "the last operation didn't produce records (EMPTY_QUERY)".
    ctx = multiprocessing.get_context("spawn")
    counter, sealed = ctx.Value("l", 0), ctx.Value("l", 0)
    ready, go, stop = ctx.Semaphore(0), ctx.Event(), ctx.Event()
    from django.db import connections

    connections.close_all()
    before = AuditEvent.objects.count()
    connections.close_all()
    procs = [ctx.Process(target=_writer, args=(seconds, per_commit, counter, ready, go)) for _ in range(writers)]
    sealer = ctx.Process(target=_sealer, args=(stop, sealed))
    for p in procs:
        p.start()
    for _ in procs:
        while not ready.acquire(timeout=1):  # a writer that died before it was ready fails the run
            if dead := [p for p in procs if p.exitcode not in (None, 0)]:
                for p in procs:
                    p.terminate()
                raise SystemExit(f"{len(dead)} writer(s) died before they were ready (their error is above)")
    sealer.start()
    started = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    stop.set()
    seal_started = time.perf_counter()
    sealer.join()
    if sealer.exitcode != 0:
        raise SystemExit(f"the sealer failed (exit code {sealer.exitcode}; its error is above)")
    seal_tail = time.perf_counter() - seal_started
    written = AuditEvent.objects.count() - before
    print(
        f"{writers} writers, {per_commit} event(s) per commit, {seconds:.0f} s: "
        f"{counter.value} events recorded ({written} in the table), "
        f"{counter.value / elapsed:,.0f} events/s; sealer chained {sealed.value} and needed {seal_tail:.1f} s "
        f"after the writers stopped to catch up"
    )


def measure_sealer(n: int) -> None:
    """The sealer's own cost: chain n pending events in one process."""
    import resource

    from accounts.models import Tenant, User
    from audit.models import Action
    from audit.services import audit_record, audit_seal

    while audit_seal():
        pass
    user, tenants = User.objects.get(username="bench-agent"), list(Tenant.objects.filter(slug__startswith="bench-t"))
    for i in range(n):
        audit_record(
            action=Action.VIEW, actor=user, tenant=tenants[i % len(tenants)], target_type="x", target_id=str(i)
        )
    before, started, sealed = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter(), 0
    while batch := audit_seal():
        sealed += batch
    after, elapsed = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    print(
        f"sealer: {sealed} events in {elapsed:.2f} s ({sealed / elapsed:,.0f} events/s), "
        f"its own CPU {cpu / sealed * 1e6:.0f} µs per event"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=4000, help="page renders to time (half recorded)")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--sweep", action="store_true", help="also run with 1, 2 and 4 writers, to show the scaling")
    parser.add_argument(
        "--per-commit", type=int, default=10, help="a last run where each commit records this many events (0: skip)"
    )
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--sealer-events", type=int, default=20000, help="events the sealer's own cost is timed on")
    args = parser.parse_args()
    os.environ["AUDIT_SEAL_ON_COMMIT"] = "0"  # as in production: the sealer runs apart from requests
    django_setup()
    from django.db import connection

    print(f"PostgreSQL {connection.cursor().connection.info.server_version}, {os.cpu_count()} cores")
    measure_view_cost(args.views)
    for writers in ([1, 2, 4] if args.sweep else []) + [args.writers]:
        measure_throughput(writers, args.seconds)
    measure_sealer(args.sealer_events)
    if args.per_commit:
        measure_throughput(args.writers, args.seconds, per_commit=args.per_commit)
    print(f"bench process peak RSS {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()

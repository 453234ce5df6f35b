"""Shared set-up for bench scripts: Django on the database named by DATABASE_URL (PostgreSQL)."""

import gc
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def django_setup(*, require_postgres: bool = True, migrate: bool = True):
    import django

    if require_postgres and not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL to a PostgreSQL database made for benchmarking (it will be filled).")
    django.setup()
    from django.core.management import call_command

    if migrate:
        call_command("migrate", verbosity=0, interactive=False)


def percentile(ordered: list[float], p: float) -> float:
    """The p-th percentile of sorted samples (nearest rank)."""
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(label: str, samples_ms: list[float], cpu_ms: list[float] | None = None) -> str:
    """Median, p95, p99 and max of wall times; with `cpu_ms` (time.process_time of each sample),
    the CPU time of this process too, which the other loads of a shared machine move much less."""
    ordered = sorted(samples_ms)
    line = (
        f"{label:<44} n={len(ordered):>6}  median={statistics.median(ordered):7.3f} ms  "
        f"p95={percentile(ordered, 95):7.3f} ms  p99={percentile(ordered, 99):7.3f} ms  max={ordered[-1]:8.3f} ms"
    )
    if cpu_ms:
        cpu = sorted(cpu_ms)
        line += f"  | cpu median={statistics.median(cpu):6.3f} ms  p95={percentile(cpu, 95):6.3f} ms"
    return line


def rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- data and measurement shared by the desk benches (queue_pages.py, case_page.py) ------------------

CUSTOMERS_PER_TENANT = 1000
# (type, rule, severity) in the proportions a desk sees them.
KINDS = (
    [("login", "new_device", 2)] * 6
    + [("location", "new_location", 2)] * 4
    + [
        ("suspicious", "brute_force", 3),
        ("suspicious", "credential_stuffing", 3),
        ("password", "password_change", 2),
        ("password", "password_change", 1),
        ("two_factor", "mfa_change", 3),
        ("recovery", "recovery", 2),
        ("third_party", "third_party", 2),
        ("account_takeover", "account_takeover", 4),
    ]
)


def alerts_generate(total: int, tenants: int) -> None:
    """`total` alerts over a year across `tenants` tenants (bench-000, ...; each with its default queue and a
    "Takeover and recovery" queue) and CUSTOMERS_PER_TENANT customers each, straight in SQL; about 10% active.
    Adds only what is missing, so a second run on the same database starts measuring at once."""
    from django.db import connection

    from accounts.models import Tenant
    from accounts.services import tenant_create
    from alerts.models import Alert
    from desk.services import queue_create

    have = Alert.objects.count()
    if have >= total:
        print(f"{have:,} alerts already there")
        return
    started = time.perf_counter()
    for i in range(tenants):
        slug = f"bench-{i:03d}"
        if not Tenant.objects.filter(slug=slug).exists():
            tenant = tenant_create(slug=slug, name=f"Bench tenant {i}")  # with its default queue
            queue_create(
                tenant=tenant, slug="takeover", name="Takeover and recovery",
                alert_types=["account_takeover", "recovery"], min_severity=3,
            )  # fmt: skip
    tenant_ids = list(Tenant.objects.filter(slug__startswith="bench-").order_by("pk").values_list("pk", flat=True))
    kinds = {
        "types": [k[0] for k in KINDS], "rules": [k[1] for k in KINDS], "severities": [k[2] for k in KINDS],
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO alerts_customer (tenant_id, external_id, email, phone, display_name, email_masked,
                phone_masked, locale, channels, contact_digests, created_at, updated_at)
            SELECT t, 'cust-' || c, '', '', '', 'c***@e***.com', '*** *** ' || lpad((c %% 10000)::text, 4, '0'),
                   'en', '{"email": true}', '{}', now() - interval '400 days', now() - interval '400 days'
            FROM unnest(%(tenants)s::bigint[]) AS t, generate_series(1, %(per)s) AS c
            ON CONFLICT DO NOTHING
            """,
            {"tenants": tenant_ids, "per": CUSTOMERS_PER_TENANT},
        )
        chunk = 250_000
        for start in range(have, total, chunk):
            end = min(total, start + chunk)
            # Alert g: tenant g % tenants, one of the tenant's customers, raised over the past year in
            # id order; the newest ~10% are active (open, some acknowledged), the rest closed.
            cursor.execute(
                """
                WITH g AS (
                    SELECT g, (%(tenants)s::bigint[])[1 + g %% %(n_tenants)s] AS tenant_id,
                           1 + (g * 7) %% %(kinds)s AS k,
                           now() - interval '365 days' * (1 - g::float8 / %(total)s) AS raised,
                           g >= %(total)s * 0.9 AS active
                    FROM generate_series(%(start)s, %(end)s - 1) AS g
                )
                INSERT INTO alerts_alert (tenant_id, customer_id, type, rule, severity, status, reason, dedupe_key,
                    count, first_seen_at, last_seen_at, created_at, updated_at, resolution_note,
                    first_response_due_at, resolution_due_at, sla_due_at, closed_at)
                SELECT g.tenant_id, c.id,
                       (%(types)s::text[])[g.k], (%(rules)s::text[])[g.k], (%(severities)s::int[])[g.k],
                       CASE WHEN NOT g.active THEN 'resolved' WHEN g.g %% 5 = 0 THEN 'acknowledged' ELSE 'open' END,
                       'A reason of the usual length for a bench alert, in one sentence.',
                       (%(rules)s::text[])[g.k] || ':bench:' || g.g, 1, g.raised, g.raised, g.raised, g.raised, '',
                       g.raised + interval '60 minutes', g.raised + interval '480 minutes',
                       CASE WHEN g.active THEN g.raised + interval '60 minutes' END,
                       CASE WHEN NOT g.active THEN g.raised + interval '2 hours' END
                FROM g JOIN alerts_customer c
                    ON c.tenant_id = g.tenant_id AND c.external_id = 'cust-' || (1 + g.g %% %(per)s)
                """,  # noqa: S608 (no input: constants only)
                {
                    "total": total,
                    "tenants": tenant_ids,
                    "n_tenants": len(tenant_ids),
                    "start": start,
                    "end": end,
                    "per": CUSTOMERS_PER_TENANT,
                    "kinds": len(KINDS),
                    **kinds,
                },
            )
            print(f"  {end:,} alerts ({(end - have) / (time.perf_counter() - started):,.0f} rows/s)", flush=True)
        cursor.execute("VACUUM ANALYZE alerts_alert")
        cursor.execute("VACUUM ANALYZE alerts_customer")
        cursor.execute(
            "SELECT pg_size_pretty(pg_relation_size('alerts_alert')), pg_size_pretty(pg_indexes_size('alerts_alert'))"
        )
        table, indexes = cursor.fetchone()
    print(f"generated in {time.perf_counter() - started:.0f} s; alerts table {table}, indexes {indexes}")


class Statements:
    """The statements a request sends, as Django's query log has them (the audit record's INSERT,
    sent on a server-binding cursor of its own, included: config.bulk logs it)."""

    def __init__(self):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        self.captured = CaptureQueriesContext(connection)

    def __enter__(self):
        # On an emptied log: Django's keeps the last 9,000 statements, and once full, a capture's
        # count (the log's length after minus before) would be 0 however many were sent.
        self.captured.connection.queries_log.clear()
        self.captured.__enter__()
        return self

    def __exit__(self, *exc):
        self.captured.__exit__(*exc)

    def __len__(self):
        return len(self.captured)

    def listing(self) -> str:
        return "\n".join(f"  {i:2}. {q['sql'][:160]}" for i, q in enumerate(self.captured.captured_queries, 1))


def timed(client, method: str, url: str, repeat: int, *, cpu: list | None = None, **params):
    """`repeat` requests: their server times in ms, the statements of the last, its response. `cpu`, when
    given, receives each request's CPU time in ms (time.process_time: this process only, so the
    database's share is not in it; less sensitive to a loaded machine than wall time)."""
    times, queries, response = [], 0, None
    gc.collect()
    for _ in range(repeat):
        with Statements() as captured:
            started, started_cpu = time.perf_counter(), time.process_time()
            response = getattr(client, method)(url, params)
            times.append((time.perf_counter() - started) * 1000)
            if cpu is not None:
                cpu.append((time.process_time() - started_cpu) * 1000)
        queries = len(captured)
    return times, queries, response

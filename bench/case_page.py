"""The case workspace at size: server time of the case page and of the case API (PostgreSQL).

Generates the queue bench's data (bench/_setup.alerts_generate: --alerts alerts, default 1,000,000,
over --tenants tenants, default 100, with 1,000 customers each), then --cases cases (default
100,000; one per customer, about 10% open), straight in SQL: each with the customer's two latest
alerts, two of their account events, its opening in the audit trail and three recorded views of it,
a note, a verification, a playbook check, and for some a reveal (1 in 2), an account action (1 in 5)
and a security concern (1 in 10). One open case of the agent's queue gets a long history: --long
timeline entries (default 2,000: account events, alerts, notes, reveals, audit-trail changes and
concerns), with as many verifications and account actions as the page lists, and 5,000 recorded
views of it in the audit trail.

Then, as an agent granted that tenant's default queue and as the tenant's supervisor, it asks
through the whole middleware stack (session, MFA wall, the audit record of what was shown included):
- the case page (HTML) of the long case, first view, and 20 timeline pages deep (following "Older");
- the case page of an ordinary case (a handful of entries);
- the case API's detail of the long case.
It prints median, p95 and p99 server time, the median and p95 CPU time of this process per request
(time.process_time: the database's share is not in it, and other sessions' load moves it less), and
the number of statements each request sent, the audit record's INSERT included (see
bench/_setup.Statements).

`--queries` prints the statements of the agent's long-case page; `--explain` runs EXPLAIN ANALYZE on
each of them; `--profile page|deep|api` runs that request under cProfile.

Target (issue 11): case page p95 under 30 ms with audit on, at 1,000,000 alerts and 100,000 cases,
with a statement count that does not grow with the case's history.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_case_1m .venv/bin/python bench/case_page.py
"""

import argparse
import cProfile
import os
import pstats
import re
import statistics
import time
from html import unescape

from _setup import Statements, alerts_generate, django_setup, summary, timed

LONG_CASE_VIEWS = 5000


def _users(tenant):
    from accounts.models import Role, User
    from accounts.testing import make_staff

    agent = User.objects.filter(username="bench-agent").first() or make_staff(
        "bench-agent", role=Role.AGENT, tenants=[tenant], default_queue=True
    )
    supervisor = User.objects.filter(username="bench-supervisor").first() or make_staff(
        "bench-supervisor", role=Role.SUPERVISOR, tenants=[tenant]
    )
    return agent, supervisor


def _bench_tenant(tenants: int):
    from accounts.models import Tenant

    return Tenant.objects.get(slug="bench-007" if tenants > 7 else "bench-000")


# Where a step of cases_generate leaves rows, when it is not a table with a case_id (see there).
_LAST_CASE = "target_type = 'desk.case' AND target_id = (SELECT max(id)::text FROM desk_case) AND action = "
GUARDS = {
    "account events": ("alerts_accountevent", "external_id LIKE 'bench-ev-%%'"),
    "audit: opened": ("audit_auditevent", _LAST_CASE + "'create'"),
    "audit: views": ("audit_auditevent", _LAST_CASE + "'view'"),
    "alerts of their own": ("desk_case", "false"),  # always: it fills only the cases still without alerts
}


def cases_generate(total: int, long_entries: int, tenants: int) -> None:
    from django.db import connection

    from desk.models import Case

    bench = Case.objects.filter(tenant__slug__startswith="bench-")
    if bench.filter(notes__isnull=False).count() >= total + 1:  # the long case has many notes: done
        print(f"{bench.count():,} cases already there")
        return
    started = time.perf_counter()
    tenant = _bench_tenant(tenants)
    agent, supervisor = _users(tenant)
    have = bench.count()
    with connection.cursor() as cursor:
        # One case per customer (the lowest ids first); 1 in 10 open, the others resolved.
        cursor.execute(  # noqa: S608 (constants only)
            """
            INSERT INTO desk_case (tenant_id, customer_id, queue_id, status, outcome, severity, opened_via,
                opened_at, updated_at, closed_at, first_response_due_at, resolution_due_at, sla_due_at,
                verification_method, resolution_note)
            SELECT c.tenant_id, c.id, q.id,
                   CASE WHEN c.id %% 10 = 0 THEN 'open' ELSE 'resolved' END,
                   CASE WHEN c.id %% 10 = 0 THEN '' ELSE 'false_positive' END,
                   2, 'alert', o.at, o.at, CASE WHEN c.id %% 10 = 0 THEN NULL ELSE o.at + interval '1 hour' END,
                   o.at + interval '60 minutes', o.at + interval '480 minutes',
                   CASE WHEN c.id %% 10 = 0 THEN o.at + interval '480 minutes' END, '', ''
            FROM (SELECT id, tenant_id FROM alerts_customer WHERE external_id LIKE 'cust-%%'
                  AND NOT EXISTS (SELECT 1 FROM desk_case k WHERE k.customer_id = alerts_customer.id)
                  ORDER BY id LIMIT %(n)s) c
            JOIN desk_queue q ON q.tenant_id = c.tenant_id AND q.is_default
            CROSS JOIN LATERAL (SELECT now() - interval '1 day' * (c.id %% 300) - interval '3 hours' AS at) o
            """,
            {"n": max(0, total - have)},
        )
        cursor.execute("ANALYZE desk_case")
        print(f"  cases ({time.perf_counter() - started:.0f} s)", flush=True)
        # Each step below is skipped when it has rows already: a run cut short carries on where it stopped.
        since = (bench.order_by("id").values_list("id", flat=True).first() or 1) - 1
        new = "k.id > %(since)s"
        params = {"agent": agent.pk, "since": since}
        statements = {
            "case alerts": """
                INSERT INTO desk_casealert (case_id, alert_id, added_at, alert_seen_at)
                SELECT k.id, a.id, k.opened_at, a.first_seen_at FROM desk_case k
                CROSS JOIN LATERAL (SELECT id, first_seen_at FROM alerts_alert WHERE customer_id = k.customer_id
                                    ORDER BY created_at DESC LIMIT 2) a WHERE {new}""",
            "alerts of their own": """
                WITH need AS (
                    SELECT k.id, k.tenant_id, k.customer_id, k.opened_at FROM desk_case k
                    WHERE {new} AND NOT EXISTS (SELECT 1 FROM desk_casealert ca WHERE ca.case_id = k.id)),
                made AS (
                    INSERT INTO alerts_alert (tenant_id, customer_id, type, rule, severity, status, reason,
                        dedupe_key, count, first_seen_at, last_seen_at, created_at, updated_at, resolution_note,
                        first_response_due_at, resolution_due_at, closed_at)
                    SELECT need.tenant_id, need.customer_id, 'login', 'new_device', 2, 'resolved',
                           'A login from a device never seen on the account.',
                           'new_device:case:' || need.id || ':' || g,
                           1, t, t, t, t, '', t, t, t + interval '1 day'
                    FROM need, generate_series(1, 2) g, LATERAL (SELECT need.opened_at - interval '1 hour' * g AS t) x
                    RETURNING id, customer_id, first_seen_at)
                INSERT INTO desk_casealert (case_id, alert_id, added_at, alert_seen_at)
                SELECT k.id, made.id, made.first_seen_at, made.first_seen_at
                FROM made JOIN desk_case k ON k.customer_id = made.customer_id
                WHERE {new}""",
            "account events": """
                INSERT INTO alerts_accountevent (tenant_id, customer_id, external_id, type, occurred_at, received_at,
                    context, processed_at)
                SELECT k.tenant_id, k.customer_id, 'bench-ev-' || k.id || '-' || g, 'login.succeeded',
                       k.opened_at - interval '1 hour' * g, k.opened_at, '{{"method": "password"}}', k.opened_at
                FROM desk_case k, generate_series(1, 2) g WHERE {new}""",
            "audit: opened": """
                INSERT INTO audit_auditevent (occurred_at, tenant_id, actor_id, actor_label, actor_role, action, origin,
                    target_type, target_id, target_label, changes, reason, metadata, request_id, user_agent)
                SELECT k.opened_at, k.tenant_id, %(agent)s, 'bench-agent', 'agent', 'create', 'web', 'desk.case',
                       k.id::text, 'customer #' || k.customer_id,
                       '{{"opened_via": {{"before": null, "after": "alert"}}}}', '', '{{"event": "opened"}}', '', ''
                FROM desk_case k WHERE {new}""",
            "audit: views": """
                INSERT INTO audit_auditevent (occurred_at, tenant_id, actor_id, actor_label, actor_role, action, origin,
                    target_type, target_id, target_label, changes, reason, metadata, request_id, user_agent)
                SELECT k.opened_at + interval '1 minute' * g, k.tenant_id, %(agent)s, 'bench-agent', 'agent', 'view',
                       'web', 'desk.case', k.id::text, 'customer #' || k.customer_id, '{{}}', '', '{{}}', '', ''
                FROM desk_case k, generate_series(1, 3) g WHERE {new}""",
            "notes": """
                INSERT INTO desk_casenote (case_id, author_id, body, created_at)
                SELECT k.id, %(agent)s, 'Called the customer back on the number on file; they confirm the login.',
                       k.opened_at + interval '5 minutes' FROM desk_case k WHERE {new}""",
            "verifications": """
                INSERT INTO desk_verification (tenant_id, case_id, customer_id, method, channel, recipient_masked,
                    code_hash, strength, attempts, state, requested_by_id, created_at, expires_at, verified_at,
                    valid_until, note)
                SELECT k.tenant_id, k.id, k.customer_id, 'otp', 'sms', '*** *** 1234', 'salt$hash', 'strong', 0,
                       'verified', %(agent)s, k.opened_at + interval '2 minutes', k.opened_at + interval '12 minutes',
                       k.opened_at + interval '3 minutes', k.opened_at + interval '33 minutes', ''
                FROM desk_case k WHERE {new}""",
            "playbook checks": """
                INSERT INTO desk_playbookcheck (case_id, alert_type, step_key, step_text, checked_by_id, checked_at)
                SELECT k.id, 'login', 'caller_verified', 'Verify the caller with a code to a channel on file.',
                       %(agent)s, k.opened_at + interval '4 minutes' FROM desk_case k WHERE {new}""",
            "reveals": """
                INSERT INTO desk_casereveal (case_id, actor_id, field, reason_code, reason_text, created_at, expires_at)
                SELECT k.id, %(agent)s, 'email', 'confirm_with_customer', 'The customer asked which address we use.',
                       k.opened_at + interval '6 minutes', k.opened_at + interval '11 minutes'
                FROM desk_case k WHERE {new} AND k.id %% 2 = 0""",
            "account actions": """
                INSERT INTO desk_accountaction (uuid, tenant_id, case_id, customer_id, action, params, state,
                    requested_by_id, requested_via, requested_at, verification_method, needs, approval_reason,
                    attempts, error, sent_at, confirmed_at, updated_at)
                SELECT gen_random_uuid(), k.tenant_id, k.id, k.customer_id, 'lock', '{{}}', 'confirmed',
                       %(agent)s, 'agent',
                       k.opened_at + interval '7 minutes', 'otp_sms', '', '', 1, '',
                       k.opened_at + interval '7 minutes', k.opened_at + interval '8 minutes',
                       k.opened_at + interval '8 minutes'
                FROM desk_case k WHERE {new} AND k.id %% 5 = 0""",
            "concerns": """
                INSERT INTO desk_securityconcern (tenant_id, case_id, raised_by_id, kind, note, created_at, status,
                    review_note)
                SELECT k.tenant_id, k.id, %(agent)s, 'social_engineering', 'The caller pushed for a code.',
                       k.opened_at + interval '9 minutes', 'reviewed', ''
                FROM desk_case k WHERE {new} AND k.id %% 10 = 0""",
        }
        for label, sql in statements.items():
            table, where = GUARDS.get(label, (None, ""))
            if table is None:
                table = sql.split("INSERT INTO ")[1].split()[0]
                cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE case_id > %(since)s)", params)
            else:
                cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {where})", params)
            if cursor.fetchone()[0]:
                print(f"  {label}: there already")
                continue
            cursor.execute(sql.format(new=new), params)
            print(f"  {label}: {cursor.rowcount:,} ({time.perf_counter() - started:.0f} s)", flush=True)
        _long_history(cursor, tenant=tenant, agent=agent, entries=long_entries)
        for table in (
            "desk_case", "desk_casealert", "alerts_accountevent", "audit_auditevent", "desk_casenote",
            "desk_verification", "desk_playbookcheck", "desk_casereveal", "desk_accountaction", "desk_securityconcern",
        ):  # fmt: skip
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"cases generated in {time.perf_counter() - started:.0f} s")


def _long_history(cursor, *, tenant, agent, entries: int) -> None:
    """The newest open case of the agent's queue gets `entries` more timeline entries, spread over the
    past 30 days in the proportions of a long-running case, and LONG_CASE_VIEWS recorded views."""
    from desk.models import Case

    case = Case.objects.filter(tenant=tenant, queue__is_default=True, status="open").order_by("-id").first()
    share = {"event": 0.25, "note": 0.25, "reveal": 0.15, "change": 0.15, "concern": 0.15, "alert": 0.05}
    n = {kind: max(1, int(entries * part)) for kind, part in share.items()}
    p = {"case": case.pk, "customer": case.customer_id, "tenant": tenant.pk, "agent": agent.pk, **n}
    spread = "now() - interval '30 days' * (g::float8 / {count})"
    cursor.execute(
        f"""
        WITH new AS (
            INSERT INTO alerts_alert (tenant_id, customer_id, type, rule, severity, status, reason, dedupe_key, count,
                first_seen_at, last_seen_at, created_at, updated_at, resolution_note, first_response_due_at,
                resolution_due_at, closed_at)
            SELECT %(tenant)s, %(customer)s, 'login', 'new_device', 2, 'resolved', 'A login from a new device.',
                   'new_device:long:' || g, 1, t, t, t, t, '', t, t, t
            FROM generate_series(1, %(alert)s) g, LATERAL (SELECT {spread.format(count="%(alert)s")} AS t) x
            RETURNING id, first_seen_at)
        INSERT INTO desk_casealert (case_id, alert_id, added_at, alert_seen_at)
        SELECT %(case)s, id, first_seen_at, first_seen_at FROM new
        """,  # noqa: S608 (constants only)
        p,
    )
    batch = {
        "event": """
            INSERT INTO alerts_accountevent (tenant_id, customer_id, external_id, type, occurred_at, received_at,
                context, processed_at)
            SELECT %(tenant)s, %(customer)s, 'bench-long-' || g, 'login.succeeded', {t}, {t},
                   ('{{"method": "password", "device_id": "d' || (g %% 7) || '"}}')::jsonb, {t}
            FROM generate_series(1, %(event)s) g""",
        "note": """
            INSERT INTO desk_casenote (case_id, author_id, body, created_at)
            SELECT %(case)s, %(agent)s, 'Note ' || g || ': the customer called again about the same login.', {t}
            FROM generate_series(1, %(note)s) g""",
        "reveal": """
            INSERT INTO desk_casereveal (case_id, actor_id, field, reason_code, reason_text, created_at, expires_at)
            SELECT %(case)s, %(agent)s, 'phone', 'secure_account', 'Confirm the number the code goes to.', {t},
                   {t} + interval '5 minutes'
            FROM generate_series(1, %(reveal)s) g""",
        "change": """
            INSERT INTO audit_auditevent (occurred_at, tenant_id, actor_id, actor_label, actor_role, action, origin,
                target_type, target_id, target_label, changes, reason, metadata, request_id, user_agent)
            SELECT {t}, %(tenant)s, %(agent)s, 'bench-agent', 'agent', 'update', 'web', 'desk.case', %(case)s::text,
                   'customer #' || %(customer)s,
                   '{{"status": {{"before": "open", "after": "waiting_on_customer"}}}}', '',
                   '{{"event": "status"}}', '', ''
            FROM generate_series(1, %(change)s) g""",
        "concern": """
            INSERT INTO desk_securityconcern (tenant_id, case_id, raised_by_id, kind, note, created_at, status,
                review_note)
            SELECT %(tenant)s, %(case)s, %(agent)s, 'phishing', 'Another caller asked for the code.', {t},
                   'reviewed', ''
            FROM generate_series(1, %(concern)s) g""",
        "verifications (not on the timeline)": """
            INSERT INTO desk_verification (tenant_id, case_id, customer_id, method, channel, recipient_masked,
                code_hash, strength, attempts, state, requested_by_id, created_at, expires_at, note)
            SELECT %(tenant)s, %(case)s, %(customer)s, 'otp', 'sms', '*** *** 1234', 'salt$hash', 'strong', 1,
                   'expired', %(agent)s, {t}, {t} + interval '10 minutes', ''
            FROM generate_series(1, %(note)s) g""",
        "account actions (not on the timeline)": """
            INSERT INTO desk_accountaction (uuid, tenant_id, case_id, customer_id, action, params, state,
                requested_by_id, requested_via, requested_at, verification_method, needs, approval_reason,
                attempts, error, updated_at)
            SELECT gen_random_uuid(), %(tenant)s, %(case)s, %(customer)s, 'revoke_sessions', '{{}}', 'failed',
                   %(agent)s, 'agent', {t}, 'otp_sms', '', '', 5, 'http_500', {t}
            FROM generate_series(1, %(reveal)s) g""",
        "views": f"""
            INSERT INTO audit_auditevent (occurred_at, tenant_id, actor_id, actor_label, actor_role, action, origin,
                target_type, target_id, target_label, changes, reason, metadata, request_id, user_agent)
            SELECT {{t}}, %(tenant)s, %(agent)s, 'bench-agent', 'agent', 'view', 'web', 'desk.case', %(case)s::text,
                   'customer #' || %(customer)s, '{{{{}}}}', '', '{{{{}}}}', '', ''
            FROM generate_series(1, {LONG_CASE_VIEWS}) g""",
    }
    counts = {
        "event": n["event"], "note": n["note"], "reveal": n["reveal"], "change": n["change"],
        "concern": n["concern"], "verifications (not on the timeline)": n["note"],
        "account actions (not on the timeline)": n["reveal"], "views": LONG_CASE_VIEWS,
    }  # fmt: skip
    for label, sql in batch.items():
        cursor.execute(sql.format(t=spread.format(count=counts[label])), p)
    print(f"  long case #{case.pk}: {sum(n.values()):,} more timeline entries ({n})", flush=True)


def long_case():
    """The case with the longest history (the one _long_history filled)."""
    from django.db.models import Count

    from desk.models import Case

    return Case.objects.filter(tenant__slug__startswith="bench-").annotate(n=Count("notes")).order_by("-n").first()


def _older_link(response) -> str | None:
    match = re.search(r'href="([^"]+)" data-testid="timeline-older"', response.content.decode())
    return unescape(match[1]) if match else None


def _cpu(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"  cpu median={statistics.median(ordered):6.2f} ms p95={p95:6.2f} ms"


def _measure(client, label: str, url: str, repeat: int) -> None:
    cpu: list[float] = []
    times, n, response = timed(client, "get", url, repeat, cpu=cpu)
    assert response.status_code == 200, (url, response.status_code)
    print(summary(f"{label} [{n} q]", times) + _cpu(cpu), flush=True)


def _explain(captured: Statements) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for query in captured.captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) " + sql)
            plan = "\n    ".join(row[0] for row in cursor.fetchall())
            print(f"\n{sql[:300]}\n    {plan}")


def measure(repeat: int, tenants: int, *, queries: bool = False, explain: bool = False, profile: str = "") -> None:
    from desk.models import Case

    tenant = _bench_tenant(tenants)
    agent, supervisor = _users(tenant)
    case = long_case()
    ordinary = Case.objects.filter(tenant=tenant, queue__is_default=True, status="open").exclude(pk=case.pk).first()
    print(
        f"{Case.objects.count():,} cases; long case #{case.pk}, ordinary case #{ordinary.pk} "
        f"(tenant {tenant.slug}, queue {case.queue_id})"
    )
    page, api = f"/cases/{case.pk}/", f"/api/v1/cases/{case.pk}/"
    for who, user in (("agent", agent), ("supervisor", supervisor)):
        from accounts.testing import verified_client

        client = verified_client(user)
        deep, depth = page, 0
        while depth < 20 and (older := _older_link(client.get(deep))):
            deep, depth = older, depth + 1
        if profile:
            url = {"page": page, "deep": deep, "api": api}[profile]
            for _ in range(5):
                client.get(url)
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(repeat):
                client.get(url)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
            return
        _measure(client, f"{who}: case page, long case", page, repeat)
        _measure(client, f"{who}: case page, {depth} timeline pages deep", deep, repeat)
        _measure(client, f"{who}: case page, ordinary case", f"/cases/{ordinary.pk}/", repeat)
        _measure(client, f"{who}: case API detail, long case", api, repeat)
        if (queries or explain) and who == "agent":
            for url in (page, deep):
                with Statements() as captured:
                    client.get(url)
                print(f"{url}: {len(captured)} statements\n{captured.listing()}")
                if explain:
                    _explain(captured)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--long", type=int, default=2000, help="timeline entries of the long case")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--queries", action="store_true", help="print the statements of the agent's long-case pages")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each of them")
    parser.add_argument("--profile", choices=["page", "deep", "api"], help="profile the agent's request")
    args = parser.parse_args()
    os.environ["AUDIT_SEAL_ON_COMMIT"] = "0"
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
    django_setup()
    alerts_generate(args.alerts, args.tenants)
    cases_generate(args.cases, args.long, args.tenants)
    measure(args.repeat, args.tenants, queries=args.queries, explain=args.explain, profile=args.profile or "")


if __name__ == "__main__":
    main()

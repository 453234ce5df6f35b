"""Audit review screens at size: server time of filtered pages with millions of events (PostgreSQL).

Generates --events events (default 10 million) over a year, across 100 tenants and 1,000 staff,
straight in SQL, then asks the review screen (the real view, through the whole middleware
stack, its own view record included) for filtered pages, as a supervisor of one tenant and as a
BPO admin. Target: every filtered page under 100 ms.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/alertdesk_bench .venv/bin/python bench/audit_pages.py
"""

import argparse
import os
import time

from _setup import django_setup, summary

ACTIONS = ["view"] * 12 + ["list"] * 5 + ["update"] * 2 + ["create", "login"]  # ~ what a desk records


def generate(total: int) -> None:
    from django.contrib.auth.hashers import make_password
    from django.db import connection

    from accounts.models import Membership, Role, Tenant, User
    from audit.models import AuditEvent

    have = AuditEvent.objects.count()
    if have >= total:
        print(f"{have:,} events already there")
        return
    tenants = [Tenant(slug=f"bench-{i:03d}", name=f"Bench tenant {i}") for i in range(100)]
    Tenant.objects.bulk_create(tenants, ignore_conflicts=True)
    tenant_ids = list(Tenant.objects.filter(slug__startswith="bench-").order_by("pk").values_list("pk", flat=True))
    unusable = make_password(None)
    User.objects.bulk_create(
        [User(username=f"staff{i:04d}", password=unusable) for i in range(1000)], ignore_conflicts=True
    )
    staff = list(User.objects.filter(username__startswith="staff").order_by("pk").values_list("pk", flat=True))
    Membership.objects.bulk_create(
        [Membership(user_id=uid, tenant_id=tenant_ids[i % 100], role=Role.AGENT) for i, uid in enumerate(staff)],
        ignore_conflicts=True,
    )
    actions = "ARRAY[" + ",".join(f"'{a}'" for a in ACTIONS) + "]"
    chunk = 1_000_000
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for start in range(have, total, chunk):
            end = min(total, start + chunk)
            # Rare events sprinkled in: a failed sign-in every 997th row, an export every 4,999th.
            cursor.execute(
                f"""
                INSERT INTO audit_auditevent (occurred_at, tenant_id, actor_id, actor_label, actor_role, action, origin,
                    target_type, target_id, target_label, changes, reason, metadata, request_id, ip, user_agent)
                SELECT now() - interval '365 days' * (1 - g::float8 / %(total)s),
                       (%(tenants)s::bigint[])[1 + g %% 100],
                       (%(staff)s::bigint[])[1 + (g / 7) %% 1000],
                       'staff' || lpad(((g / 7) %% 1000)::text, 4, '0'), 'agent',
                       CASE WHEN g %% 4999 = 0 THEN 'export' WHEN g %% 997 = 0 THEN 'login_failed'
                            ELSE ({actions})[1 + (g / 3) %% {len(ACTIONS)}] END,
                       'web', 'desk.case', (g %% 300000)::text, 'Case ' || (g %% 300000), '{{}}', '',
                       '{{}}', md5(g::text), ('10.20.' || (g %% 250) || '.' || (g %% 200))::inet, 'Mozilla/5.0 (bench)'
                FROM generate_series(%(start)s, %(end)s - 1) AS g
                """,  # noqa: S608 (no input: constants and a generated array literal)
                {"total": total, "tenants": tenant_ids, "staff": staff, "start": start, "end": end},
            )
            print(f"  {end:,} events ({(end - have) / (time.perf_counter() - started):,.0f} rows/s)", flush=True)
        cursor.execute("VACUUM ANALYZE audit_auditevent")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_size_pretty(pg_relation_size('audit_auditevent')),"
            " pg_size_pretty(pg_indexes_size('audit_auditevent'))"
        )
        table, indexes = cursor.fetchone()
    print(f"generated in {time.perf_counter() - started:.0f} s; table {table}, indexes {indexes}")


def scenarios():
    from accounts.models import Tenant
    from audit.models import AuditEvent

    tenant = Tenant.objects.get(slug="bench-007")
    newest = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    middle = newest // 2
    return tenant, [
        ("first page", {}),
        ("deep page (keyset, half-way back)", {"before": middle}),
        ("action=update", {"action": "update"}),
        ("rare action=export", {"action": "export"}),
        ("one object's history", {"target_type": "desk.case", "target_id": "123457"}),
        ("one staff member's activity", {"actor": "staff0007"}),
        ("a week, six months ago", {"date_from": "2026-05-01", "date_to": "2026-05-07"}),
        (
            "a week six months ago + action=update",
            {"date_from": "2026-05-01", "date_to": "2026-05-07", "action": "update"},
        ),
    ]


def measure(repeat: int) -> None:
    from django.test import Client

    from accounts.models import Role, User
    from accounts.services import membership_set
    from accounts.testing import make_staff, verified_client

    tenant, cases = scenarios()
    supervisor = User.objects.filter(username="bench-supervisor").first()
    if supervisor is None:
        supervisor = make_staff("bench-supervisor", role=Role.SUPERVISOR, tenants=[tenant])
    membership_set(user=supervisor, tenant=tenant, role=Role.SUPERVISOR)
    admin = User.objects.filter(username="bench-bpo-admin").first() or make_staff("bench-bpo-admin", bpo_admin=True)
    for who, user in (("supervisor, 1 tenant", supervisor), ("BPO admin, all", admin)):
        client: Client = verified_client(user)
        for label, params in cases:
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                response = client.get("/audit/", params)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (label, response.status_code)
            rows = len(response.context["events"])
            print(summary(f"{who}: {label} [{rows} rows]", times))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    os.environ["AUDIT_SEAL_ON_COMMIT"] = "0"
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
    django_setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's response.context
    generate(args.events)
    measure(args.repeat)


if __name__ == "__main__":
    main()

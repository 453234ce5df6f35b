"""The desk's queue at size: server time of a queue's pages and of the alert page (PostgreSQL).

Generates --alerts alerts (default 1,000,000) over a year across --tenants tenants (default 100),
about 10% of them active, with 1,000 customers per tenant and two queues per tenant (its default
queue and a "Takeover and recovery" queue: 200 queues), straight in SQL. Then, as an agent granted
one tenant's default queue and as that tenant's supervisor, it asks through the whole middleware
stack (session, MFA wall, audit record of what was shown included):
- the queue API's first page of active alerts in queue order, and the page 20 pages deep;
- the queue page (the desk's HTML), first page and 20 pages deep (following its "Older" links);
- the alert page of an active alert.
It prints median, p95 and p99 server time and the number of statements each request sent: the
queries Django saw, plus the audit record's INSERT (sent on the driver's own cursor, which Django's
query log does not see).

With 100 tenants a queue holds about 900 active alerts at 1,000,000 (18 pages of 50) but only 9 at
10,000: to compare equal pages at 10,000, give it one tenant (`--tenants 1`: about 900 active
alerts in the queue, as at 1,000,000 across 100).

`--queries` prints the statements of the queue page and the alert page; `--profile queue|alert`
runs that page under cProfile and prints where the time goes.

Targets (issue 9): queue page p95 under 25 ms with at most 8 queries, flat from 10,000 to
1,000,000 alerts, the same 20 pages deep; alert page p95 under 20 ms. Run it at two sizes on two
databases to see the flatness:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_queue_10k .venv/bin/python bench/queue_pages.py \
        --alerts 10000 --tenants 1
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_queue_1m .venv/bin/python bench/queue_pages.py
"""

import argparse
import cProfile
import os
import pstats
import re
from html import unescape

from _setup import Statements, alerts_generate, django_setup, summary, timed


def _older_link(response) -> str | None:
    match = re.search(r'<a href="([^"]+)" id="older-link"', response.content.decode())
    return unescape(match[1]) if match else None


def _profile(client, url: str, repeat: int) -> None:
    for _ in range(5):
        client.get(url)  # warm
    with Statements() as captured:
        client.get(url)
    print(f"{url}: {len(captured)} statements\n{captured.listing()}")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeat):
        client.get(url)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(70)


def measure(repeat: int, tenants: int, *, queries: bool = False, profile: str = "") -> None:
    from django.urls import NoReverseMatch, reverse

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
    if profile:
        page = reverse("desk:queue", args=[default.pk]) if profile == "queue" else f"/alerts/{active.pk}/"
        _profile(verified_client(agent), page, repeat)
        return
    for who, user in (("agent", agent), ("supervisor", supervisor)):
        client = verified_client(user)
        api = f"/api/v1/queues/{default.pk}/alerts/"
        times, queries, response = timed(client, "get", api, repeat)
        assert response.status_code == 200, response.status_code
        print(summary(f"{who}: queue API, first page [{queries} q]", times))
        cursor_url, depth = api, 0
        while depth < 20:  # walk up to 20 pages deep, then time that page
            following = client.get(cursor_url).json()["next"]
            if following is None:
                break
            cursor_url, depth = following.split("testserver", 1)[-1], depth + 1
        times, queries, response = timed(client, "get", cursor_url, repeat)
        assert response.status_code == 200, response.status_code
        print(summary(f"{who}: queue API, {depth} pages deep [{queries} q]", times))
        try:
            page = reverse("desk:queue", args=[default.pk])
        except NoReverseMatch:
            page = None
        if page:
            times, n, response = timed(client, "get", page, repeat)
            assert response.status_code == 200, response.status_code
            print(summary(f"{who}: queue page (HTML), first page [{n} q]", times))
            if queries and who == "agent":
                with Statements() as captured:
                    client.get(page)
                print(captured.listing())
            deep, depth = page, 0
            while depth < 20 and (older := _older_link(client.get(deep))):
                deep, depth = older, depth + 1
            times, n, response = timed(client, "get", deep, repeat)
            assert response.status_code == 200, response.status_code
            print(summary(f"{who}: queue page (HTML), {depth} pages deep [{n} q]", times))
        times, n, response = timed(client, "get", f"/alerts/{active.pk}/", repeat)
        assert response.status_code == 200, response.status_code
        print(summary(f"{who}: alert page [{n} q]", times))
        if queries and who == "agent":
            with Statements() as captured:
                client.get(f"/alerts/{active.pk}/")
            print(captured.listing())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--queries", action="store_true", help="print the statements of the agent's pages")
    parser.add_argument("--profile", choices=["queue", "alert"], help="profile the agent's queue or alert page")
    args = parser.parse_args()
    os.environ["AUDIT_SEAL_ON_COMMIT"] = "0"
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
    django_setup()
    alerts_generate(args.alerts, args.tenants)
    measure(args.repeat, args.tenants, queries=args.queries, profile=args.profile or "")


if __name__ == "__main__":
    main()

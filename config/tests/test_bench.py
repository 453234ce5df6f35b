"""Smoke runs of the bench/ scripts with tiny sizes, on the freshly migrated test database, so a
script that only runs on a developer's old database (or no longer runs at all) fails here. They
check that each script runs to the end and prints its figures, not the figures themselves."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str, timeout: float = 120) -> str:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    result = subprocess.run(  # noqa: S603 (our own scripts, fixed arguments)
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_ingest_bench_runs_on_a_fresh_database():
    out = run_bench(
        "ingest.py", "--customers", "300", "--seconds", "1", "--batch", "50", "--threads", "1", "--web", "1",
        "--concurrency", "1", "--rate", "20", "--latency-seconds", "1", "--latency-alerting", "1.0",
        "--port", str(free_port()),
    )  # fmt: skip
    assert re.search(r"sustained: [\d,]+ events accepted", out), out
    processed = re.search(r"(\d+) of (\d+) events processed", out)
    assert processed and processed[1] == processed[2] != "0", out
    alerted = re.search(r"(\d+) of (\d+) alerting events had their alert", out)
    assert alerted and alerted[1] == alerted[2] != "0", out


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_audit_write_bench_runs_on_a_fresh_database():
    out = run_bench(
        "audit_write.py", "--views", "20", "--writers", "1", "--seconds", "0.5", "--per-commit", "2",
        "--sealer-events", "50",
    )  # fmt: skip
    assert "added by recording" in out, out
    assert re.search(r"sealer: 50 events", out), out
    assert re.search(r"1 writers, 2 event\(s\) per commit", out), out


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_audit_pages_bench_runs_on_a_fresh_database():
    out = run_bench("audit_pages.py", "--events", "2000", "--repeat", "1")
    assert "generated in" in out, out
    assert out.count("median=") == 16, out  # eight filtered pages, as a supervisor and as a BPO admin


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_queue_pages_bench_runs_on_a_fresh_database():
    out = run_bench("queue_pages.py", "--alerts", "3000", "--repeat", "1")
    assert "generated in" in out, out
    assert re.search(r"tenant bench-007: 30 alerts, 3 active", out), out
    assert "agent: queue API, first page" in out and "supervisor: alert page" in out, out


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_case_page_bench_runs_on_a_fresh_database():
    out = run_bench("case_page.py", "--alerts", "3000", "--tenants", "2", "--cases", "300", "--long", "120",
                    "--repeat", "1", timeout=300)  # fmt: skip
    assert "cases generated in" in out, out
    assert re.search(r"long case #\d+: 120 more timeline entries", out), out
    assert out.count("cpu median=") == 8, out  # four requests, as an agent and as a supervisor
    assert re.search(r"agent: case page, [1-9]\d* timeline pages deep", out), out


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_live_bench_runs_on_a_fresh_database():
    out = run_bench("live.py", "--smoke", "--port", str(free_port()), timeout=180)
    assert re.search(r"6 sockets across 2 tenants on 1 daphne processes: open in [\d.]+ s, 0 failed", out), out
    linked = re.search(r"(\d+) of (\d+) alerting events linked to an alert", out)
    assert linked and linked[1] == linked[2] != "0", out
    assert "never reached a screen: 0 pairs" in out, out
    assert re.search(r"reconnect storm 1: 6 sockets again in [\d.]+ s, 0 errors", out), out


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_event_post_bench_runs_on_a_fresh_database():
    out = run_bench("event_post.py", "--smoke", "--compare", "--port", str(free_port()), timeout=240)
    for handler in ("django", "project"):
        assert re.search(rf"{handler} handler: 202 latency +n= +20 .*daphne CPU [\d.]+ ms/request", out), out
    assert re.search(r"Django's handler / the project's: [\d.]+x", out), out


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_notifications_bench_runs_on_a_fresh_database():
    out = run_bench("notifications.py", "--smoke", timeout=300)
    sent = re.search(r"exactly once: ([\d,]+) outbox messages for ([\d,]+) rows", out)
    assert sent and sent[1] == sent[2] != "0", out
    handed = re.search(r"(\d+) of (\d+) alerts had a message handed", out)
    assert handed and handed[1] == handed[2] != "0", out
    assert "profile: one task of 100 messages" in out, out


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_detection_cpu_bench_runs_on_a_fresh_database():
    out = run_bench("detection_cpu.py", "--smoke", "--profile", "5")
    assert re.search(r"chunks of    1: 20 alerting events, CPU +[\d.]+ ms/event", out), out
    assert re.search(r"one-event tasks, claiming: 20 alerting events", out), out
    assert "5 one-event calls, by cumulative" in out, out

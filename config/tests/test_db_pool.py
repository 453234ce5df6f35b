"""Under ASGI (daphne) each request borrows a pooled PostgreSQL connection instead of opening one.

Each HTTP request runs its view on a thread of its own there, so without a pool every request
opened a connection (and PostgreSQL forked a backend for it) and closed it at its end. The test
serves /readyz (one SELECT) from a real daphne process on the test database, 30 times, and counts
the sessions PostgreSQL established meanwhile (pg_stat_database.sessions): with the pool
(config.asgi's default) at most the pool's size, without it (DATABASE_POOL_MAX=0) one per request.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

pytestmark = [pytest.mark.services, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # not the transaction's cached figures
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our own server)
        return response.status


def _sessions_opened_by_daphne(pool_max: str) -> tuple[int, list[int]]:
    db = connection.settings_dict
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DATABASE_POOL_MAX": pool_max,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:  # /healthz touches no database
            try:
                _get(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        before = _sessions()
        codes = [_get(f"http://127.0.0.1:{port}/readyz") for _ in range(REQUESTS)]
        # A closed backend reports its session as it exits: give the last ones a moment.
        deadline, opened = time.monotonic() + 5, _sessions() - before
        while opened < REQUESTS and time.monotonic() < deadline:
            time.sleep(0.2)
            opened = _sessions() - before
        return opened, codes
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_daphne_requests_share_pooled_connections():
    opened, codes = _sessions_opened_by_daphne("10")
    assert codes == [200] * REQUESTS
    assert opened <= 10, opened


def test_without_the_pool_each_request_opens_a_connection():
    """The measure above can fail: without the pool, the same requests open one session each."""
    opened, codes = _sessions_opened_by_daphne("0")
    assert codes == [200] * REQUESTS
    assert opened >= REQUESTS, opened

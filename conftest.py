"""Shared fixtures: two tenants, one user per role, and clients with a passed OTP step.

Tests marked `services` need PostgreSQL and Redis (DATABASE_URL and REDIS_URL). Without them they
are skipped with a reason; with REQUIRE_SERVICES=1 (as CI sets on its PostgreSQL run) a skip is a
failure instead, so a misconfigured run cannot pass by skipping.
"""

import os

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client

from accounts import services
from accounts.models import Role
from accounts.testing import TEST_PASSWORD, make_staff, totp_code_for, verified_client
from audit.testing import allow_test_flush

__all__ = ["TEST_PASSWORD", "make_staff", "totp_code_for", "verified_client"]


def services_missing_reason() -> str | None:
    if connection.vendor != "postgresql":
        return "needs PostgreSQL: set DATABASE_URL"
    if not settings.REDIS_URL:
        return "needs Redis: set REDIS_URL"
    return None


@pytest.fixture(scope="session", autouse=True)
def _audit_tables_flushable():
    allow_test_flush()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty in-process cache: rate-limit windows are keyed by tenant id
    and second, and SQLite gives a rolled-back test's ids out again. (Redis is shared with the
    channel layer and a live worker, and PostgreSQL never reuses ids: it is left alone.)"""
    if "LocMemCache" in settings.CACHES["default"]["BACKEND"]:
        cache.clear()


@pytest.fixture(autouse=True)
def _require_services(request):
    if request.node.get_closest_marker("services") is None:
        return
    reason = services_missing_reason()
    if reason is None:
        return
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"REQUIRE_SERVICES=1 but this test {reason}")
    pytest.skip(reason)


@pytest.fixture
def tenant_a(db):
    return services.tenant_create(slug="tenant-a", name="Tenant A")


@pytest.fixture
def tenant_b(db):
    return services.tenant_create(slug="tenant-b", name="Tenant B")


@pytest.fixture
def agent(tenant_a):
    """An agent of tenant A, granted its default queue (as add_staff grants it)."""
    return make_staff("agent", role=Role.AGENT, tenants=[tenant_a], default_queue=True)


@pytest.fixture
def supervisor(tenant_a):
    return make_staff("supervisor", role=Role.SUPERVISOR, tenants=[tenant_a])


@pytest.fixture
def tenant_admin(tenant_a):
    """An admin of tenant A (its messages, delivery settings, playbooks)."""
    return make_staff("tenant-admin", role=Role.ADMIN, tenants=[tenant_a])


@pytest.fixture
def admin_user(db):
    """A BPO-wide admin."""
    return make_staff("bpo-admin", bpo_admin=True)


@pytest.fixture
def agent_b(tenant_b):
    return make_staff("agent-b", role=Role.AGENT, tenants=[tenant_b], default_queue=True)


@pytest.fixture
def otp_client(agent):
    return verified_client(agent)


@pytest.fixture
def password_only_client(agent):
    """Logged in with the password only, as `force_login` makes: must reach nothing but the OTP step."""
    client = Client()
    client.force_login(agent)
    return client

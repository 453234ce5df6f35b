"""Fixtures for the case workspace: a customer of tenant A with contacts on file, an alert about
them in the default queue, and the case an agent opened from it; a takeover queue and a specialist
who works only that one."""

import hashlib
import hmac
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.management import call_command

from accounts.models import Role
from accounts.testing import make_staff
from alerts.models import AlertType, Severity
from alerts.tests.factories import AlertFactory, CustomerFactory
from desk.services import case_open, queue_create, queue_grant

EMAIL, PHONE, NAME = "alice@example.com", "+33612345678", "Alice Martin"


@pytest.fixture
def customer_a(tenant_a):
    return CustomerFactory(tenant=tenant_a, external_id="acct-4471", email=EMAIL, phone=PHONE, display_name=NAME)


@pytest.fixture
def alert_a(customer_a):
    """A high two-factor alert: tenant A's default queue takes it."""
    return AlertFactory(customer=customer_a)


@pytest.fixture
def case_a(alert_a, agent):
    case, _ = case_open(actor=agent, alert=alert_a)
    return case


@pytest.fixture
def takeover_queue(tenant_a):
    return queue_create(tenant=tenant_a, slug="takeover", name="Takeover", alert_types=[AlertType.ACCOUNT_TAKEOVER])


@pytest.fixture
def specialist(tenant_a, takeover_queue):
    """An agent of tenant A who works the takeover queue only."""
    user = make_staff("specialist", role=Role.AGENT, tenants=[tenant_a])
    queue_grant(queue=takeover_queue, user=user)
    return user


@pytest.fixture
def takeover_alert(tenant_a, takeover_queue):
    return AlertFactory(
        customer=CustomerFactory(tenant=tenant_a, external_id="acct-9000"), type=AlertType.ACCOUNT_TAKEOVER,
        rule="account_takeover", severity=Severity.CRITICAL,
    )  # fmt: skip


class StubTenant:
    """The client's endpoint: records what it receives, answers `status`."""

    def __init__(self):
        self.received: list[dict] = []
        self.status = 200
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stub.received.append({"headers": self.headers, "body": body})  # case-insensitive
                self.send_response(stub.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alertdesk/actions"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def signature_ok(self, request: dict, secret: str) -> bool:
        timestamp = request["headers"]["X-AlertDesk-Timestamp"]
        expected = hmac.new(secret.encode(), timestamp.encode() + b"." + request["body"], hashlib.sha256).hexdigest()
        return hmac.compare_digest(request["headers"]["X-AlertDesk-Signature"], "sha256=" + expected)


@pytest.fixture
def stub(tenant_a, capsys):
    stub = StubTenant()
    call_command("tenant_webhook", tenant_a.slug, stub.url)
    stub.secret = capsys.readouterr().out.strip().splitlines()[-1]
    yield stub
    stub.server.shutdown()

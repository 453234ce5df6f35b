"""Push receipts: a tenant whose app confirms delivery posts a signed receipt; the row becomes
delivered (or failed, and the next channel is tried), and the delivery-window fallback waits for
it. Anything unsigned, stale, signed by another tenant or about an unknown push changes nothing."""

import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta

import pytest
from django.test import Client, TestCase, override_settings
from django.urls import reverse
from django.utils import timezone

from alerts.models import Notification, NotificationSettings
from alerts.notifications import services
from alerts.notifications.models import State
from alerts.notifications.tests.helpers import account, feed, send_all
from alerts.notifications.tests.stub_server import StubServer

pytestmark = pytest.mark.django_db
SECRET = "push-secret-of-tenant-a-0123456789"
PUSH = {
    "push": "alerts.notifications.channels.WebhookPushBackend",
    "email": "alerts.notifications.channels.OutboxBackend",
    "sms": "alerts.notifications.channels.OutboxBackend",
}


@pytest.fixture
def pushed(tenant_a, no_tasks):
    """A push handed to tenant A's app (which confirms delivery); SMS and email on file too."""
    NotificationSettings.objects.create(
        tenant=tenant_a, push_webhook_url="http://127.0.0.1:1/", push_webhook_secret=SECRET, push_receipts=True
    )
    with StubServer() as stub:
        stub.answers = [(202, b"", {})]
        NotificationSettings.objects.filter(tenant=tenant_a).update(push_webhook_url=f"{stub.url}/push")
        with override_settings(NOTIFICATION_BACKENDS=PUSH, NOTIFICATION_PUBLIC_URL="https://desk.example"):
            feed(tenant_a, "password.changed", account_=account(channels={"push": True}))
            send_all()
        (request,) = stub.requests
    row = Notification.objects.get(channel="push")
    assert json.loads(request.body)["receipt_url"] == "https://desk.example/notifications/push/receipt/"
    assert (row.state, row.receipt_expected) == (State.SENT, True)
    return row


def post(body, *, secret=SECRET, stamp=None, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    stamp = str(int(time.time()) if stamp is None else stamp)
    signature = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + data, hashlib.sha256).hexdigest()
    return Client().post(
        reverse("alerts:push_receipt"),
        data,
        content_type="application/json",
        headers={"X-AlertDesk-Timestamp": stamp, "X-AlertDesk-Signature": signature},
    )


def test_a_signed_receipt_marks_the_push_delivered_and_a_repeat_changes_nothing(pushed):
    assert post({"idempotency_key": str(pushed.idempotency_key), "state": "delivered"}).status_code == 204
    pushed.refresh_from_db()
    assert pushed.state == State.DELIVERED and pushed.delivered_at is not None
    first = pushed.delivered_at
    assert post({"idempotency_key": str(pushed.idempotency_key), "state": "failed"}).status_code == 204
    pushed.refresh_from_db()
    assert (pushed.state, pushed.delivered_at) == (State.DELIVERED, first)
    assert not Notification.objects.filter(fallback_of=pushed).exists()


def test_a_failed_receipt_tries_the_next_channel(pushed):
    with override_settings(NOTIFICATION_BACKENDS=PUSH), TestCase.captureOnCommitCallbacks(execute=True):
        response = post({"idempotency_key": str(pushed.idempotency_key), "state": "failed", "code": "uninstalled"})
    assert response.status_code == 204
    pushed.refresh_from_db()
    assert (pushed.state, pushed.error) == (State.FAILED, "push_uninstalled")
    assert Notification.objects.get(fallback_of=pushed).channel == "sms"  # next in the default order


def test_without_a_receipt_in_the_window_the_next_channel_is_tried(pushed):
    later = timezone.now() + timedelta(minutes=6)  # the default window is 5 minutes
    with override_settings(NOTIFICATION_BACKENDS=PUSH):
        assert services.notifications_fall_back_undelivered(now=later) == 1
    assert Notification.objects.get(fallback_of=pushed).channel == "sms"  # next in the default order


def test_an_app_that_sends_no_receipts_is_not_waited_for(tenant_a, no_tasks):
    NotificationSettings.objects.create(tenant=tenant_a, push_webhook_secret=SECRET)
    with StubServer() as stub:
        stub.answers = [(202, b"", {})]
        NotificationSettings.objects.filter(tenant=tenant_a).update(push_webhook_url=stub.url)
        with override_settings(NOTIFICATION_BACKENDS=PUSH):
            feed(tenant_a, "password.changed", account_=account(channels={"push": True}))
            send_all()
    row = Notification.objects.get(channel="push")
    assert (row.state, row.receipt_expected) == (State.SENT, False)


@pytest.mark.parametrize(
    "bad",
    [
        {"secret": "another-tenants-secret-0123456789"},
        {"stamp": int(time.time()) - 600},  # stale
        {"stamp": "yesterday"},
    ],
)
def test_a_receipt_not_signed_by_the_pushes_tenant_changes_nothing(pushed, bad):
    assert post({"idempotency_key": str(pushed.idempotency_key), "state": "delivered"}, **bad).status_code == 403
    pushed.refresh_from_db()
    assert pushed.state == State.SENT


def test_unsigned_and_unknown_receipts_get_the_same_answer(pushed):
    unsigned = Client().post(
        reverse("alerts:push_receipt"),
        json.dumps({"idempotency_key": str(pushed.idempotency_key), "state": "delivered"}),
        content_type="application/json",
    )
    unknown = post({"idempotency_key": str(uuid.uuid4()), "state": "delivered"})
    assert unsigned.status_code == unknown.status_code == 403
    pushed.refresh_from_db()
    assert pushed.state == State.SENT


def test_a_receipt_for_another_tenants_push_signed_with_its_own_secret_is_refused(pushed, tenant_b):
    NotificationSettings.objects.create(tenant=tenant_b, push_webhook_secret="tenant-b-secret-0123456789")
    response = post(
        {"idempotency_key": str(pushed.idempotency_key), "state": "failed"}, secret="tenant-b-secret-0123456789"
    )
    assert response.status_code == 403
    pushed.refresh_from_db()
    assert pushed.state == State.SENT


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"state": "delivered"}',
        b'{"idempotency_key": "nope", "state": "delivered"}',
        b'{"idempotency_key": "8d9c4a0e-6a3b-4c55-9d0c-3f0b7b1c2d3e", "state": "sent"}',
        b'{"idempotency_key": "8d9c4a0e-6a3b-4c55-9d0c-3f0b7b1c2d3e", "state": "failed", "code": 7}',
    ],
)
def test_malformed_receipts_are_400_and_change_nothing(pushed, raw):
    assert post(None, raw=raw).status_code == 400
    pushed.refresh_from_db()
    assert pushed.state == State.SENT


def test_an_oversized_receipt_is_refused(pushed):
    assert post(None, raw=b"{" + b" " * 4096 + b"}").status_code == 413


def test_only_post(pushed):
    assert Client().get(reverse("alerts:push_receipt")).status_code == 405

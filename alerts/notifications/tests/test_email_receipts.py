"""Email through a provider's API (django-anymail; Postmark here, against a local stub server):
the exact request the provider receives, its message id kept, and its delivery and bounce webhooks
(basic auth checked by anymail) recorded on the notification. Unauthenticated or unconfigured
webhooks change nothing."""

import base64
import json

import pytest
from django.test import Client, TestCase, override_settings

from alerts.models import Notification
from alerts.notifications.models import State
from alerts.notifications.tests.helpers import OUTBOX, account, answer_link_of, feed, send_all
from alerts.notifications.tests.stub_server import StubServer

pytestmark = pytest.mark.django_db
SECRET = "postmark-hook:s3cret-s3cret-s3cret"
MESSAGE_ID = "b7bc2f4a-e38e-4336-af7d-e6c392c2f817"
WEBHOOK = "/notifications/email/postmark/tracking/"


@pytest.fixture
def postmark():
    with StubServer() as stub:
        with override_settings(
            NOTIFICATION_BACKENDS={
                "email": {
                    "BACKEND": "alerts.notifications.channels.DjangoEmailBackend",
                    "OPTIONS": {"EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend"},
                },
                "sms": OUTBOX,
                "push": OUTBOX,
                "voice": OUTBOX,
            },
            ANYMAIL={"POSTMARK_SERVER_TOKEN": "server-token", "POSTMARK_API_URL": stub.url, "WEBHOOK_SECRET": SECRET},
            NOTIFICATION_EMAIL_FROM="security@acme.example",
        ):
            yield stub


@pytest.fixture
def emailed(tenant_a, postmark, no_tasks):
    postmark.answers = [
        (
            200,
            json.dumps(
                {"To": "jane.doe@example.com", "MessageID": MESSAGE_ID, "ErrorCode": 0, "Message": "OK"}
            ).encode(),
            {},
        )
    ]
    feed(tenant_a, "password.changed", account_=account(channels={"email": True}))
    send_all()
    return Notification.objects.get(channel="email")


def hook(payload, *, auth=SECRET):
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    with TestCase.captureOnCommitCallbacks(execute=True):
        return Client().post(WEBHOOK, json.dumps(payload), content_type="application/json", headers=headers)


def delivery():
    return {"RecordType": "Delivery", "MessageID": MESSAGE_ID, "Recipient": "jane.doe@example.com",
            "DeliveredAt": "2026-11-22T03:00:00Z", "Details": "250 OK", "ServerID": 1, "Metadata": {}}  # fmt: skip


def bounce():
    return {"RecordType": "Bounce", "ID": 42, "Type": "HardBounce", "TypeCode": 1, "MessageID": MESSAGE_ID,
            "Email": "jane.doe@example.com", "BouncedAt": "2026-11-22T03:00:00Z", "Description": "Unknown user",
            "Details": "550 5.1.1", "ServerID": 1, "Tag": "", "Metadata": {}}  # fmt: skip


def test_postmark_gets_the_email_and_its_id_is_kept_to_wait_for_a_receipt(emailed, postmark):
    (request,) = postmark.requests
    assert request.path == "/email" and request.headers["X-Postmark-Server-Token"] == "server-token"
    body = json.loads(request.body)
    assert (body["To"], body["From"]) == ("jane.doe@example.com", "security@acme.example")
    assert {"Name": "Message-ID", "Value": f"<{emailed.idempotency_key}@alertdesk>"} in body["Headers"]
    assert answer_link_of(body["TextBody"]) == emailed
    assert (emailed.state, emailed.provider_message_id, emailed.receipt_expected) == (State.SENT, MESSAGE_ID, True)


def test_the_delivery_webhook_marks_it_delivered(emailed):
    assert hook(delivery()).status_code == 200
    emailed.refresh_from_db()
    assert emailed.state == State.DELIVERED and emailed.delivered_at is not None


def test_a_bounce_is_recorded_and_the_next_channel_is_tried(emailed):
    assert hook(bounce()).status_code == 200
    emailed.refresh_from_db()
    assert (emailed.state, emailed.error) == (State.BOUNCED, "email_bounced")
    assert Notification.objects.get(fallback_of=emailed).channel in {"sms", "push", "voice"}


@pytest.mark.parametrize("auth", [None, "postmark-hook:wrong", "someone:else"])
def test_a_webhook_without_the_secret_changes_nothing(emailed, auth):
    assert hook(bounce(), auth=auth).status_code == 400
    emailed.refresh_from_db()
    assert emailed.state == State.SENT and not Notification.objects.filter(fallback_of=emailed).exists()


def test_an_event_for_no_email_of_ours_changes_nothing(emailed):
    assert hook({**bounce(), "MessageID": "00000000-0000-0000-0000-000000000000"}).status_code == 200
    emailed.refresh_from_db()
    assert emailed.state == State.SENT


def test_without_a_configured_secret_the_webhooks_are_missing(emailed):
    with override_settings(ANYMAIL={"POSTMARK_SERVER_TOKEN": "server-token"}):
        assert hook(delivery()).status_code == 404
    emailed.refresh_from_db()
    assert emailed.state == State.SENT


def test_a_refused_api_call_fails_the_email_for_good(tenant_a, postmark, no_tasks):
    postmark.answers = [(422, json.dumps({"ErrorCode": 300, "Message": "Invalid 'To' address"}).encode(), {})]
    feed(tenant_a, "password.changed", account_=account(channels={"email": True}))
    send_all()
    row = Notification.objects.get(channel="email")
    assert row.state == State.FAILED and row.error.startswith("email_")


def test_a_provider_outage_is_retried(tenant_a, postmark, no_tasks):
    postmark.answers = [(503, b"{}", {})]
    feed(tenant_a, "password.changed", account_=account(channels={"email": True}))
    send_all()
    row = Notification.objects.get(channel="email")
    assert (row.state, row.error) == (State.QUEUED, "email_api_503")

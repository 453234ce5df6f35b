"""The backends: the exact request each provider receives (a local stub server, never the
network), how its answers become states, and Twilio's signed status callback."""

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs

import pytest
from django.core import mail
from django.test import Client, TestCase, override_settings

from alerts.models import Notification, NotificationSettings
from alerts.notifications.channels import CHANNELS, Contacts, twilio_signature
from alerts.notifications.models import State
from alerts.notifications.tests.helpers import OUTBOX, account, answer_link_of, feed, send_all
from alerts.notifications.tests.stub_server import StubServer

pytestmark = pytest.mark.django_db
SID, TOKEN, FROM = "AC0123456789abcdef0123456789abcdef", "twilio-test-token", "+15005550006"


@pytest.fixture
def stub():
    with StubServer() as server:
        yield server


def twilio(stub, **channels):
    return override_settings(
        NOTIFICATION_BACKENDS={"email": OUTBOX, "sms": OUTBOX, "push": OUTBOX, "voice": OUTBOX, **channels},
        TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_FROM=FROM, TWILIO_API_BASE=stub.url,
        NOTIFICATION_PUBLIC_URL="https://desk.example",
    )  # fmt: skip


def form(received):
    return {k: v[0] for k, v in parse_qs(received.body.decode(), keep_blank_values=True).items()}


class TestTwilio:
    def test_an_sms_is_the_request_twilio_documents(self, tenant_a, stub, no_tasks):
        stub.answers = [(201, json.dumps({"sid": "SM0001", "status": "queued"}).encode(), {})]
        with twilio(stub, sms="alerts.notifications.channels.TwilioSmsBackend"):
            feed(tenant_a, "password.changed", account_=account(channels={"sms": True}))
            send_all()
        row = Notification.objects.get()
        (request,) = stub.requests
        assert (request.method, request.path) == ("POST", f"/2010-04-01/Accounts/{SID}/Messages.json")
        assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        assert request.headers["I-Twilio-Idempotency-Token"] == str(row.idempotency_key)
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        fields = form(request)
        assert set(fields) == {"To", "From", "Body", "StatusCallback"}
        assert (fields["To"], fields["From"]) == ("+14155550100", FROM)
        assert fields["StatusCallback"] == f"https://desk.example/notifications/twilio/status/{row.pk}/"
        assert answer_link_of(fields["Body"]) == row
        assert (row.state, row.provider, row.provider_message_id) == (State.SENT, "twilio", "SM0001")
        assert row.receipt_expected is True and row.delivered_at is None

    def test_a_call_reads_the_message_out(self, tenant_a, stub, no_tasks):
        stub.answers = [(201, json.dumps({"sid": "CA0001"}).encode(), {})]
        with twilio(stub, voice="alerts.notifications.channels.TwilioVoiceBackend"):
            feed(tenant_a, "password.changed", account_=account(channels={"voice": True}))
            send_all()
        (request,) = stub.requests
        assert request.path == f"/2010-04-01/Accounts/{SID}/Calls.json"
        twiml = form(request)["Twiml"]
        assert twiml.startswith("<Response><Say>") and twiml.endswith("</Say></Response>")
        assert "never ask you for a code or password" in twiml
        assert Notification.objects.get().provider_message_id == "CA0001"

    def test_busy_is_retried_after_retry_after_with_the_same_key(self, tenant_a, stub, no_tasks):
        stub.answers = [(429, b'{"code": 20429}', {"Retry-After": "30"})]
        with twilio(stub, sms="alerts.notifications.channels.TwilioSmsBackend"):
            feed(tenant_a, "password.changed", account_=account(channels={"sms": True}))
            report = send_all()
        row = Notification.objects.get()
        assert (row.state, row.handed_at, row.error) == (State.QUEUED, None, "twilio_http_429")
        assert report.deferred[row.pk] >= 30

    def test_a_number_twilio_refuses_fails_for_good_and_falls_back(self, tenant_a, stub, no_tasks):
        stub.answers = [(400, b'{"code": 21211, "message": "Invalid To number"}', {})]
        with twilio(stub, sms="alerts.notifications.channels.TwilioSmsBackend"):
            feed(tenant_a, "password.changed", account_=account(channels={"sms": True}))
            send_all()
        row = Notification.objects.get(fallback_of__isnull=True)
        assert (row.state, row.error) == (State.FAILED, "twilio_21211")
        assert Notification.objects.filter(fallback_of=row).exists()

    def test_nobody_answering_is_a_temporary_failure(self, tenant_a, no_tasks):
        with StubServer() as gone:
            url = gone.url
        with override_settings(
            NOTIFICATION_BACKENDS={"sms": "alerts.notifications.channels.TwilioSmsBackend"},
            TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_FROM=FROM, TWILIO_API_BASE=url,
        ):  # fmt: skip
            feed(tenant_a, "password.changed", account_=account(channels={"sms": True}))
            send_all()
        row = Notification.objects.get()
        assert (row.state, row.error) == (State.QUEUED, "http_URLError")


class TestTwilioStatusCallback:
    def sent_sms(self, tenant, stub):
        stub.answers = [(201, b'{"sid": "SM0001"}', {})]
        feed(tenant, "password.changed", account_=account(channels={"sms": True}))
        send_all()
        return Notification.objects.get()

    def callback(self, row, params, *, token=TOKEN, path=None):
        path = path or f"/notifications/twilio/status/{row.pk}/"
        signature = twilio_signature(auth_token=token, url="https://desk.example" + path, params=params)
        with TestCase.captureOnCommitCallbacks(execute=True):
            return Client().post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)

    def test_the_signature_algorithm_is_twilios(self):
        # The example of Twilio's documentation (TwilioDevEd/api-snippets, security/signature_validation).
        params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675310", "Digits": "1234",
                  "From": "+14158675310", "To": "+18005551212"}  # fmt: skip
        url = "https://mycompany.com/myapp.php?foo=1&bar=2"
        assert twilio_signature(auth_token="12345", url=url, params=params) == "GvWf1cFY/Q7PnoempGyD5oXAezc="  # noqa: S105

    def test_delivered(self, tenant_a, stub, no_tasks):
        with twilio(stub, sms="alerts.notifications.channels.TwilioSmsBackend"):
            row = self.sent_sms(tenant_a, stub)
            response = self.callback(row, {"MessageSid": "SM0001", "MessageStatus": "delivered"})
        assert response.status_code == 204
        row.refresh_from_db()
        assert (row.state, row.delivered_at is not None) == (State.DELIVERED, True)

    def test_undelivered_is_a_bounce_and_the_next_channel_is_tried(self, tenant_a, stub, no_tasks):
        with twilio(stub, sms="alerts.notifications.channels.TwilioSmsBackend"):
            row = self.sent_sms(tenant_a, stub)
            params = {"MessageSid": "SM0001", "MessageStatus": "undelivered", "ErrorCode": "30003"}
            assert self.callback(row, params).status_code == 204
        row.refresh_from_db()
        assert (row.state, row.error) == (State.BOUNCED, "twilio_30003")
        assert Notification.objects.get(fallback_of=row).channel == "email"

    def test_a_late_sent_does_not_undo_delivered(self, tenant_a, stub, no_tasks):
        with twilio(stub, sms="alerts.notifications.channels.TwilioSmsBackend"):
            row = self.sent_sms(tenant_a, stub)
            self.callback(row, {"MessageSid": "SM0001", "MessageStatus": "delivered"})
            self.callback(row, {"MessageSid": "SM0001", "MessageStatus": "sent"})
        row.refresh_from_db()
        assert row.state == State.DELIVERED

    @pytest.mark.parametrize(
        "forgery",
        ["wrong token", "another message id", "no signature", "another row's url", "unknown row"],
    )
    def test_a_forged_or_misdirected_callback_changes_nothing(self, tenant_a, stub, no_tasks, forgery):
        with twilio(stub, sms="alerts.notifications.channels.TwilioSmsBackend"):
            row = self.sent_sms(tenant_a, stub)
            params = {"MessageSid": "SM0001", "MessageStatus": "failed"}
            if forgery == "wrong token":
                response = self.callback(row, params, token="guessed")
            elif forgery == "another message id":
                response = self.callback(row, {**params, "MessageSid": "SM9999"})
            elif forgery == "no signature":
                response = Client().post(f"/notifications/twilio/status/{row.pk}/", params)
            elif forgery == "another row's url":  # signed for one path, sent to another
                signature = twilio_signature(
                    auth_token=TOKEN, url=f"https://desk.example/notifications/twilio/status/{row.pk + 1}/",
                    params=params,
                )  # fmt: skip
                response = Client().post(
                    f"/notifications/twilio/status/{row.pk}/", params, HTTP_X_TWILIO_SIGNATURE=signature
                )
            else:
                response = self.callback(row, params, path=f"/notifications/twilio/status/{row.pk + 100}/")
        assert response.status_code in (204, 403)
        assert response.status_code == 403 or forgery == "another message id"
        row.refresh_from_db()
        assert row.state == State.SENT and not Notification.objects.filter(fallback_of=row).exists()

    def test_only_post(self, tenant_a, stub, no_tasks):
        with twilio(stub, sms="alerts.notifications.channels.TwilioSmsBackend"):
            row = self.sent_sms(tenant_a, stub)
            assert Client().get(f"/notifications/twilio/status/{row.pk}/").status_code == 405


class TestWebhookPush:
    def test_the_tenants_webhook_gets_a_signed_push(self, tenant_a, stub, no_tasks):
        NotificationSettings.objects.create(
            tenant=tenant_a, push_webhook_url=f"{stub.url}/push", push_webhook_secret="s3cret-s3cret-s3cret"
        )
        stub.answers = [(202, b"", {})]
        with override_settings(NOTIFICATION_BACKENDS={"push": "alerts.notifications.channels.WebhookPushBackend"}):
            feed(tenant_a, "password.changed", account_=account(channels={"push": True}))
            send_all()
        row = Notification.objects.get()
        (request,) = stub.requests
        assert request.path == "/push" and request.headers["Content-Type"] == "application/json"
        stamp = request.headers["X-AlertDesk-Timestamp"]
        expected = hmac.new(b"s3cret-s3cret-s3cret", stamp.encode() + b"." + request.body, hashlib.sha256)
        assert request.headers["X-AlertDesk-Signature"] == f"sha256={expected.hexdigest()}"
        assert request.headers["X-AlertDesk-Idempotency-Key"] == str(row.idempotency_key)
        body = json.loads(request.body)
        assert set(body) == {"id", "idempotency_key", "account", "alert", "title", "body", "created_at", "receipt_url"}
        assert body["account"] == {"external_id": "alice"} and body["alert"] == row.alert_id
        assert answer_link_of(body["body"]) == row
        assert (row.state, row.provider, row.receipt_expected) == (State.SENT, "webhook", False)

    def test_a_tenant_without_a_webhook_cannot_be_pushed_to(self, tenant_a, no_tasks):
        with override_settings(NOTIFICATION_BACKENDS={"push": "alerts.notifications.channels.WebhookPushBackend"}):
            feed(tenant_a, "password.changed", account_=account(channels={"push": True}))
            send_all()
        row = Notification.objects.get(channel="push")
        assert (row.state, row.error) == (State.FAILED, "push_not_configured")

    def test_a_server_error_is_retried(self, tenant_a, stub, no_tasks):
        NotificationSettings.objects.create(tenant=tenant_a, push_webhook_url=stub.url, push_webhook_secret="x" * 20)
        stub.answers = [(503, b"", {})]
        with override_settings(NOTIFICATION_BACKENDS={"push": "alerts.notifications.channels.WebhookPushBackend"}):
            feed(tenant_a, "password.changed", account_=account(channels={"push": True}))
            send_all()
        assert Notification.objects.get().error == "push_http_503"


class TestDjangoEmail:
    @override_settings(
        NOTIFICATION_BACKENDS={"email": "alerts.notifications.channels.DjangoEmailBackend"},
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        NOTIFICATION_EMAIL_FROM="security@acme.example",
    )
    def test_an_email_through_djangos_email_backend(self, tenant_a, no_tasks):
        feed(tenant_a, "password.changed", account_=account(channels={"email": True}))
        send_all()
        row = Notification.objects.get()
        (email,) = mail.outbox
        assert (email.to, email.from_email) == (["jane.doe@example.com"], "security@acme.example")
        assert email.extra_headers["Message-ID"] == f"<{row.idempotency_key}@alertdesk>"
        assert answer_link_of(email.body) == row
        assert (row.state, row.provider, row.receipt_expected) == (State.SENT, "email", False)


class TestChannelRegistry:
    def test_each_channel_knows_its_address(self):
        contacts = Contacts("ext-1", "a@b.example", "+14155550100", {"push": False}, "a***@b***", "+***00", {})
        assert {key: channel.address(contacts) for key, channel in CHANNELS.items()} == {
            "email": ("a@b.example", "a***@b***"),
            "sms": ("+14155550100", "+***00"),
            "voice": ("+14155550100", "+***00"),
            "push": ("ext-1", "app"),
        }
        nothing = Contacts("ext-1", "", "", {}, "", "", {})
        assert {key: channel.address(nothing) for key, channel in CHANNELS.items()} == dict.fromkeys(CHANNELS)

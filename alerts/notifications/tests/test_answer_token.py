"""The "Was this you?" link each notification carries: signed, expiring, single-use. (The answer
page is another part's; this is the token it reads.)"""

from datetime import timedelta
from unittest import mock

import pytest
from django.core import signing
from django.test import override_settings
from django.utils import timezone

from alerts.models import Notification, NotificationSettings
from alerts.notifications.answers import AnswerTokenInvalid, notification_get_by_answer_token
from alerts.notifications.models import ANSWER_SALT
from alerts.notifications.tests.helpers import account, feed

pytestmark = pytest.mark.django_db


@pytest.fixture
def row(tenant_a):
    feed(tenant_a, "password.changed", account_=account(channels={"email": True}))
    return Notification.objects.get()


def reason(token):
    with pytest.raises(AnswerTokenInvalid) as caught:
        notification_get_by_answer_token(token=token)
    return caught.value.reason


def test_the_link_names_its_notification(row):
    with override_settings(NOTIFICATION_PUBLIC_URL="https://desk.example"):
        url = row.answer_url()
    assert url.startswith("https://desk.example/r/") and url.endswith("/")
    assert notification_get_by_answer_token(token=url.split("/r/")[1].rstrip("/")) == row


@pytest.mark.parametrize(
    "token",
    ["", "x" * 300, "abc", "1.nonce:1abc:sig", None, 123],
)
def test_malformed_tokens_are_forged(row, token):
    assert reason(token) == "forged"


def test_a_token_signed_with_another_key_or_salt_is_forged(row):
    value = f"{row.pk}.{row.answer_nonce}"
    assert reason(signing.TimestampSigner(salt="another").sign(value)) == "forged"
    assert reason(signing.TimestampSigner(key="another-key" * 5, salt=ANSWER_SALT).sign(value)) == "forged"


def test_a_token_for_another_nonce_or_row_is_forged(row):
    assert reason(signing.TimestampSigner(salt=ANSWER_SALT).sign(f"{row.pk}.guessed")) == "forged"
    assert reason(signing.TimestampSigner(salt=ANSWER_SALT).sign(f"{row.pk + 1}.{row.answer_nonce}")) == "forged"


def test_it_expires_after_the_tenants_days(tenant_a, row):
    token = row.answer_token()
    later = timezone.now() + timedelta(days=7, minutes=1)
    with mock.patch("django.core.signing.time.time", return_value=later.timestamp()):
        assert reason(token) == "expired"
    NotificationSettings.objects.create(tenant=tenant_a, answer_link_days=30)
    with mock.patch("django.core.signing.time.time", return_value=later.timestamp()):
        assert notification_get_by_answer_token(token=token) == row


def test_it_works_once(row):
    token = row.answer_token()
    Notification.objects.filter(pk=row.pk).update(answered_at=timezone.now(), answer="yes")
    assert reason(token) == "used"

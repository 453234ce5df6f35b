"""The case page's verification and action panels: the state in plain words, a code sent and
checked from the page, action buttons disabled with the reason until the caller is verified."""

import re

import pytest

from accounts.testing import verified_client
from alerts.models import OutboxMessage
from desk.models import AccountAction

pytestmark = pytest.mark.django_db


def test_an_agent_verifies_by_sms_code_from_the_page_and_may_then_act(
    agent, case_a, django_capture_on_commit_callbacks
):
    client = verified_client(agent)
    page = f"/cases/{case_a.pk}/"
    html = client.get(page).content.decode()
    assert "Not verified" in html and "Not allowed yet: verify the caller first." in html
    assert re.search(r'data-testid="action-lock"[^>]*disabled', html)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{page}verification/", {"channel": "sms"})
    assert response.status_code == 302
    code = re.search(r"code is (\d{6})", OutboxMessage.objects.get().body).group(1)
    wrong = client.post(f"{page}verification/check/", {"code": f"{(int(code) + 1) % 10**6:06d}"})
    assert wrong.status_code == 400 and "Wrong code" in wrong.content.decode()
    assert client.post(f"{page}verification/check/", {"code": code}).status_code == 302
    html = client.get(page).content.decode()
    assert "Verified by one-time code to SMS on file" in html and "valid until" in html
    assert not re.search(r'data-testid="action-lock"[^>]*disabled', html)
    assert client.post(f"{page}actions/", {"action": "lock"}).status_code == 302
    assert AccountAction.objects.get().action == "lock"


def test_an_unverified_action_from_the_page_is_refused_with_the_reason(agent, case_a):
    response = verified_client(agent).post(f"/cases/{case_a.pk}/actions/", {"action": "lock"})
    assert response.status_code == 409 and "not verified" in response.content.decode()
    assert not AccountAction.objects.exists()

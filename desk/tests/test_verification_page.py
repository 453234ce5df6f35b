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


def test_a_refused_verification_shows_its_reason_in_the_verification_section(agent, tenant_a, case_a):
    from accounts.models import Role
    from accounts.testing import make_staff

    other = make_staff("agent.two", role=Role.AGENT, tenants=[tenant_a], default_queue=True)
    page = f"/cases/{case_a.pk}/"
    assert verified_client(agent).post(f"{page}verification/", {"channel": "sms"}).status_code == 302
    response = verified_client(other).post(f"{page}verification/", {"channel": "sms"})
    assert response.status_code == 409
    html = response.content.decode()
    section = html[html.index('id="verification"') : html.index('id="actions"')]
    assert 'data-testid="verification-errors"' in section and "started verifying this customer" in section
    assert 'data-testid="step-errors"' not in html  # not also in the steps' column, far from the form
    # The refusal is on the case's history: two agents on one account at once may be an attack.
    from audit.models import AuditEvent

    refused = AuditEvent.objects.get(metadata__event="verification_refused")
    assert refused.actor == other and refused.metadata["why"] == "in_progress"
    timeline = verified_client(agent).get(page).content.decode()
    assert "Verification refused: another verification of this customer is in progress" in timeline


def test_a_refused_action_shows_its_reason_in_the_actions_section(agent, case_a):
    response = verified_client(agent).post(f"/cases/{case_a.pk}/actions/", {"action": "lock"})
    html = response.content.decode()
    section = html[html.index('id="actions"') : html.index('class="alert-layout case-layout"')]
    assert 'data-testid="action-errors"' in section and "not verified" in section


def test_the_actions_asked_for_read_as_words_with_what_they_wait_for(agent, case_a):
    from desk.tests.test_actions import _verify

    client = verified_client(agent)
    _verify(case_a)
    assert client.post(f"/cases/{case_a.pk}/actions/", {"action": "reset_mfa"}).status_code == 302
    html = client.get(f"/cases/{case_a.pk}/").content.decode()
    row = html[html.index('data-testid="action-row-reset_mfa"') :]
    row = row[: row.index("</li>")]
    assert "Reset multi-factor authentication" in row and "Waiting for a supervisor" in row
    assert "A supervisor of" in row and "Approve" not in row  # the agent is told who approves; no button


def test_the_audit_trail_of_the_case_is_linked_for_those_who_read_it(agent, supervisor, case_a):
    link = f'href="/audit/target/desk.case/{case_a.pk}/"'
    assert link in verified_client(supervisor).get(f"/cases/{case_a.pk}/").content.decode()
    assert link not in verified_client(agent).get(f"/cases/{case_a.pk}/").content.decode()


def test_a_resolved_case_offers_no_approval_of_what_still_waits(agent, supervisor, case_a):
    from desk.tests.test_actions import _verify

    _verify(case_a)
    page = f"/cases/{case_a.pk}/"
    assert verified_client(agent).post(f"{page}actions/", {"action": "reset_mfa"}).status_code == 302
    html = verified_client(agent).get(page).content.decode()
    warning = html[html.index('data-testid="resolve-cancels"') :]
    warning = warning[: warning.index("</div>")]
    assert "Resolving cancels 1 account action</strong> that has not gone out" in warning
    item = re.search(r'data-testid="resolve-cancels-item">(.*?)</li>', warning).group(1)
    assert re.sub(r"<[^>]+>", "", item) == "Reset multi-factor authentication: Waiting for a supervisor&#x27;s approval"
    assert verified_client(agent).post(f"{page}resolve/", {"outcome": "account_secured"}).status_code == 302
    html = verified_client(supervisor).get(page).content.decode()
    row = html[html.index('data-testid="action-row-reset_mfa"') :]
    row = row[: row.index("</li>")]
    assert "Cancelled: the case was resolved before it went out" in row and "approve" not in row.lower()
    assert 'data-testid="resolve-cancels"' not in html

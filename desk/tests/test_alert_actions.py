"""The alert page's live parts alone (desk:alert_actions): its status, assignee and actions as the user
may take them now, which the page refetches when a live signal says the alert changed. Read through
the same access function as the page (404 for an alert the user cannot see, however), recorded as a
view, and marked with a state that changes exactly when what it offers changes."""

import re
from html import unescape

import pytest
from django.urls import reverse

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.models import AlertStatus
from alerts.services import alert_claim, alert_release, alert_resolve
from alerts.tests.factories import AlertFactory, CustomerFactory
from audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db


def _url(alert):
    return reverse("desk:alert_actions", args=[alert.pk])


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip())


def _state(html: str) -> str:
    return re.search(r'id="alert-actions-body"[^>]*data-state="([^"]*)"', html).group(1)


@pytest.fixture
def agent2(tenant_a):
    return make_staff("agent2", role=Role.AGENT, tenants=[tenant_a], default_queue=True)


def test_the_fragment_is_what_the_page_shows_in_its_live_parts(alert_a, agent):
    client = verified_client(agent)
    fragment = client.get(_url(alert_a)).content.decode()
    page = client.get(reverse("desk:alert_detail", args=[alert_a.pk])).content.decode()
    for part in ('id="alert-status"', 'id="alert-assignee"', 'id="alert-actions-body"'):
        assert part in fragment and part in page
    assert _state(fragment) == _state(page)
    assert f'data-actions-url="{_url(alert_a)}"' in page
    assert "<html" not in fragment and "<script" not in fragment  # a fragment, nothing to run
    assert [f"/alerts/{alert_a.pk}/{s}/" in fragment for s in ("acknowledge", "resolve", "dismiss")] == [True] * 3


def test_a_claim_by_someone_else_takes_the_steps_away_and_names_the_holder(alert_a, agent, agent2):
    client = verified_client(agent)
    before = _state(client.get(_url(alert_a)).content.decode())
    alert_claim(alert=alert_a, actor=agent2)
    html = client.get(_url(alert_a)).content.decode()
    assert _state(html) != before
    assert 'data-held-by="agent2"' in html
    assert "agent2 holds this alert: only they or a supervisor can acknowledge, resolve or dismiss it." in _text(html)
    assert "/acknowledge/" not in html and "/resolve/" not in html and "/dismiss/" not in html
    assert _text(re.search(r'id="alert-assignee"[^>]*>(.*?)</dd>', html, re.S).group(1)) == "agent2"
    # Released: the steps come back, and the state says so.
    alert_release(alert=alert_a, actor=agent2)
    again = client.get(_url(alert_a)).content.decode()
    assert _state(again) == before and "data-held-by" not in again


def test_a_resolved_alert_offers_nothing_and_says_so(alert_a, agent, agent2):
    client = verified_client(agent)
    alert_claim(alert=alert_a, actor=agent2)
    alert_resolve(alert=alert_a, actor=agent2, note="secured")
    html = client.get(_url(alert_a)).content.decode()
    assert "This alert is resolved: there is nothing left to do." in _text(html)
    assert 'data-status-label="Resolved"' in html and ">Resolved</span>" in html


def test_the_same_state_twice_while_nothing_changed(alert_a, agent):
    # The CSRF tokens differ from one answer to the next; the state does not.
    client = verified_client(agent)
    assert _state(client.get(_url(alert_a)).content.decode()) == _state(client.get(_url(alert_a)).content.decode())


def test_each_answer_is_recorded_as_a_view_of_the_alert(alert_a, agent):
    views = AuditEvent.objects.filter(action=Action.VIEW, target_type="alerts.alert", target_id=str(alert_a.pk))
    before = views.count()
    assert verified_client(agent).get(_url(alert_a)).status_code == 200
    assert views.count() == before + 1


def test_a_role_that_sees_but_may_not_work_gets_no_step(alert_a, admin_user):
    html = verified_client(admin_user).get(_url(alert_a)).content.decode()
    assert "Your role may see this alert but not work on it." in _text(html)
    assert "/acknowledge/" not in html


class TestRefused:
    def test_another_tenants_alert_and_a_missing_one_answer_the_same_404(self, agent, tenant_b):
        foreign = AlertFactory(customer=CustomerFactory(tenant=tenant_b, external_id="zed"))
        client = verified_client(agent)
        assert client.get(_url(foreign)).status_code == 404
        assert client.get(reverse("desk:alert_actions", args=[foreign.pk + 1000])).status_code == 404
        assert not AuditEvent.objects.filter(action=Action.VIEW, target_id=str(foreign.pk)).exists()

    def test_an_agent_of_another_tenant_gets_404(self, alert_a, agent_b):
        assert verified_client(agent_b).get(_url(alert_a)).status_code == 404

    def test_an_alert_of_a_queue_not_granted_answers_404(self, alert_a, specialist):
        assert verified_client(specialist).get(_url(alert_a)).status_code == 404

    def test_a_password_only_session_is_sent_to_the_otp_step(self, alert_a, password_only_client):
        response = password_only_client.get(_url(alert_a))
        assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/?next=")

    def test_signed_out_goes_to_sign_in(self, alert_a, client):
        response = client.get(_url(alert_a))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]

    def test_get_only(self, alert_a, agent):
        assert verified_client(agent).post(_url(alert_a)).status_code == 405
        alert_a.refresh_from_db()
        assert alert_a.status == AlertStatus.OPEN

"""The alert page: one alert with its evidence, the alerts linked to it, its history and the steps
the user may take; the steps from the page; and its refusals (404 for what the user cannot see,
403 for a role that sees but may not work, 409 for a step the status does not allow)."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.urls import reverse

from accounts.models import Role
from accounts.testing import verified_client
from alerts.models import AlertStatus, AlertType, Severity
from alerts.services import alert_acknowledge, alert_resolve
from alerts.tests.factories import T0, AccountEventFactory, AlertFactory, CustomerFactory
from audit.models import Action, AuditEvent
from audit.services import audit_record

pytestmark = pytest.mark.django_db

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def _url(alert, step=""):
    return reverse(f"desk:alert_{step or 'detail'}", args=[alert.pk])


@pytest.fixture
def customer(tenant_a):
    return CustomerFactory(tenant=tenant_a, external_id="acct-4471", email="alice@example.com", phone="+33612345678")


@pytest.fixture
def alert(customer, agent):
    events = [
        # Made out of order: the page shows them in the order they happened.
        AccountEventFactory(
            customer=customer, type="login.succeeded", occurred_at=T0 + timedelta(minutes=5), ip="81.2.69.160",
            context={"user_agent": CHROME},
        ),
        AccountEventFactory(
            customer=customer, type="mfa.disabled", occurred_at=T0 + timedelta(minutes=9), ip="10.0.0.7",
            context={"device_id": "dev-42"},
        ),
        AccountEventFactory(
            customer=customer, type="password.changed", occurred_at=T0 + timedelta(minutes=1),
            context={"geo": {"country": "FR"}},
        ),
    ]  # fmt: skip
    alert = AlertFactory(customer=customer, evidence=events, reason="Two-factor authentication was turned off.")
    audit_record(action=Action.CREATE, actor=None, tenant=alert.tenant, target=alert, changes={})
    return alert


@pytest.fixture
def takeover(alert, customer):
    """An escalation that links `alert`, and a part of it that links nothing."""
    escalation = AlertFactory(
        customer=customer, type=AlertType.ACCOUNT_TAKEOVER, rule="account_takeover", severity=Severity.CRITICAL,
        first_seen_at=T0 + timedelta(minutes=10), evidence=[],
    )  # fmt: skip
    escalation.related.add(alert)
    return escalation


@pytest.fixture
def foreign_alert(tenant_b):
    return AlertFactory(customer=CustomerFactory(tenant=tenant_b, external_id="zed"))


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip())


def _without_tokens(response) -> str:
    """The body without its per-response CSRF token (masked anew on every response)."""
    return re.sub(r'(X-CSRFToken": |csrfmiddlewaretoken" value=)"[^"]+"', "TOKEN", response.content.decode())


def _section(html: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</(table|ul|ol|div|dd)>', html, re.S)
    assert match, testid
    return match.group(1)


def _views(alert):
    return AuditEvent.objects.filter(action=Action.VIEW, target_type="alerts.alert", target_id=str(alert.pk))


def _status_records(alert):
    return AuditEvent.objects.filter(action=Action.UPDATE, target_type="alerts.alert", target_id=str(alert.pk))


class TestThePage:
    def test_shows_the_alert_its_evidence_in_order_its_chain_and_its_history(self, alert, takeover, agent, supervisor):
        alert_acknowledge(alert=alert, actor=supervisor)
        response = verified_client(agent).get(_url(alert))
        assert response.status_code == 200
        html = response.content.decode()
        text = _text(html)
        assert f"Two-factor change #{alert.pk}" in text and "High severity" in text
        assert "Two-factor authentication was turned off." in text
        customer = _text(_section(html, "customer"))
        assert customer == "acct-4471 a***@e*** +***78"
        assert "alice@example.com" not in html and "+33612345678" not in html

        rows = re.findall(r"<tr>(.*?)</tr>", _section(html, "evidence").split("<tbody>")[1], re.S)
        cells = [[_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] for row in rows]
        assert cells == [
            ["2026-11-20 09:01:00", "Password changed", "—", "FR", "—"],
            ["2026-11-20 09:05:00", "Signed in", "81.2.69.160", cells[1][3], "Chrome on Windows"],
            ["2026-11-20 09:09:00", "Two-factor turned off", "10.0.0.7", "—", "Device dev-42"],
        ]
        assert cells[1][3].startswith("GB")  # located offline

        related = _section(html, "related")
        assert re.findall(r'href="([^"]+)"', related) == [_url(takeover)]
        assert f"Possible account takeover #{takeover.pk}" in _text(related)
        assert "escalation that includes this alert" in _text(related)

        history = [_text(li) for li in re.findall(r"<li>(.*?)</li>", _section(html, "history"), re.S)]
        assert len(history) == 2
        assert history[0].endswith("Acknowledged by supervisor (assignee: nobody → supervisor)")  # picked up
        assert history[1].endswith("Raised by AlertDesk")

    def test_the_escalation_links_back_to_its_parts(self, alert, takeover, agent):
        html = verified_client(agent).get(_url(takeover)).content.decode()
        related = _section(html, "related")
        assert re.findall(r'href="([^"]+)"', related) == [_url(alert)]
        assert "part of this alert's chain" in _text(related)

    def test_related_alerts_the_user_may_not_see_are_left_out(self, alert, agent, tenant_b):
        # A link across tenants cannot be made by detection; if one existed, it still shows nothing.
        foreign = AlertFactory(customer=CustomerFactory(tenant=tenant_b, external_id="x"))
        foreign.related.add(alert)
        html = verified_client(agent).get(_url(alert)).content.decode()
        assert 'data-testid="no-related"' in html and _url(foreign) not in html

    def test_an_agent_sees_the_steps_the_status_allows(self, alert, agent):
        client = verified_client(agent)
        html = client.get(_url(alert)).content.decode()
        assert [_url(alert, s) in html for s in ("acknowledge", "resolve", "dismiss")] == [True, True, True]
        alert_acknowledge(alert=alert, actor=agent)
        html = client.get(_url(alert)).content.decode()
        assert [_url(alert, s) in html for s in ("acknowledge", "resolve", "dismiss")] == [False, True, True]
        alert_resolve(alert=alert, actor=agent, note="secured")
        html = client.get(_url(alert)).content.decode()
        assert [_url(alert, s) in html for s in ("acknowledge", "resolve", "dismiss")] == [False, False, False]
        assert "This alert is resolved: there is nothing left to do." in _text(html)

    def test_each_view_is_recorded_once(self, alert, agent):
        verified_client(agent).get(_url(alert))
        (view,) = _views(alert)
        assert (view.actor, view.tenant_id, view.actor_role) == (agent, alert.tenant_id, Role.AGENT)

    def test_the_linked_alerts_shown_are_recorded_as_listed(self, alert, takeover, agent):
        verified_client(agent).get(_url(alert))
        listed = AuditEvent.objects.get(action=Action.LIST, target_type="alerts.alert")
        assert listed.metadata["ids"] == [str(takeover.pk)]

    def test_a_long_evidence_list_shows_the_newest_and_counts_the_rest(self, alert, customer, agent, settings):
        more = [
            AccountEventFactory(customer=customer, type="login.failed", occurred_at=T0 + timedelta(hours=1, seconds=i))
            for i in range(52)
        ]
        alert.evidence.add(*more)
        html = verified_client(agent).get(_url(alert)).content.decode()
        rows = re.findall(r"<tr>(.*?)</tr>", _section(html, "evidence").split("<tbody>")[1], re.S)
        assert len(rows) == 50
        assert "The newest 50 of 55 events, oldest first; 5 earlier events not shown." in _text(html)
        assert "10:00:51" in rows[-1] and "10:00:02" in rows[0]

    def test_the_query_count_does_not_grow_with_the_evidence(
        self, alert, customer, takeover, agent, django_assert_max_num_queries
    ):
        client = verified_client(agent)
        client.get(_url(alert))  # warm: the session, geo data
        with django_assert_max_num_queries(QUERY_BUDGET):
            assert client.get(_url(alert)).status_code == 200
        alert.evidence.add(*[AccountEventFactory(customer=customer, type="login.failed") for _ in range(120)])
        with django_assert_max_num_queries(QUERY_BUDGET):
            assert client.get(_url(alert)).status_code == 200


# Session, user, device, the user's tenant access (read once a request: scopes, may act, the top
# bar), the agent's queues with their tenants' others, the alert (with the customer's open case, for
# "Open case"), its evidence (and their count once there are more than shown), the links and the
# linked alerts, history, and the audit record of the alert and the linked alerts (one statement).
QUERY_BUDGET = 12


class TestRefusals:
    def test_another_tenants_alert_and_a_missing_one_answer_the_same_404(self, agent, foreign_alert):
        client = verified_client(agent)
        foreign = client.get(_url(foreign_alert))
        missing = client.get(reverse("desk:alert_detail", args=[foreign_alert.pk + 1000]))
        assert foreign.status_code == missing.status_code == 404
        assert _without_tokens(foreign) == _without_tokens(missing)
        assert not _views(foreign_alert).exists()

    def test_an_agent_of_another_tenant_gets_404(self, alert, agent_b):
        client = verified_client(agent_b)
        assert client.get(_url(alert)).status_code == 404
        for step in ("acknowledge", "resolve", "dismiss"):
            assert client.post(_url(alert, step), {"note": "x"}).status_code == 404
        alert.refresh_from_db()
        assert alert.status == AlertStatus.OPEN

    def test_a_password_only_session_is_sent_to_the_otp_step(self, alert, password_only_client):
        response = password_only_client.get(_url(alert))
        assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/?next=")
        response = password_only_client.post(_url(alert, "acknowledge"))
        assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/")
        alert.refresh_from_db()
        assert alert.status == AlertStatus.OPEN

    def test_a_bpo_admin_sees_the_alert_but_may_not_work_it(self, alert, admin_user):
        client = verified_client(admin_user)
        response = client.get(_url(alert))
        html = response.content.decode()
        assert response.status_code == 200 and 'data-testid="no-actions"' in html
        assert "<form" not in html.split('id="actions-title"')[1].split("</aside>")[0].replace(
            '<form method="dialog">', ""
        )
        for step in ("acknowledge", "resolve", "dismiss"):
            assert client.post(_url(alert, step), {"note": "x"}).status_code == 403
        alert.refresh_from_db()
        assert alert.status == AlertStatus.OPEN and not _status_records(alert).exists()

    def test_get_only_for_the_page_post_only_for_the_steps(self, alert, agent):
        client = verified_client(agent)
        assert client.post(_url(alert)).status_code == 405
        assert client.get(_url(alert, "acknowledge")).status_code == 405

    def test_a_step_without_the_csrf_token_is_refused(self, alert, agent):
        client = verified_client(agent)
        client.handler.enforce_csrf_checks = True
        assert client.post(_url(alert, "acknowledge")).status_code == 403
        alert.refresh_from_db()
        assert alert.status == AlertStatus.OPEN


class TestSteps:
    @pytest.mark.parametrize(
        "step, note, status, message",
        [
            ("acknowledge", "", AlertStatus.ACKNOWLEDGED, "Alert acknowledged."),
            ("resolve", "Customer confirmed; password reset.", AlertStatus.RESOLVED, "Alert resolved."),
            ("dismiss", "Customer's own new phone.", AlertStatus.DISMISSED, "Alert dismissed."),
        ],
    )
    def test_a_step_changes_the_alert_records_it_and_returns_to_the_page(
        self, alert, agent, step, note, status, message
    ):
        client = verified_client(agent)
        response = client.post(_url(alert, step), {"note": note})
        assert (response.status_code, response["Location"]) == (302, _url(alert))
        alert.refresh_from_db()
        assert alert.status == status
        (record,) = _status_records(alert)
        assert (record.actor, record.reason, record.changes["status"]["after"]) == (agent, note, status)
        page = client.get(response["Location"]).content.decode()
        assert message in _text(page)
        history = _text(_section(page, "history"))
        assert f"{AlertStatus(status).label} by agent" in history and note in history

    def test_a_step_the_status_does_not_allow_answers_409_and_changes_nothing(self, alert, agent, supervisor):
        alert_resolve(alert=alert, actor=supervisor, note="done")
        records = list(_status_records(alert))
        views = _views(alert).count()
        response = verified_client(agent).post(_url(alert, "dismiss"), {"note": "false positive"})
        assert response.status_code == 409
        assert "This alert is resolved: it can no longer be dismissed." in _text(
            _section(response.content.decode(), "step-errors")
        )
        alert.refresh_from_db()
        assert alert.status == AlertStatus.RESOLVED and alert.closed_by == supervisor
        assert list(_status_records(alert)) == records
        assert _views(alert).count() == views + 1  # the refusal showed the page: recorded too

    def test_acknowledging_twice_says_so(self, alert, agent):
        client = verified_client(agent)
        client.post(_url(alert, "acknowledge"))
        response = client.post(_url(alert, "acknowledge"))
        assert response.status_code == 409
        assert "This alert was already acknowledged." in _text(response.content.decode())

    def test_dismissing_without_a_note_answers_400_and_keeps_the_alert(self, alert, agent):
        response = verified_client(agent).post(_url(alert, "dismiss"), {"note": "   "})
        assert response.status_code == 400
        html = response.content.decode()
        assert "Say why the alert is dismissed." in _text(_section(html, "step-errors"))
        assert re.search(r'<textarea id="dismiss-note"[^>]*autofocus', html)
        alert.refresh_from_db()
        assert alert.status == AlertStatus.OPEN and not _status_records(alert).exists()

    def test_a_note_over_500_characters_answers_400_and_keeps_what_was_typed(self, alert, agent):
        response = verified_client(agent).post(_url(alert, "resolve"), {"note": "x" * 501})
        assert response.status_code == 400
        assert "x" * 501 in response.content.decode()
        alert.refresh_from_db()
        assert alert.status == AlertStatus.OPEN


def test_the_page_loads_its_script_as_a_module_and_nothing_inline(alert, agent):
    html = verified_client(agent).get(_url(alert)).content.decode()
    assert '<script type="module" src="/static/js/alert_detail.js"></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert " style=" not in html


def test_the_page_says_who_holds_the_alert_and_when_it_is_due(alert, agent, supervisor):
    from alerts.models import Alert
    from alerts.services import alert_claim

    due = dict(first_response_due_at=T0, resolution_due_at=T0 + timedelta(hours=8), sla_due_at=T0)
    Alert.objects.filter(pk=alert.pk).update(**due)  # as detection sets them (the factory does not)
    alert.refresh_from_db()
    page = verified_client(agent).get(_url(alert)).content.decode()
    assert 'data-testid="assignee"><span class="muted">Nobody yet</span>' in page
    alert_claim(alert=alert, actor=agent)
    assert 'data-testid="assignee">You<' in verified_client(agent).get(_url(alert)).content.decode()
    page = verified_client(supervisor).get(_url(alert)).content.decode()
    assert 'data-testid="assignee">agent<' in page
    assert 'data-testid="sla-due"><time datetime="' in page and "overdue" in page  # the resolution due, past


class TestHeldBySomeoneElse:
    """The page offers the lifecycle steps only to who may take them: the holder, anyone while
    nobody holds the alert, and a supervisor or admin of the tenant stepping in."""

    @pytest.fixture
    def agent2(self, tenant_a):
        from accounts.testing import make_staff

        return make_staff("agent2", role=Role.AGENT, tenants=[tenant_a], default_queue=True)

    @pytest.fixture
    def held(self, alert, agent2):
        from alerts.services import alert_claim

        alert_claim(alert=alert, actor=agent2)
        return alert

    @staticmethod
    def _actions(html: str) -> str:
        return html.split('id="actions-title"')[1].split("</aside>")[0]

    @staticmethod
    def _help(html: str) -> str:
        return html.split('id="shortcuts-title"')[1].split("</dialog>")[0]

    def test_another_agent_sees_who_holds_it_and_no_step(self, held, agent):
        html = verified_client(agent).get(_url(held)).content.decode()
        actions = self._actions(html)
        # No lifecycle step is offered (opening the customer's case is: it takes nothing from the holder).
        assert "/acknowledge/" not in actions and "/resolve/" not in actions and "/dismiss/" not in actions
        assert "<kbd>r</kbd>" not in actions and 'id="case-form"' in actions
        assert "agent2 holds this alert: only they or a supervisor can acknowledge, resolve or dismiss it." in _text(
            actions
        )
        assert 'data-held-by="agent2"' in html  # the keyboard says whose it is
        assert "<kbd>a</kbd>" not in self._help(html) and "<kbd>r</kbd>" not in self._help(html)
        assert "<kbd>d</kbd>" not in self._help(html)

    @pytest.mark.parametrize("step", ["acknowledge", "resolve", "dismiss"])
    def test_a_step_posted_anyway_answers_409_says_why_and_changes_nothing(self, held, agent, step):
        records = list(_status_records(held))
        views = _views(held).count()
        response = verified_client(agent).post(_url(held, step), {"note": "mine now"})
        assert response.status_code == 409
        html = response.content.decode()
        assert _text(_section(html, "step-errors")) == (
            f"agent2 holds this alert: only they or a supervisor may {step} it."
        )
        actions = self._actions(html)  # and the page offers no step
        assert "/acknowledge/" not in actions and "/resolve/" not in actions and "/dismiss/" not in actions
        held.refresh_from_db()
        assert (held.status, held.assignee.username) == (AlertStatus.OPEN, "agent2")
        assert list(_status_records(held)) == records
        assert _views(held).count() == views + 1

    def test_the_holder_sees_the_steps(self, held, agent2):
        html = verified_client(agent2).get(_url(held)).content.decode()
        assert [_url(held, s) in html for s in ("acknowledge", "resolve", "dismiss")] == [True, True, True]
        assert 'data-testid="held-by"' not in html and 'data-testid="stepping-in"' not in html
        assert "<kbd>r</kbd>" in self._help(html)

    def test_a_supervisor_steps_in_and_is_told_whose_alert_it_is(self, held, supervisor):
        client = verified_client(supervisor)
        html = client.get(_url(held)).content.decode()
        assert [_url(held, s) in html for s in ("acknowledge", "resolve", "dismiss")] == [True, True, True]
        assert "agent2 holds this alert; your role lets you act on it, and it stays theirs." in _text(
            self._actions(html)
        )
        response = client.post(_url(held, "resolve"), {"note": "Closed for the team."})
        assert response.status_code == 302
        held.refresh_from_db()
        assert (held.status, held.assignee.username, held.closed_by) == (AlertStatus.RESOLVED, "agent2", supervisor)

    def test_a_final_alert_says_it_is_final_not_whose_it_is(self, held, agent, agent2):
        alert_resolve(alert=held, actor=agent2, note="secured")
        html = verified_client(agent).get(_url(held)).content.decode()
        assert "This alert is resolved: there is nothing left to do." in _text(html)
        assert 'data-testid="held-by"' not in html


def test_the_history_names_claims_releases_and_assignments(alert, agent, supervisor, tenant_a):
    from accounts.testing import make_staff
    from alerts.services import alert_claim, alert_reassign, alert_release

    other = make_staff("agent2", role=Role.AGENT, tenants=[tenant_a], default_queue=True)
    alert_claim(alert=alert, actor=agent)
    alert_release(alert=alert, actor=agent)
    alert_reassign(alert=alert, actor=supervisor, to=other)
    html = verified_client(supervisor).get(_url(alert)).content.decode()
    history = [_text(li) for li in re.findall(r"<li>(.*?)</li>", _section(html, "history"), re.S)]
    assert [h.split(" ", 2)[2] for h in history] == [
        "Assigned by supervisor (assignee: nobody → agent2)",
        "Released by agent (assignee: agent → nobody)",
        "Claimed by agent (assignee: nobody → agent)",
        "Raised by AlertDesk",
    ]

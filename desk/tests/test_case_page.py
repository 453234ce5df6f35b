"""The case page: the caller's verification state, masked contacts (a field shown in clear only to
whoever revealed it, with a reason, for a few minutes), the alerts, the playbook, notes and the
timeline in pages whose cost does not grow with the history; each step from the page and each
refusal; "Open case" from the alert page; the supervisors' concerns and a tenant admin's playbooks."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.utils import timezone

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.tests.factories import AccountEventFactory, AlertFactory, CustomerFactory
from audit.models import Action, AuditEvent
from desk import case_views
from desk.models import (
    AccountAction,
    Case,
    CaseAlert,
    CaseNote,
    CaseReveal,
    ConcernStatus,
    PlaybookCheck,
    PlaybookOverride,
    SecurityConcern,
    Verification,
)
from desk.selectors import TIMELINE_KINDS
from desk.services import case_note_add, case_open, case_share, concern_raise
from desk.tests.conftest import EMAIL, NAME, PHONE

pytestmark = pytest.mark.django_db


def _url(case, step=""):
    return f"/cases/{case.pk}/" + (f"{step}/" if step else "")


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip())


def _testid(html: str, testid: str) -> str:
    match = re.search(rf'<(\w+)[^>]*data-testid="{testid}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, testid
    return _text(match.group(2))


def _verify(case):
    Case.objects.filter(pk=case.pk).update(verified_until=timezone.now() + timedelta(minutes=30))


class TestThePage:
    def test_shows_the_customer_masked_and_not_verified_in_plain_words(self, case_a, alert_a, agent):
        response = verified_client(agent).get(_url(case_a))
        assert response.status_code == 200
        html = response.content.decode()
        assert _testid(html, "verification").startswith("Not verified")
        assert 'class="verification not-verified"' in html
        assert (_testid(html, "contact-email"), _testid(html, "contact-phone")) == ("a***@e***", "+***78")
        assert EMAIL not in html and PHONE not in html and NAME not in html
        assert f"Two-factor change #{alert_a.pk}" in _testid(html, "case-alerts")
        assert 'data-testid="checklist-two_factor"' in html and "Never ask for" in html
        assert "Case opened (from an alert)" in _testid(html, "timeline")
        assert "js/case.js" in html and "<script>" not in html  # a module from 'self', nothing inline
        view = AuditEvent.objects.get(action=Action.VIEW, target_type="desk.case", target_id=str(case_a.pk))
        assert view.actor == agent

    def test_a_verified_customer_reads_verified_with_its_deadline(self, case_a, agent):
        _verify(case_a)
        html = verified_client(agent).get(_url(case_a)).content.decode()
        assert _testid(html, "verification").startswith("Verified") and "valid until" in _testid(html, "verification")

    def test_a_revealed_field_is_shown_to_whoever_revealed_it_until_it_expires(self, case_a, agent, supervisor):
        boss = verified_client(supervisor)
        response = boss.post(
            _url(case_a, "reveal"), {"field": "email", "reason_code": "concern_review", "reason": "Concern #4"}
        )
        assert (response.status_code, response["Location"]) == (302, _url(case_a) + "#customer")
        shown = boss.get(_url(case_a))
        html = shown.content.decode()
        assert _testid(html, "revealed-email").startswith(EMAIL) and shown["Cache-Control"] == "no-store"
        assert "Revealed the email address" in _testid(html, "timeline") and "Concern #4" in _testid(html, "timeline")
        assert EMAIL not in verified_client(agent).get(_url(case_a)).content.decode()  # the agent sees who, not what
        CaseReveal.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        assert EMAIL not in boss.get(_url(case_a)).content.decode()
        shown = AuditEvent.objects.filter(target_type="desk.case_revealed")
        assert shown.count() == 1 and shown.get().metadata["fields"] == ["email"]

    def test_the_timeline_is_paged_and_its_cost_does_not_grow_with_the_history(
        self, case_a, alert_a, agent, django_assert_max_num_queries
    ):
        client = verified_client(agent)
        client.get(_url(case_a))  # warm the session
        with django_assert_max_num_queries(30) as short:
            assert client.get(_url(case_a)).status_code == 200
        for i in range(40):
            AccountEventFactory(customer=case_a.customer, occurred_at=timezone.now() - timedelta(minutes=i))
            case_note_add(actor=agent, case=case_a, body=f"note {i}")
            concern_raise(actor=agent, case=case_a, kind="other", note="")
            case_open(actor=agent, alert=AlertFactory(customer=case_a.customer))
        with django_assert_max_num_queries(len(short)):
            response = client.get(_url(case_a))
        html = response.content.decode()
        assert html.count('class="timeline-item') == 25
        older = re.search(r'href="([^"]+)" data-testid="timeline-older"', html).group(1)
        page_two = client.get(unescape(older))
        assert page_two.status_code == 200 and "Newest" in page_two.content.decode()
        assert client.get(_url(case_a) + "?cursor=bogus").status_code == 404


def _history(case, agent, n: int) -> None:
    """`n` more timeline entries on the case, of every kind the timeline shows, and as many
    verifications and account actions beside it (the page lists the latest)."""
    now = timezone.now()
    at = [now - timedelta(minutes=i + 1) for i in range(n)]
    per = n // 6
    for i in range(per):
        AccountEventFactory(customer=case.customer, occurred_at=at[i])
    alerts = [AlertFactory(customer=case.customer, status="resolved", first_seen_at=at[per + i]) for i in range(per)]
    CaseAlert.objects.bulk_create(
        CaseAlert(case=case, alert=a, added_at=a.first_seen_at, alert_seen_at=a.first_seen_at) for a in alerts
    )
    CaseNote.objects.bulk_create(
        CaseNote(case=case, author=agent, body=f"note {i}", created_at=at[2 * per + i]) for i in range(per)
    )
    CaseReveal.objects.bulk_create(
        CaseReveal(case=case, actor=agent, field="email", reason_code="other", reason_text="why",
                   created_at=at[3 * per + i], expires_at=at[3 * per + i] + timedelta(seconds=1))
        for i in range(per)
    )  # fmt: skip
    SecurityConcern.objects.bulk_create(
        SecurityConcern(tenant=case.tenant, case=case, raised_by=agent, kind="other", created_at=at[4 * per + i])
        for i in range(per)
    )
    for i in range(n - 5 * per):  # the case's own history, in the audit trail
        case_note_add(actor=agent, case=case, body=f"more {i}")
    Verification.objects.bulk_create(
        Verification(tenant=case.tenant, case=case, customer=case.customer, method="otp", channel="sms",
                     strength="strong", state="expired", requested_by=agent, created_at=at[i], expires_at=at[i])
        for i in range(20)
    )  # fmt: skip
    AccountAction.objects.bulk_create(
        AccountAction(tenant=case.tenant, case=case, customer=case.customer, action="lock", state="failed",
                      requested_by=agent, requested_at=at[i], updated_at=at[i])
        for i in range(30)
    )  # fmt: skip


class TestItsCost:
    def test_the_same_statements_for_a_case_with_3_and_with_300_timeline_entries(
        self, tenant_a, agent, django_assert_max_num_queries
    ):
        short, _ = case_open(actor=agent, alert=AlertFactory(customer=CustomerFactory(tenant=tenant_a), evidence=[]))
        case_note_add(actor=agent, case=short, body="Called back.")  # opened, its alert, a note: 3 entries
        long, _ = case_open(actor=agent, alert=AlertFactory(customer=CustomerFactory(tenant=tenant_a)))
        _history(long, agent, 300)
        client = verified_client(agent)
        client.get(_url(short))  # warm the session and the caches
        with django_assert_max_num_queries(40) as few:
            html = client.get(_url(short)).content.decode()
        assert html.count('class="timeline-item') == 3
        # The timeline reads one statement to pick its page, then one per kind of entry on it (the short
        # case's page shows three: its opening, its alert, a note), so no page ever costs more than
        # this, however long the history.
        budget = len(few) - 3 + len(TIMELINE_KINDS)
        with django_assert_max_num_queries(budget):
            html = client.get(_url(long)).content.decode()
        assert html.count('class="timeline-item') == 25 and 'data-testid="timeline-older"' in html
        older = unescape(re.search(r'href="([^"]+)" data-testid="timeline-older"', html).group(1))
        for _ in range(5):  # deeper pages: within the same budget again
            with django_assert_max_num_queries(budget):
                html = client.get(older).content.decode()
            assert html.count('class="timeline-item') == 25
            older = unescape(re.search(r'href="([^"]+)" data-testid="timeline-older"', html).group(1))


class TestRefusals:
    def test_another_tenants_or_an_ungranted_queues_case_is_a_404(self, case_a, agent_b, specialist, tenant_b):
        assert verified_client(agent_b).get(_url(case_a)).status_code == 404
        assert verified_client(specialist).get(_url(case_a)).status_code == 404

    def test_a_shared_case_opens_for_that_specialist_only(self, case_a, specialist, supervisor, tenant_a):
        case_share(actor=supervisor, case=case_a, user=specialist)
        assert verified_client(specialist).get(_url(case_a)).status_code == 200
        other = make_staff("other-specialist", role=Role.AGENT, tenants=[tenant_a])
        assert verified_client(other).get(_url(case_a)).status_code == 404

    def test_a_password_only_session_is_sent_to_the_code_step(self, case_a, password_only_client):
        response = password_only_client.get(_url(case_a))
        assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/")
        assert password_only_client.post(_url(case_a, "notes"), {"body": "x"}).status_code == 302
        assert not CaseNote.objects.exists()

    def test_a_step_without_the_csrf_token_is_refused(self, case_a, agent):
        client = verified_client(agent)
        client.handler.enforce_csrf_checks = True
        assert client.post(_url(case_a, "notes"), {"body": "hello"}).status_code == 403
        assert not CaseNote.objects.exists()

    def test_get_for_the_page_post_for_the_steps(self, case_a, agent):
        client = verified_client(agent)
        assert client.post(_url(case_a)).status_code == 405
        assert client.get(_url(case_a, "notes")).status_code == 405


class TestSteps:
    def test_note_claim_status_check_concern_and_resolve(self, case_a, agent):
        client = verified_client(agent)
        assert client.post(_url(case_a, "notes"), {"body": "Called back on file."}).status_code == 302
        assert client.post(_url(case_a, "claim")).status_code == 302
        assert client.post(_url(case_a, "status"), {"status": "waiting_on_customer"}).status_code == 302
        check = {"alert_type": "two_factor", "step": "caller_verified"}
        assert client.post(_url(case_a, "playbook/check"), check).status_code == 302
        assert client.post(_url(case_a, "concerns"), {"kind": "social_engineering", "note": "Pushy"}).status_code == 302
        html = client.get(_url(case_a)).content.decode()
        assert _testid(html, "case-status") == "Waiting on the customer" and _testid(html, "case-assignee") == "You"
        assert "✓ agent" in html
        timeline = _testid(html, "timeline")
        for line in ("Called back on file.", "Claimed the case", "Status: Waiting on the customer",
                     "Checked: Verify the caller", "Suspected social engineering"):  # fmt: skip
            assert line in timeline, line
        done = client.post(_url(case_a, "resolve"), {"outcome": "account_secured", "note": ""})
        assert done.status_code == 302
        html = client.get(_url(case_a)).content.decode()
        assert _testid(html, "case-outcome") == "Account secured" and 'id="claim-form"' not in html

    @pytest.mark.parametrize(
        ("step", "data", "status"),
        [
            ("notes", {"body": ""}, 400),
            ("notes", {"body": "x" * 2001}, 400),
            ("status", {"status": "resolved"}, 400),
            ("resolve", {"outcome": ""}, 400),
            ("resolve", {"outcome": "false_positive", "note": ""}, 400),
            ("reveal", {"field": "email", "reason_code": "other", "reason": ""}, 400),
            ("reveal", {"field": "email", "reason_code": "", "reason": "Why not"}, 400),
            ("reveal", {"field": "email", "reason_code": "other", "reason": "Read it back"}, 403),
            ("concerns", {"kind": "nonsense"}, 400),
            ("playbook/check", {"alert_type": "two_factor", "step": "nope"}, 400),
        ],
    )
    def test_a_refused_step_shows_the_page_with_why_and_changes_nothing(self, case_a, agent, step, data, status):
        response = verified_client(agent).post(_url(case_a, step), data)
        assert response.status_code == status
        html = response.content.decode()
        assert 'role="alert"' in html and 'data-testid="case-page"' in html
        case_a.refresh_from_db()
        assert case_a.status == "open" and case_a.first_response_at is None
        assert not (CaseNote.objects.exists() or CaseReveal.objects.exists() or SecurityConcern.objects.exists()
                    or PlaybookCheck.objects.exists())  # fmt: skip
        assert EMAIL not in html

    def test_the_reveal_refusal_says_why(self, case_a, agent):
        html = (
            verified_client(agent)
            .post(_url(case_a, "reveal"), {"field": "phone", "reason_code": "other", "reason": "Read it back"})
            .content.decode()
        )
        assert "not verified" in _testid(html, "reveal-errors")

    def test_a_claimed_case_answers_409_to_another(self, case_a, agent, supervisor):
        verified_client(agent).post(_url(case_a, "claim"))
        response = verified_client(supervisor).post(_url(case_a, "claim"))
        assert response.status_code == 409 and "agent holds this case." in _testid(
            response.content.decode(), "step-errors"
        )

    def test_sharing_is_for_supervisors(self, case_a, agent, supervisor, specialist):
        assert verified_client(agent).post(_url(case_a, "share"), {"username": "specialist"}).status_code == 403
        assert verified_client(supervisor).post(_url(case_a, "share"), {"username": "nobody"}).status_code == 400
        assert verified_client(supervisor).post(_url(case_a, "share"), {"username": "specialist"}).status_code == 302
        assert verified_client(specialist).get(_url(case_a)).status_code == 200
        assert verified_client(supervisor).post(_url(case_a, "unshare"), {"username": "specialist"}).status_code == 302
        assert verified_client(specialist).get(_url(case_a)).status_code == 404


class TestFromTheAlertPage:
    def test_open_case_opens_it_and_the_alert_page_then_links_to_it(self, alert_a, agent):
        client = verified_client(agent)
        html = client.get(f"/alerts/{alert_a.pk}/").content.decode()
        assert 'id="case-form"' in html and "<kbd>o</kbd>" in html
        response = client.post(f"/alerts/{alert_a.pk}/case/")
        case = Case.objects.get(customer=alert_a.customer)
        assert (response.status_code, response["Location"]) == (302, _url(case))
        html = client.get(f"/alerts/{alert_a.pk}/").content.decode()
        assert f"Case #{case.pk} is open for this customer." in _testid(html, "open-case")

    def test_a_case_in_a_queue_the_agent_does_not_work_is_refused_with_the_alert_page(
        self, specialist, takeover_alert, agent
    ):
        case_open(actor=specialist, alert=takeover_alert)
        routine = AlertFactory(customer=takeover_alert.customer)
        response = verified_client(agent).post(f"/alerts/{routine.pk}/case/")
        assert response.status_code == 403 and "supervisor to share" in response.content.decode()
        assert Case.objects.get().alerts.count() == 1

    def test_another_tenants_alert_is_a_404(self, tenant_b, agent):
        foreign = AlertFactory(customer=CustomerFactory(tenant=tenant_b))
        assert verified_client(agent).post(f"/alerts/{foreign.pk}/case/").status_code == 404
        assert not Case.objects.exists()


class TestConcernsAndPlaybooks:
    def test_supervisors_review_concerns_and_agents_get_a_404(self, case_a, agent, supervisor):
        concern = concern_raise(actor=agent, case=case_a, kind="phishing", note="Sent a link")
        assert verified_client(agent).get("/concerns/").status_code == 404
        client = verified_client(supervisor)
        html = client.get("/concerns/").content.decode()
        assert f"Case #{case_a.pk}" in html and "Suspected phishing" in html
        assert verified_client(agent).post(f"/concerns/{concern.pk}/review/", {"note": "x"}).status_code == 404
        assert client.post(f"/concerns/{concern.pk}/review/", {"note": "Known pattern"}).status_code == 302
        concern.refresh_from_db()
        assert (concern.status, concern.reviewed_by) == (ConcernStatus.REVIEWED, supervisor)
        assert 'data-testid="no-concerns"' in client.get("/concerns/").content.decode()

    def test_a_tenant_admin_edits_the_tenants_playbook_and_no_one_else_may(self, tenant_a, supervisor, agent):
        admin = make_staff("tenant-admin", role=Role.ADMIN, tenants=[tenant_a])
        for user in (supervisor, agent):
            assert verified_client(user).get("/playbooks/login/").status_code == 404
        client = verified_client(admin)
        assert "Login from a new device" in client.get("/playbooks/").content.decode()
        assert client.get("/playbooks/nope/").status_code == 404
        form = client.get("/playbooks/login/").content.decode()
        assert "Verify the caller before you disclose" in form
        data = {"verify": "Call back on the number on file\n\n", "tell": "", "never_ask": "Their PIN",
                "customer_steps": "Sign in from the app", "action": "save"}  # fmt: skip
        assert client.post("/playbooks/login/", {**data, "verify": " "}).status_code == 400
        assert client.post("/playbooks/login/", data).status_code == 302
        own = PlaybookOverride.objects.get(tenant=tenant_a, alert_type="login")
        assert (own.verify, own.never_ask) == (["Call back on the number on file"], ["Their PIN"])
        assert client.post("/playbooks/login/", {"action": "reset"}).status_code == 302
        assert not PlaybookOverride.objects.exists()


_CASE_PAGE_FORMS = {
    "reveal": lambda: case_views.RevealForm(),
    "reveal, bound, invalid": lambda: case_views.RevealForm({"field": "phone", "reason_code": "x", "reason": "<b>"}),
    "verification": lambda: case_views.VerificationForm(),
    "verification, invalid": lambda: case_views.VerificationForm({"channel": "nope"}),
    "status, initial": lambda: case_views.StatusForm(initial={"status": "waiting_on_customer"}),
    "close, bound": lambda: case_views.CloseForm({"outcome": "account_secured"}),
    "concern": lambda: case_views.ConcernForm(),
}


@pytest.mark.parametrize("make", _CASE_PAGE_FORMS.values(), ids=_CASE_PAGE_FORMS.keys())
def test_the_case_pages_controls_are_the_forms_own_widgets(make):
    """The page writes its controls without the widget templates (desk_tags.form_control): the same
    markup as Django's rendering of each field, bound or not, valid or not."""
    from desk.templatetags.desk_tags import form_control

    form = make()
    form.is_valid()
    for name in form.fields:
        assert form_control(form[name]) == str(form[name]), name

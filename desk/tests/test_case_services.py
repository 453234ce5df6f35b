"""Cases are written only through the services: opened from an alert or by the customer's "No, it
wasn't me", at most one open per customer, with notes, status and outcome, claims, shares, reveals,
concerns and playbook checks; each audited in its transaction and announced after commit."""

import time
from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Role
from accounts.testing import make_staff
from alerts.models import Alert, AlertType, Severity
from alerts.signals import alert_disowned
from alerts.sla import DEFAULT_SLA
from alerts.tests.factories import AlertFactory, CustomerFactory
from audit.models import Action, AuditEvent
from desk.models import (
    Case,
    CaseAlert,
    CaseOpenedVia,
    CaseOutcome,
    CaseReveal,
    CaseStatus,
    ConcernStatus,
    PlaybookCheck,
    Queue,
    SecurityConcern,
)
from desk.playbooks import NEVER_ASK, PLAYBOOKS
from desk.selectors import case_checklists, case_get_for, case_list_for, playbook_checklist
from desk.services import (
    CaseConflict,
    CaseNotVisible,
    RevealRefused,
    case_claim,
    case_close,
    case_note_add,
    case_open,
    case_reveal,
    case_share,
    case_status_set,
    case_unshare,
    concern_raise,
    concern_review,
    playbook_override_clear,
    playbook_override_set,
    playbook_step_check,
)
from desk.tests.conftest import EMAIL, NAME, PHONE

pytestmark = pytest.mark.django_db


def _records(case, **filters):
    return AuditEvent.objects.filter(target_type="desk.case", target_id=str(case.pk), **filters).order_by("id")


def _verify(case, minutes=30):
    """What the verification work will do: the caller is the customer until then."""
    Case.objects.filter(pk=case.pk).update(verified_until=timezone.now() + timedelta(minutes=minutes))
    case.refresh_from_db()


class TestOpening:
    def test_an_alert_opens_its_customers_case_in_its_queue_with_the_sla_of_its_severity(self, alert_a, agent):
        before = timezone.now()
        case, opened = case_open(actor=agent, alert=alert_a)
        assert opened and case.status == CaseStatus.OPEN and case.outcome == ""
        assert (case.customer, case.tenant, case.opened_via, case.opened_by) == (
            alert_a.customer, alert_a.tenant, CaseOpenedVia.ALERT, agent,
        )  # fmt: skip
        assert case.queue == Queue.objects.get(tenant=alert_a.tenant, is_default=True)
        assert list(case.alerts.all()) == [alert_a] and case.severity == Severity.HIGH
        first, resolution = DEFAULT_SLA[Severity.HIGH]
        assert case.first_response_due_at == case.opened_at + timedelta(minutes=first)
        assert case.resolution_due_at == case.opened_at + timedelta(minutes=resolution)
        assert case.sla_due_at == case.first_response_due_at and case.opened_at >= before
        record = _records(case).get()
        assert (record.action, record.actor, record.metadata) == (
            Action.CREATE,
            agent,
            {"event": "opened", "alert": alert_a.pk},
        )

    def test_opening_again_returns_the_open_case_and_adds_the_alert(self, case_a, alert_a, agent, supervisor):
        again, opened = case_open(actor=agent, alert=alert_a)
        assert (again.pk, opened) == (case_a.pk, False)
        critical = AlertFactory(customer=alert_a.customer, severity=Severity.CRITICAL)
        same, opened = case_open(actor=supervisor, alert=critical)
        assert (same.pk, opened) == (case_a.pk, False)
        assert set(same.alerts.values_list("pk", flat=True)) == {alert_a.pk, critical.pk}
        # A more severe alert brings the due times forward (never back).
        assert same.severity == Severity.CRITICAL
        assert same.first_response_due_at == case_a.opened_at + timedelta(minutes=DEFAULT_SLA[Severity.CRITICAL][0])
        assert [r.metadata["event"] for r in _records(case_a)] == ["opened", "alert_added"]
        assert Case.objects.filter(customer=alert_a.customer).count() == 1

    def test_a_resolved_case_leaves_room_for_a_new_one(self, case_a, alert_a, agent):
        case_close(actor=agent, case=case_a, outcome=CaseOutcome.ACCOUNT_SECURED)
        new, opened = case_open(actor=agent, alert=alert_a)
        assert opened and new.pk != case_a.pk

    def test_an_alert_about_no_single_account_has_no_case(self, tenant_a, agent):
        stuffing = AlertFactory(customer=None, tenant=tenant_a, evidence=[])
        with pytest.raises(ValidationError):
            case_open(actor=agent, alert=stuffing)
        assert not Case.objects.exists()

    def test_an_open_case_in_a_queue_the_agent_does_not_work_is_not_theirs_to_add_to(
        self, specialist, takeover_alert, agent
    ):
        # The customer's case is in the takeover queue; the default queue's agent sees their new alert.
        case, _ = case_open(actor=specialist, alert=takeover_alert)
        routine = AlertFactory(customer=takeover_alert.customer, severity=Severity.MEDIUM)
        with pytest.raises(CaseNotVisible):
            case_open(actor=agent, alert=routine)
        assert list(case.alerts.all()) == [takeover_alert]
        assert case.queue.slug == "takeover"

    def test_opening_is_announced_after_commit_with_ids_and_states_only(
        self, alert_a, agent, django_capture_on_commit_callbacks
    ):
        with mock.patch("config.push.changes_append") as append:
            with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
                case, _ = case_open(actor=agent, alert=alert_a)
                append.assert_not_called()
        (changes,), _ = append.call_args
        at = changes[0].pop("at")  # when it was committed: a case page rendered later shows it already
        assert abs(at - time.time()) < 60
        assert changes == [
            {"kind": "case", "tenant": case.tenant_id, "id": case.pk, "queue": case.queue_id, "status": "open",
             "assignee": None}
        ]  # fmt: skip

    def test_a_rolled_back_opening_announces_nothing(self, alert_a, agent, django_capture_on_commit_callbacks):
        with mock.patch("config.push.changes_append") as append, django_capture_on_commit_callbacks(execute=True):
            with pytest.raises(RuntimeError), transaction.atomic():
                case_open(actor=agent, alert=alert_a)
                raise RuntimeError
        append.assert_not_called()
        assert not Case.objects.exists()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_concurrent_openings_for_one_customer_make_one_case(tenant_a, agent, supervisor):
    from config.testing import race

    customer = CustomerFactory(tenant=tenant_a)
    first, second = AlertFactory(customer=customer), AlertFactory(customer=customer)
    results = race(lambda: case_open(actor=agent, alert=first), lambda: case_open(actor=supervisor, alert=second))
    assert sorted(opened for _, opened in results) == [False, True]
    case = Case.objects.get(customer=customer)
    assert set(case.alerts.values_list("pk", flat=True)) == {first.pk, second.pk}


class TestTheCustomersAnswer:
    def test_no_it_wasnt_me_opens_the_case_with_nobody_as_its_opener(self, alert_a):
        alert_disowned.send(sender=Alert, alert_id=alert_a.pk)
        case = Case.objects.get(customer=alert_a.customer)
        assert (case.opened_via, case.opened_by, case.status) == (CaseOpenedVia.CUSTOMER_ANSWER, None, "open")
        record = _records(case).get()
        assert (record.action, record.actor, record.metadata["event"]) == (Action.CREATE, None, "customer_disowned")

    def test_the_answer_reopens_a_case_waiting_on_the_customer(self, case_a, alert_a, agent):
        case_status_set(actor=agent, case=case_a, status=CaseStatus.WAITING_ON_CUSTOMER)
        other = AlertFactory(customer=alert_a.customer)
        alert_disowned.send(sender=Alert, alert_id=other.pk)
        case_a.refresh_from_db()
        assert case_a.status == CaseStatus.OPEN
        assert set(case_a.alerts.values_list("pk", flat=True)) == {alert_a.pk, other.pk}
        last = _records(case_a).last()
        assert last.metadata == {"event": "customer_disowned", "alert": other.pk}
        assert last.changes == {"status": {"before": "waiting_on_customer", "after": "open"}}

    def test_an_unknown_alert_changes_nothing(self, db):
        alert_disowned.send(sender=Alert, alert_id=987654)
        assert not Case.objects.exists()


class TestWorking:
    def test_a_note_is_the_first_response_and_its_text_stays_out_of_the_trail(self, case_a, agent):
        note = case_note_add(actor=agent, case=case_a, body="  Customer called back from the number on file. ")
        case_a.refresh_from_db()
        assert note.body == "Customer called back from the number on file."
        assert case_a.first_response_at == note.created_at and case_a.sla_due_at == case_a.resolution_due_at
        record = AuditEvent.objects.get(target_type="desk.casenote", target_id=str(note.pk))
        assert record.metadata == {"case": case_a.pk} and "number on file" not in str(record.changes)

    @pytest.mark.parametrize("body", ["", "   ", "x" * 2001])
    def test_an_empty_or_huge_note_is_refused(self, case_a, agent, body):
        with pytest.raises(ValidationError):
            case_note_add(actor=agent, case=case_a, body=body)
        assert not case_a.notes.exists()

    def test_status_moves_between_open_and_waiting_and_closing_needs_an_outcome(self, case_a, agent):
        assert (
            case_status_set(actor=agent, case=case_a, status=CaseStatus.WAITING_ON_CUSTOMER).status
            == "waiting_on_customer"
        )
        assert case_status_set(actor=agent, case=case_a, status=CaseStatus.OPEN).status == "open"
        with pytest.raises(ValidationError):
            case_status_set(actor=agent, case=case_a, status=CaseStatus.RESOLVED)
        with pytest.raises(ValidationError):
            case_close(actor=agent, case=case_a, outcome="fixed")
        with pytest.raises(ValidationError):  # a false positive says why
            case_close(actor=agent, case=case_a, outcome=CaseOutcome.FALSE_POSITIVE, note=" ")
        closed = case_close(actor=agent, case=case_a, outcome=CaseOutcome.FALSE_POSITIVE, note="Customer travelling.")
        assert (closed.status, closed.outcome, closed.closed_by, closed.sla_due_at) == (
            "resolved", "false_positive", agent, None,
        )  # fmt: skip
        with pytest.raises(CaseConflict):
            case_close(actor=agent, case=case_a, outcome=CaseOutcome.ACCOUNT_SECURED)
        with pytest.raises(CaseConflict):
            case_status_set(actor=agent, case=case_a, status=CaseStatus.OPEN)
        statuses = [r.changes["status"]["after"] for r in _records(case_a, metadata__event="status")]
        assert statuses == ["waiting_on_customer", "open", "resolved"]
        assert _records(case_a, metadata__event="status").last().reason == "Customer travelling."

    def test_one_staff_member_holds_a_case(self, case_a, agent, supervisor):
        assert case_claim(actor=agent, case=case_a).assignee == agent
        assert case_claim(actor=agent, case=case_a).assignee == agent  # again: no change
        with pytest.raises(CaseConflict, match="agent holds this case"):
            case_claim(actor=supervisor, case=case_a)
        assert _records(case_a, metadata__event="claimed").count() == 1


class TestSharing:
    def test_a_supervisor_shares_one_case_with_a_specialist_and_takes_it_back(
        self, case_a, specialist, supervisor, django_capture_on_commit_callbacks
    ):
        assert not case_list_for(user=specialist).filter(pk=case_a.pk).exists()
        with mock.patch("config.push._send") as send, django_capture_on_commit_callbacks(execute=True):
            case_share(actor=supervisor, case=case_a, user=specialist)
        assert send.call_args.args[0] == [(f"user.{specialist.pk}", {"type": "access.changed"})]
        assert list(case_list_for(user=specialist)) == [case_a]
        case_share(actor=supervisor, case=case_a, user=specialist)  # twice: no change
        case_unshare(actor=supervisor, case=case_a, user=specialist)
        assert not case_list_for(user=specialist).exists()
        events = [(r.metadata["event"], r.actor) for r in _records(case_a) if r.metadata["event"] != "opened"]
        assert events == [("shared", supervisor), ("unshared", supervisor)]

    def test_only_a_supervisor_shares_and_only_with_staff_of_the_tenant(
        self, case_a, specialist, agent, supervisor, agent_b
    ):
        with pytest.raises(PermissionDenied):
            case_share(actor=agent, case=case_a, user=specialist)
        with pytest.raises(ValidationError):
            case_share(actor=supervisor, case=case_a, user=agent_b)
        with pytest.raises(ValidationError):
            case_share(actor=supervisor, case=case_a, user=None)
        with pytest.raises(PermissionDenied):
            case_unshare(actor=agent, case=case_a, user=specialist)
        assert not case_list_for(user=specialist).exists() and not case_list_for(user=agent_b).exists()


class TestReveal:
    def test_without_a_reason_nothing_is_revealed(self, case_a, supervisor):
        for code, text in (("other", ""), ("other", "   "), ("", "Customer asked"), ("nonsense", "Customer asked")):
            with pytest.raises(ValidationError):
                case_reveal(actor=supervisor, case=case_a, field="email", reason_code=code, reason_text=text)
        with pytest.raises(ValidationError):
            case_reveal(actor=supervisor, case=case_a, field="password", reason_code="other", reason_text="Why not")
        assert not CaseReveal.objects.exists() and not AuditEvent.objects.filter(action=Action.REVEAL).exists()

    def test_an_agent_is_refused_until_the_customer_is_verified(self, case_a, agent):
        with pytest.raises(RevealRefused):
            case_reveal(
                actor=agent, case=case_a, field="email", reason_code="confirm_with_customer", reason_text="Read back"
            )
        assert not CaseReveal.objects.exists()
        _verify(case_a)
        value, reveal = case_reveal(
            actor=agent, case=case_a, field="phone", reason_code="confirm_with_customer", reason_text="Read it back"
        )
        assert value == PHONE and reveal.expires_at == reveal.created_at + timedelta(minutes=5)

    def test_an_expired_verification_is_no_verification(self, case_a, agent):
        Case.objects.filter(pk=case_a.pk).update(verified_until=timezone.now() - timedelta(seconds=1))
        case_a.refresh_from_db()
        with pytest.raises(RevealRefused):
            case_reveal(actor=agent, case=case_a, field="email", reason_code="other", reason_text="Read back")

    def test_a_supervisor_may_reveal_before_verification_and_the_trail_keeps_the_reason_not_the_value(
        self, case_a, supervisor
    ):
        value, _ = case_reveal(
            actor=supervisor,
            case=case_a,
            field="display_name",
            reason_code="concern_review",
            reason_text="Checking #12",
        )
        assert value == NAME
        record = AuditEvent.objects.get(action=Action.REVEAL)
        assert (record.actor, record.tenant, record.target_type, record.target_id) == (
            supervisor, case_a.tenant, "desk.case", str(case_a.pk),
        )  # fmt: skip
        assert record.reason == "Review of a security concern: Checking #12"
        assert record.metadata["field"] == "display_name" and record.metadata["allowed_as"] == "supervisor"
        everything = str(list(AuditEvent.objects.values()))
        assert NAME not in everything and EMAIL not in everything and PHONE not in everything


class TestConcerns:
    def test_any_agent_raises_a_concern_that_reaches_the_supervisors_live(
        self, case_a, agent, supervisor, django_capture_on_commit_callbacks
    ):
        with mock.patch("config.push._send") as send, django_capture_on_commit_callbacks(execute=True):
            concern = concern_raise(
                actor=agent, case=case_a, kind="social_engineering", note="Caller pushed for a reset"
            )
        group = f"supervisors.{case_a.tenant_id}"
        message = {
            "type": "concern.raised",
            "group": group,
            "payload": {"id": concern.pk, "case": case_a.pk, "kind": "social_engineering"},
        }
        assert send.call_args.args[0] == [(group, message)]
        assert concern.status == ConcernStatus.OPEN
        assert AuditEvent.objects.filter(action=Action.CREATE, target_type="desk.securityconcern").count() == 1
        with pytest.raises(PermissionDenied):
            concern_review(actor=agent, concern=concern)
        reviewed = concern_review(actor=supervisor, concern=concern, note="Known fraud pattern; client told.")
        assert (reviewed.status, reviewed.reviewed_by) == (ConcernStatus.REVIEWED, supervisor)

    @pytest.mark.parametrize(("kind", "note"), [("smishing", ""), ("", ""), ("phishing", "x" * 1001)])
    def test_a_malformed_concern_is_refused(self, case_a, agent, kind, note):
        with pytest.raises(ValidationError):
            concern_raise(actor=agent, case=case_a, kind=kind, note=note)
        assert not SecurityConcern.objects.exists()


class TestPlaybooks:
    def test_every_alert_type_has_a_safe_default(self):
        assert set(PLAYBOOKS) == set(AlertType.values)
        for alert_type, playbook in PLAYBOOKS.items():
            checklist = playbook.checklist()
            assert checklist.steps[0].key == "caller_verified", alert_type
            assert set(NEVER_ASK) <= set(checklist.never_ask) and checklist.customer_steps, alert_type
            keys = [step.key for step in checklist.steps]
            assert len(keys) == len(set(keys)), alert_type

    def test_ticking_a_step_records_who_and_when_once(self, case_a, agent, supervisor):
        (checklist,) = case_checklists(case=case_a)
        step = checklist.steps[1]
        check = playbook_step_check(actor=agent, case=case_a, alert_type="two_factor", step_key=step.key)
        assert (check.checked_by, check.step_text) == (agent, step.text)
        again = playbook_step_check(actor=supervisor, case=case_a, alert_type="two_factor", step_key=step.key)
        assert again.pk == check.pk and again.checked_by == agent
        assert AuditEvent.objects.filter(action=Action.CREATE, target_type="desk.playbookcheck").count() == 1

    @pytest.mark.parametrize(
        ("alert_type", "step"), [("login", "caller_verified"), ("two_factor", "nope"), ("two_factor", 3)]
    )
    def test_a_step_outside_the_cases_playbooks_is_refused(self, case_a, agent, alert_type, step):
        with pytest.raises(ValidationError):
            playbook_step_check(actor=agent, case=case_a, alert_type=alert_type, step_key=step)
        assert not PlaybookCheck.objects.exists()

    def test_a_tenant_admin_writes_its_own_playbook_but_cannot_drop_the_never_ask_list(
        self, tenant_a, tenant_b, supervisor
    ):
        admin = make_staff("tenant-admin", role=Role.ADMIN, tenants=[tenant_a])
        lines = {
            "verify": ["Check the callback number on file"], "tell": [], "never_ask": ["Their mother's maiden name"],
            "customer_steps": ["Call us back on the number on your card"],
        }  # fmt: skip
        with pytest.raises(PermissionDenied):
            playbook_override_set(actor=supervisor, tenant=tenant_a, alert_type="login", **lines)
        with pytest.raises(PermissionDenied):
            playbook_override_set(actor=admin, tenant=tenant_b, alert_type="login", **lines)
        with pytest.raises(ValidationError):
            playbook_override_set(actor=admin, tenant=tenant_a, alert_type="login", **{**lines, "verify": [" "]})
        with pytest.raises(ValidationError):
            playbook_override_set(actor=admin, tenant=tenant_a, alert_type="nope", **lines)
        playbook_override_set(actor=admin, tenant=tenant_a, alert_type="login", **lines)
        mine = playbook_checklist(tenant_id=tenant_a.pk, alert_type="login")
        assert mine.tenant_own and [s.text for s in mine.steps] == ["Check the callback number on file"]
        assert set(NEVER_ASK) <= set(mine.never_ask) and "Their mother's maiden name" in mine.never_ask
        assert not playbook_checklist(tenant_id=tenant_b.pk, alert_type="login").tenant_own
        playbook_override_clear(actor=admin, tenant=tenant_a, alert_type="login")
        assert not playbook_checklist(tenant_id=tenant_a.pk, alert_type="login").tenant_own
        actions = AuditEvent.objects.filter(target_type="desk.playbookoverride").values_list("action", flat=True)
        assert sorted(actions) == [Action.CREATE, Action.DELETE]


def test_case_get_for_hides_other_tenants_cases(case_a, agent_b):
    from django.http import Http404

    with pytest.raises(Http404):
        case_get_for(user=agent_b, case_id=case_a.pk)
    assert CaseAlert.objects.count() == 1

"""Resolving a case with account actions that have not gone out, and the notice a customer gets
before a contact change, in a real browser at 1280 and 390 px.

The warning above Resolve counts every pending action (here four, behind twelve newer ones that
went out: the page once listed only what was among the ten newest), grouped by kind and state, and
links to the actions list, where each one is shown; resolving cancels them all. The customer's
answer page of a phone-number change notice says that the phone number would change, and no number.
Screenshots of the parts looked at go to shots/ (git-ignored; E2E_SHOTS_DIR elsewhere)."""

import os
import re
from pathlib import Path

from playwright.sync_api import expect

from accounts.models import Role
from accounts.testing import make_staff
from alerts.models import Notification
from alerts.notifications.services import action_notice_plan
from alerts.tests.factories import AlertFactory, CustomerFactory
from desk.models import AccountAction, ActionState, CaseStatus
from desk.services import case_open
from desk.tests.factories import account_actions_make

SHOTS = Path(os.environ.get("E2E_SHOTS_DIR") or Path(__file__).resolve().parents[1] / "shots")
WIDE, NARROW = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
EMAIL, PHONE = "jane.doe@example.com", "+447700900123"


def _shoot(page, locator, name):
    """`locator` at desktop and phone width; the page never scrolls sideways."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("1280", WIDE), ("390", NARROW)):
        page.set_viewport_size(size)
        locator.screenshot(path=SHOTS / f"{name}-{label}.png")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} at {label} px scrolls sideways by {overflow} px"
    page.set_viewport_size(WIDE)


def test_the_warning_counts_every_pending_action_and_resolving_cancels_them(
    new_page, sign_in, tenant, browser_problems
):
    agent = make_staff("agent.resolve", role=Role.AGENT, tenants=[tenant], default_queue=True)
    customer = CustomerFactory(tenant=tenant, external_id="acct-5150", email=EMAIL, phone=PHONE)
    case, _ = case_open(actor=agent, alert=AlertFactory(customer=customer))
    account_actions_make(case, agent, ActionState.PENDING_APPROVAL, 1, action="reset_mfa", minutes_ago=90)
    account_actions_make(
        case, agent, ActionState.ON_HOLD, 1, action="change_contact", params={"field": "phone"}, minutes_ago=80
    )
    account_actions_make(
        case, agent, ActionState.WAITING, 2, action="change_contact", params={"field": "email"}, minutes_ago=70
    )
    account_actions_make(case, agent, ActionState.CONFIRMED, 12, minutes_ago=10)

    page = new_page(viewport=WIDE)
    sign_in(page, agent, next_path=f"/cases/{case.pk}/")
    warning = page.get_by_test_id("resolve-cancels")
    expect(warning).to_contain_text("Resolving cancels 4 account actions that have not gone out")
    expect(warning.get_by_test_id("resolve-cancels-item")).to_have_text(
        [
            "Allow a contact-detail change: the email address ×2: Customer told; waiting for the hold period",
            "Allow a contact-detail change: the phone number: On hold: the customer said it was not them",
            "Reset multi-factor authentication: Waiting for a supervisor's approval",
        ]
    )
    _shoot(page, page.locator("#close-form"), "resolve-warning")
    # Every pending one is in the actions list, first, older than the ten newest as it is.
    expect(page.locator("#actions .action-row")).to_have_count(14)
    expect(page.locator("#actions .action-row").first).to_have_class(re.compile(r"\baction-waiting\b"))
    expect(page.get_by_test_id("action-row-reset_mfa")).to_contain_text("Waiting for a supervisor's approval")
    _shoot(page, page.locator("#actions"), "resolve-actions-list")
    warning.get_by_role("link", name="See them under Account actions").click()
    expect(page).to_have_url(re.compile(r"#actions$"))
    expect(page.locator("#actions")).to_be_in_viewport()

    page.select_option("#id_outcome", "account_secured")
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_test_id("case-status")).to_have_text("Resolved")
    assert case.__class__.objects.get(pk=case.pk).status == CaseStatus.RESOLVED
    states = AccountAction.objects.filter(case=case).values_list("state", flat=True)
    assert sorted(set(states)) == [ActionState.CANCELLED, ActionState.CONFIRMED]
    assert list(states).count(ActionState.CANCELLED) == 4
    expect(page.get_by_test_id("resolve-cancels")).to_have_count(0)
    assert browser_problems.all() == []


def test_the_answer_page_of_a_phone_change_notice_says_the_phone_number_would_change(
    new_page, tenant, browser_problems
):
    customer = CustomerFactory(tenant=tenant, external_id="acct-5151", email=EMAIL, phone=PHONE)
    ids = action_notice_plan(
        tenant_id=tenant.pk, customer_id=customer.pk, reference="0b6e1a8e-8a53-4a53-9d7e-1f9e0c6b2a10", field="phone"
    )
    email = Notification.objects.get(pk__in=ids, channel="email")
    page = new_page(viewport=NARROW)
    page.goto(f"/r/{email.answer_token()}/")
    expect(page.locator(".answer-lead")).to_have_text(
        "We noticed a request to our support team to change the phone number on your account."
    )
    expect(page.get_by_test_id("changing")).to_have_text("The phone number on your account")
    expect(page.locator(".answer-facts dt").first).to_have_text("Change")
    assert PHONE not in page.content() and "7700" not in page.content() and "jane" not in page.content()
    _shoot(page, page.locator("main"), "notice-answer-page")
    assert browser_problems.all() == []

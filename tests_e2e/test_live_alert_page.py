"""The alert page follows its alert live, in a real browser: an agent has an alert open with its steps
on offer; another agent of the same client claims it from the queue with the keyboard, and the open
page takes the steps away and names the holder without a reload, keeps the focus in the actions,
says so politely, and nothing below the actions moves; the holder resolves it, and the open page
says it is resolved. Screenshots after each live change (1280, 390 and 1024 px) go to `shots/`."""

import re

import pytest
from playwright.sync_api import expect
from test_live_desk import NARROW, WIDE, focus_row, open_queue, row_of, shoot

from accounts import services
from accounts.models import Role
from accounts.testing import make_staff
from alerts.models import Alert, AlertStatus
from desk.demo import demo_alerts_seed


@pytest.fixture
def floor():
    acme = services.tenant_create(slug="acme-bank", name="Acme Bank")
    demo_alerts_seed(tenant=acme, target=6)
    return {
        "agent1": make_staff("agent.one", role=Role.AGENT, tenants=[acme], default_queue=True),
        "agent2": make_staff("agent.two", role=Role.AGENT, tenants=[acme], default_queue=True),
    }


def _evidence_top(page) -> float:
    return page.locator("#evidence-title").evaluate("(el) => el.getBoundingClientRect().top + window.scrollY")


def test_the_open_alert_page_follows_a_claim_and_a_resolution_by_someone_else(
    new_page, sign_in, floor, browser_problems
):
    agent1, agent2 = floor["agent1"], floor["agent2"]
    alert = (
        Alert.objects.filter(status=AlertStatus.OPEN, assignee__isnull=True, customer__isnull=False)
        .order_by("-severity", "pk")
        .first()
    )
    # Agent 2 reads the alert on a phone, the Acknowledge button focused.
    a1, a2 = new_page(viewport=WIDE), new_page(viewport=NARROW)
    sign_in(a1, agent1)
    open_queue(a1)
    sign_in(a2, agent2, next_path=f"/alerts/{alert.pk}/")
    expect(a2.get_by_test_id("alert-page")).to_be_visible()
    expect(a2.locator("[data-live-status]")).to_have_attribute("data-state", "live")
    acknowledge = a2.get_by_role("button", name=re.compile("^Acknowledge"))
    acknowledge.focus()
    expect(acknowledge).to_be_focused()
    evidence_top = _evidence_top(a2)

    # Agent 1 claims it from the queue with the keyboard.
    focus_row(a1, alert.pk)
    a1.keyboard.press("c")
    expect(row_of(a1, alert.pk).get_by_test_id("assignee")).to_have_text("you")

    # Agent 2's open page takes the steps away and names the holder, without a reload.
    held = a2.get_by_test_id("held-by")
    expect(held).to_have_text(
        f"{agent1.username} holds this alert: only they or a supervisor can acknowledge, resolve or dismiss it."
    )
    expect(a2.get_by_role("button", name=re.compile("Resolve|Acknowledge|Dismiss"))).to_have_count(0)
    expect(a2.get_by_test_id("assignee")).to_have_text(agent1.username)
    expect(a2.locator("#shortcut-status")).to_have_text(f"{agent1.username} holds this alert now.")
    expect(a2.locator("#shortcut-status")).to_have_attribute("aria-live", "polite")
    # The focus was in the actions: it stays there (not lost to the page), and nothing below moved.
    expect(a2.get_by_test_id("alert-actions-body")).to_be_focused()
    assert abs(_evidence_top(a2) - evidence_top) < 1, "the evidence moved under the reader"
    # The keyboard says whose it is now.
    a2.keyboard.press("a")
    expect(a2.locator("#shortcut-status")).to_have_text(f"{agent1.username} holds this alert.")
    alert.refresh_from_db()
    assert (alert.status, alert.assignee) == (AlertStatus.OPEN, agent1)  # the a did nothing
    shoot(a2, "alert-live-held")

    # Agent 1 resolves it from its page; agent 2's page says it is resolved.
    a1.keyboard.press("Enter")
    expect(a1.get_by_test_id("alert-page")).to_be_visible()
    # Its keyboard script has run (it shows the shortcuts' help button): a key pressed before that does
    # nothing, as for a person who types before the page has loaded.
    expect(a1.locator("#help-open")).to_be_visible()
    a1.keyboard.press("r")
    expect(a1.get_by_label("Resolution note")).to_be_focused()
    a1.keyboard.type("Confirmed with the customer.")
    a1.keyboard.press("Control+Enter")
    expect(a1.get_by_test_id("status")).to_have_text("Resolved")
    expect(a2.get_by_test_id("status")).to_have_text("Resolved")
    expect(a2.get_by_test_id("alert-actions-body")).to_contain_text(
        "This alert is resolved: there is nothing left to do."
    )
    expect(a2.locator("#shortcut-status")).to_have_text("This alert is resolved now.")
    shoot(a2, "alert-live-resolved")

    assert browser_problems.all() == [], browser_problems.all()

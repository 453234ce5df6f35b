"""The customer's "Was this you?" page in a real browser: on a phone and a desktop, with JavaScript
off (one form, two buttons), under the site's CSP, and through Django's CSRF check as a browser
really sends the form (Origin: null under Referrer-Policy: no-referrer).

Screenshots go to ANSWER_SHOTS_DIR (default /tmp/answer-shots), to be looked at."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from alerts.models import AlertStatus, AlertType, EventType, Severity
from alerts.notifications.models import Channel, Notification, Purpose, State
from alerts.tests.factories import AccountEventFactory, AlertFactory, CustomerFactory

SHOTS = Path(os.environ.get("ANSWER_SHOTS_DIR", "/tmp/answer-shots"))
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 800}
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Safari/604.1"


@pytest.fixture
def alert(tenant):
    customer = CustomerFactory(tenant=tenant, external_id="e2e-1", email="e2e@example.com", phone="+33612345678")
    event = AccountEventFactory(
        customer=customer,
        type=EventType.LOGIN_SUCCEEDED,
        ip="81.2.69.160",
        context={"user_agent": UA, "geo": {"country": "PT"}},
    )
    return AlertFactory(
        customer=customer, type=AlertType.LOGIN, rule="new_device", severity=Severity.MEDIUM, evidence=[event]
    )


def _notification(alert, channel=Channel.EMAIL):
    now = timezone.now()
    return Notification.objects.create(
        tenant=alert.tenant,
        alert=alert,
        customer=alert.customer,
        channel=channel,
        purpose=Purpose.ALERT,
        state=State.SENT,
        recipient="e2e@example.com",
        recipient_masked="e***@e***",
        answer_nonce=Notification.new_nonce(),
        sent_at=now - timedelta(minutes=3),
        created_at=now - timedelta(minutes=3),
        updated_at=now,
    )


@pytest.fixture
def no_script(browser, desk_server):
    """A browser context with JavaScript turned off, as some customers (and mail apps' viewers) have."""
    context = browser.new_context(base_url=desk_server.url, java_script_enabled=False, viewport=PHONE)
    yield context.new_page()
    context.close()


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_question_reads_well_on_a_phone_and_a_desktop(page, alert, tenant, browser_problems):
    notification = _notification(alert)
    for name, viewport in (("390", PHONE), ("1280", DESKTOP)):
        page.set_viewport_size(viewport)
        page.goto(f"/r/{notification.answer_token()}/")
        expect(page.get_by_role("heading", name="Was this you?")).to_be_visible()
        expect(page.get_by_test_id("tenant-name")).to_have_text(tenant.name)
        expect(page.get_by_test_id("place")).to_contain_text("Portugal")
        expect(page.get_by_test_id("device")).to_have_text("Safari on iOS")
        yes, no = page.get_by_role("button", name="Yes, it was me"), page.get_by_role("button", name="No, it wasn't me")
        expect(yes).to_be_visible()
        expect(no).to_be_visible()
        assert yes.bounding_box()["height"] >= 44 and no.bounding_box()["height"] >= 44  # a thumb's target
        assert _fits(page), f"the page scrolls sideways at {name} px"
        _shot(page, f"answer-question-{name}")
    assert browser_problems.all() == []


def test_no_without_javascript_escalates_and_shows_the_steps(no_script, alert, tenant, desk_server):
    notification = _notification(alert)
    sibling = _notification(alert, Channel.SMS)
    no_script.goto(f"/r/{notification.answer_token()}/")
    no_script.get_by_role("button", name="No, it wasn't me").click()
    expect(no_script.get_by_role("heading", name="Let's secure your account")).to_be_visible()
    expect(no_script.get_by_test_id("steps").locator("li").first).to_be_visible()
    assert _fits(no_script)
    _shot(no_script, "answer-secure-390")
    alert.refresh_from_db()
    assert alert.severity == Severity.CRITICAL
    # The SMS's link is closed now; it says so, with the steps.
    no_script.goto(f"/r/{sibling.answer_token()}/")
    expect(no_script.get_by_role("heading", name="We already have your answer")).to_be_visible()
    _shot(no_script, "answer-gone-390")
    no_script.set_viewport_size(DESKTOP)
    no_script.goto(f"/r/{notification.answer_token()}/")
    _shot(no_script, "answer-gone-1280")


def test_yes_without_javascript_resolves_and_the_other_links_take_a_no_only(no_script, alert):
    notification = _notification(alert)
    sibling = _notification(alert, Channel.SMS)
    no_script.goto(f"/r/{notification.answer_token()}/")
    no_script.get_by_role("button", name="Yes, it was me").click()
    expect(no_script.get_by_role("heading", name="Thank you")).to_be_visible()
    _shot(no_script, "answer-thanks-390")
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    for name, viewport in (("390", PHONE), ("1280", DESKTOP)):
        no_script.set_viewport_size(viewport)
        no_script.goto(f"/r/{sibling.answer_token()}/")
        expect(no_script.get_by_test_id("confirmed")).to_be_visible()
        expect(no_script.get_by_role("button", name="Yes, it was me")).to_have_count(0)
        expect(no_script.get_by_role("button", name="No, it wasn't me")).to_be_visible()
        _shot(no_script, f"answer-confirmed-{name}")


def test_a_bad_link_says_so_plainly(no_script, alert):
    response = no_script.goto("/r/this-is-not-a-link/")
    assert response.status == 404
    expect(no_script.get_by_role("heading", name="We don't recognise this link")).to_be_visible()
    _shot(no_script, "answer-unknown-390")

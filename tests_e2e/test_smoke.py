"""Smoke tests in a real browser: sign in with password and code, as an agent would, and reach the desk."""

import base64
import re

from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from accounts.demo import totp_now
from accounts.forms import SIGN_IN_FAILED
from accounts.testing import make_staff

SCREENSHOT = "/tmp/desk-home.png"


def sign_in_with_password(page, username, password):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Continue").click()


def expect_desk(page, tenant, browser_problems):
    expect(page.get_by_role("heading", name="Desk", exact=True)).to_be_visible()
    topbar = page.locator("header.topbar")
    expect(topbar.get_by_test_id("tenant-name")).to_have_text(tenant.name)
    expect(topbar.get_by_test_id("role")).to_have_text("Agent")
    page.wait_for_load_state("load")
    assert page.evaluate("typeof window.htmx") == "object", "htmx did not load"
    assert browser_problems.all() == [], f"browser errors on the desk page: {browser_problems.all()}"


def test_agent_signs_in_with_password_and_code_and_reaches_the_desk(
    page, agent, tenant, password, browser_problems, desk_server
):
    sign_in_with_password(page, agent.username, password)

    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    page.get_by_label("Code", exact=True).fill(totp_now(TOTPDevice.objects.get(user=agent, confirmed=True)))
    page.get_by_role("button", name="Verify").click()

    expect(page).to_have_url(f"{desk_server.url}/")
    expect_desk(page, tenant, browser_problems)
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_new_agent_sets_up_an_authenticator_then_reaches_the_desk(page, new_agent, tenant, password, browser_problems):
    sign_in_with_password(page, new_agent.username, password)

    expect(page.get_by_role("heading", name="Set up two-factor authentication")).to_be_visible()
    expect(page.locator("figure.qr svg")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    pending = TOTPDevice.objects.get(user=new_agent, confirmed=False)
    assert key == pending.bin_key, "the key shown is not the pending device's key"
    code = str(totp(key, step=pending.step, t0=pending.t0, digits=pending.digits)).zfill(pending.digits)
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_role("button", name="Confirm").click()

    expect(page.get_by_role("heading", name="Save your backup codes")).to_be_visible()
    expect(page.get_by_test_id("backup-codes").locator("li")).to_have_count(10)
    assert TOTPDevice.objects.filter(user=new_agent, confirmed=True).count() == 1
    page.get_by_role("link", name="I have saved them, go to the desk").click()

    expect_desk(page, tenant, browser_problems)


def test_wrong_password_shows_the_generic_error_and_stays_on_sign_in(page, agent, browser_problems):
    sign_in_with_password(page, agent.username, "not-the-password-at-all")

    expect(page.get_by_role("alert")).to_have_text(SIGN_IN_FAILED)
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("Password")).to_have_value("")
    assert browser_problems.all() == []


def test_csp_violations_are_caught(page, browser_problems):
    """The watcher the tests above rely on works: an inline script is blocked, and reported."""
    page.goto("/accounts/login/")
    page.evaluate("document.body.appendChild(document.createElement('script')).textContent = 'window.ran = 1'")
    for _ in range(20):  # the report arrives through a binding: give it a moment
        if browser_problems.csp_violations:
            break
        page.wait_for_timeout(50)
    assert page.evaluate("window.ran") is None
    assert any(v.startswith("script-src") for v in browser_problems.csp_violations), browser_problems.all()
    assert any("Content Security Policy" in e for e in browser_problems.console_errors), browser_problems.all()


def test_supervisor_reviews_the_audit_trail_in_the_browser(page, tenant, password, browser_problems):
    """A supervisor signs in, opens Audit, filters to one agent's sign-ins and sees them; the agent
    they supervise cannot open the page at all."""
    from accounts.models import Role

    supervisor = make_staff("supervisor.e2e", role=Role.SUPERVISOR, tenants=[tenant])
    agent = make_staff("agent.audited", role=Role.AGENT, tenants=[tenant])
    from audit.models import Action
    from audit.services import audit_record

    audit_record(action=Action.VIEW, actor=agent, tenant=tenant, target_type="desk.case", target_id="42")

    sign_in_with_password(page, supervisor.username, password)
    page.get_by_label("Code", exact=True).fill(totp_now(TOTPDevice.objects.get(user=supervisor, confirmed=True)))
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("link", name="Audit").click()
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    table = page.get_by_test_id("audit-table")
    expect(table).to_contain_text(re.compile(r"[Cc]ase #42"))  # "desk.case #42", or "Case #42" once a model

    page.get_by_label("Staff username").fill(agent.username)
    page.get_by_role("button", name="Search").click()
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("agent.audited")
    table.get_by_role("link", name=re.compile(r"[Cc]ase #42")).click()
    expect(page.get_by_role("heading", name=re.compile(r"^History of .*[Cc]ase #42$"))).to_be_visible()
    assert browser_problems.all() == []

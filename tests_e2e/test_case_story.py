"""Issue 11's story end to end, in real browsers, as the issue's "End to end in a real browser" tells
it: an event through the event API raises an alert that reaches the agent's queue live; the agent
opens it from the keyboard and opens a case from it (`o`); an account action is refused while the
caller is not verified; a one-time code goes to the SMS on file (read here from the development
outbox, with `outbox_show`, as an operator would); a second agent who tries to verify the same
customer meanwhile is refused; a wrong code is counted, the right one verifies; the email is
revealed with a reason; the playbook is ticked from the keyboard; the account is locked through the
client's signed webhook (a stub server in this test, which checks the signature as the contract
says and answers 200); a contact change and then an MFA reset wait for a supervisor (two people,
cooling-off window); the supervisor approves the reset with a reason, the agent resolves the case,
and the supervisor finds every step on the case's timeline and in its audit trail.

Everything is done through the pages the staff use; only the outbox and the stub's record are read
directly. Screenshots of the case page in each state, at 1280 and 390 px, go to `shots/`
(git-ignored; E2E_SHOTS_DIR elsewhere), to be looked at.
"""

import hashlib
import hmac
import io
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect
from test_live_desk import focus_row, ingest, mfa_disabled, open_queue, row_of

from accounts.models import Role
from accounts.testing import make_staff
from alerts.keys import api_key_issue
from alerts.models import Alert
from desk.models import AccountAction, ActionState, Case, CaseStatus, PlaybookCheck

SHOTS = Path(os.environ.get("E2E_SHOTS_DIR") or Path(__file__).resolve().parents[1] / "shots")
WIDE, NARROW = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
SIGNATURE_TOLERANCE_SECONDS = 300


class WebhookStub:
    """The client's account-action endpoint: a local HTTP server that checks each request's
    X-AlertDesk-Signature (HMAC-SHA256 of "<timestamp>.<body>" with the tenant's secret, contract
    staff-api.md) and timestamp, records what it received and answers 200, or 401 when the
    signature does not hold."""

    def __init__(self):
        self.secret = ""
        self.received: list[dict] = []  # {"body", "signature_ok", "status"}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stamp = self.headers.get("X-AlertDesk-Timestamp", "")
                expected = hmac.new(stub.secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
                fresh = stamp.isdigit() and abs(time.time() - int(stamp)) < SIGNATURE_TOLERANCE_SECONDS
                ok = fresh and hmac.compare_digest(self.headers.get("X-AlertDesk-Signature", ""), f"sha256={expected}")
                status = 200 if ok else 401
                stub.received.append({"body": json.loads(body), "signature_ok": ok, "status": status})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}' if ok else b'{"error": "bad signature"}')

            def log_message(self, *args):  # no access log on the test's output
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alertdesk/actions"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def of(self, action: str) -> list[dict]:
        return [r for r in self.received if r["body"].get("action") == action]


@pytest.fixture
def webhook():
    stub = WebhookStub()
    stub.thread.start()
    yield stub
    stub.server.shutdown()
    stub.server.server_close()


def shoot(page, name):
    """The page at desktop and phone width, full length; neither may scroll sideways."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("1280", WIDE), ("390", NARROW)):
        page.set_viewport_size(size)
        page.screenshot(path=SHOTS / f"{name}-{label}.png", full_page=True)
        if size is NARROW:  # a long narrow page is looked at in screen-sized parts
            height = page.evaluate("document.documentElement.scrollHeight")
            for part, top in enumerate(range(0, height, 1400)):
                clip = {"x": 0, "y": top, "width": NARROW["width"], "height": min(1400, height - top)}
                page.screenshot(path=SHOTS / f"{name}-{label}-part{part + 1}.png", full_page=True, clip=clip)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} at {label} px scrolls sideways by {overflow} px"
    page.set_viewport_size(WIDE)


def keys_ready(page):
    """The page's keyboard script has run (it shows the shortcuts' help button): a key pressed
    before that would do nothing, as for a person who types before the page has loaded."""
    expect(page.locator("#help-open")).to_be_visible()


def outbox_code(customer_id: int) -> str:
    """The code in the newest verification SMS to the customer, read with `outbox_show`."""
    out = io.StringIO()
    call_command("outbox_show", "--to-customer", str(customer_id), "--json", stdout=out)
    texts = [m for m in json.loads(out.getvalue()) if m["purpose"] == "verification" and m["channel"] == "sms"]
    assert texts, "no verification SMS in the outbox"
    codes = re.findall(r"\b(\d{6})\b", texts[-1]["body"])
    assert len(codes) == 1, texts[-1]["body"]
    return codes[0]


def expect_refusal(browser_problems, status, path_part):
    """The browser logs a refused step's answer (4xx) as a console error: these were expected."""
    refused = [e for e in browser_problems.console_errors if f"status of {status}" in e and path_part in e]
    assert len(refused) == 1, browser_problems.console_errors
    browser_problems.console_errors.remove(refused[0])


def test_an_agent_verifies_the_caller_secures_the_account_and_a_supervisor_approves_the_dangerous_pair(
    new_page, sign_in, tenant, desk_server, webhook, browser_problems
):
    agent = make_staff("agent.story", role=Role.AGENT, tenants=[tenant], default_queue=True)
    other = make_staff("agent.other", role=Role.AGENT, tenants=[tenant], default_queue=True)
    supervisor = make_staff("supervisor.story", role=Role.SUPERVISOR, tenants=[tenant])
    out = io.StringIO()
    call_command("tenant_webhook", tenant.slug, webhook.url, stdout=out)
    webhook.secret = out.getvalue().strip().splitlines()[-1]  # printed once, last

    page = new_page(viewport=WIDE)
    sign_in(page, agent)
    open_queue(page)

    # A client system's event raises an alert that reaches the agent's queue live.
    ingest(desk_server.url, api_key_issue(tenant=tenant), mfa_disabled("ev-story-1", "acme-story-1"))
    alert = Alert.objects.get(customer__external_id="acme-story-1")
    customer = alert.customer
    expect(row_of(page, alert.pk)).to_be_visible()

    # The agent opens it from the keyboard and opens a case from it.
    focus_row(page, alert.pk)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("alert-page")).to_be_visible()
    keys_ready(page)
    page.keyboard.press("o")
    expect(page).to_have_url(re.compile(r"/cases/\d+/$"))
    case = Case.objects.get(customer=customer)
    keys_ready(page)
    page.keyboard.press("c")  # the agent takes the case
    expect(page.get_by_test_id("case-assignee")).to_have_text("You")
    verification = page.get_by_test_id("verification")
    expect(verification).to_contain_text("Not verified")
    expect(page.get_by_test_id("contact-phone")).to_have_text("+***42")
    assert "acme-story-1@example.com" not in page.content()

    # An account action is refused: the caller is not verified.
    expect(page.get_by_test_id("actions-refused-reason")).to_contain_text("verify the caller first")
    expect(page.get_by_test_id("action-lock")).to_be_disabled()
    shoot(page, "story-1-not-verified")

    # A code to the SMS on file.
    page.get_by_label("Send a one-time code by").select_option("sms")
    page.get_by_role("button", name="Send code").click()
    expect(page.get_by_role("status").filter(has_text="Code sent to")).to_contain_text("+***42")
    expect(page.get_by_test_id("verifications")).to_contain_text("Waiting for the code")
    code = outbox_code(customer.pk)
    shoot(page, "story-2-code-sent")

    # Meanwhile a second agent opens the same case and tries to verify the customer: refused.
    second = new_page(viewport=WIDE)
    sign_in(second, other)
    second.goto(f"/cases/{case.pk}/")
    second.get_by_role("button", name="Send code").click()
    refusal = second.get_by_test_id("verification-errors")
    expect(refusal).to_contain_text(f"{agent.username} started verifying this customer")
    expect(refusal).to_contain_text("one verification at a time")
    expect_refusal(browser_problems, 409, "/verification/")
    shoot(second, "story-2b-second-agent-refused")

    # A wrong code is counted; the right one verifies.
    wrong = "000000" if code != "000000" else "111111"
    page.get_by_label("Code the customer reads out").fill(wrong)
    page.get_by_role("button", name="Check code").click()
    expect(page.get_by_test_id("verification-errors")).to_contain_text("Wrong code: 4 tries left.")
    expect_refusal(browser_problems, 400, "/verification/check/")
    page.get_by_label("Code the customer reads out").fill(code)
    page.get_by_role("button", name="Check code").click()
    verified = re.compile(r"Verified by one-time code to SMS on file, \d\d:\d\d, valid until \d\d:\d\d")
    expect(verification).to_contain_text(verified)
    expect(page.get_by_test_id("action-lock")).to_be_enabled()
    shoot(page, "story-3-verified")

    # The email, revealed with a reason (the reveal form from the keyboard).
    keys_ready(page)
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("v")
    expect(page.locator("#id_field")).to_be_focused()
    page.select_option("#id_field", "email")
    page.select_option("#id_reason_code", "confirm_with_customer")
    page.fill("#id_reason", "Reading the address on file back to the verified caller")
    page.get_by_role("button", name="Reveal").click()
    expect(page.get_by_test_id("revealed-email")).to_contain_text("acme-story-1@example.com")
    shoot(page, "story-4-reveal")

    # Every playbook step, ticked from the keyboard.
    for _ in range(12):
        keys_ready(page)
        page.locator("body").click(position={"x": 5, "y": 5})
        if page.locator(".playbook-step:not(.done) .check-form button").count() == 0:
            break
        page.keyboard.press("p")
        expect(page.locator(".playbook-step:not(.done) .check-form button").first).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.get_by_role("status").filter(has_text="Step checked.")).to_be_visible()
    expect(page.locator(".playbook-step:not(.done)")).to_have_count(0)
    assert PlaybookCheck.objects.filter(case=case).count() == page.locator(".playbook-step").count()

    # The account is locked through the client's signed webhook.
    page.get_by_test_id("action-lock").click()
    expect(page.get_by_role("status").filter(has_text="Lock the account: sent to the client.")).to_be_visible()
    expect(page.get_by_test_id("action-row-lock")).to_contain_text("Confirmed by the client")
    lock = AccountAction.objects.get(case=case, action="lock")
    assert lock.state == ActionState.CONFIRMED
    [received] = webhook.of("lock")
    assert received["signature_ok"], received
    assert received["body"]["id"] == str(lock.uuid)
    assert received["body"]["account"] == {"external_id": "acme-story-1"}
    assert received["body"]["case"] == case.pk and received["body"]["requested_by"] == agent.username

    # A contact change, then an MFA reset: neither goes out without a supervisor.
    page.get_by_label("Contact to change").select_option("email")
    page.get_by_test_id("action-change_contact").click()
    expect(page.get_by_role("status").filter(has_text="waiting for a supervisor")).to_be_visible()
    page.get_by_test_id("action-reset_mfa").click()
    expect(page.get_by_role("status").filter(has_text="within the cooling-off window")).to_be_visible()
    reset_row = page.get_by_test_id("action-row-reset_mfa")
    expect(reset_row).to_contain_text("Waiting for a supervisor's approval")
    expect(reset_row).to_contain_text("cooling-off window")
    expect(reset_row.get_by_role("button", name="Approve")).to_have_count(0)  # not for the agent
    assert webhook.of("change_contact") == [] and webhook.of("reset_mfa") == []
    shoot(page, "story-5-action-pending")

    # The supervisor approves the MFA reset with a reason; it goes out, signed, and is confirmed.
    boss = new_page(viewport=WIDE)
    sign_in(boss, supervisor)
    boss.goto(f"/cases/{case.pk}/")
    boss_reset = boss.get_by_test_id("action-row-reset_mfa")
    boss_reset.get_by_label("Reason").fill("Called the customer back on file: they lost the phone with the app")
    boss_reset.get_by_role("button", name="Approve").click()
    expect(boss.get_by_role("status").filter(has_text="Approved: sent to the client.")).to_be_visible()
    expect(boss.get_by_test_id("action-row-reset_mfa")).to_contain_text("Confirmed by the client")
    [reset] = webhook.of("reset_mfa")
    assert reset["signature_ok"] and reset["body"]["requested_by"] == agent.username
    assert webhook.of("change_contact") == []  # still waiting: nobody approved it

    # The agent resolves the case from the keyboard.
    page.reload()
    expect(page.get_by_test_id("action-row-reset_mfa")).to_contain_text("Confirmed by the client")
    # Resolving says first that it cancels the contact change nobody approved.
    cancels = page.get_by_test_id("resolve-cancels")
    expect(cancels).to_contain_text("Resolving cancels 1 account action that has not gone out")
    expect(cancels.get_by_test_id("resolve-cancels-item")).to_have_text(
        "Allow a contact-detail change: the email address: Waiting for a supervisor's approval"
    )
    shoot(page, "story-6-action-confirmed")
    keys_ready(page)
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("r")
    expect(page.locator("#id_outcome")).to_be_focused()
    page.select_option("#id_outcome", "account_secured")
    page.fill("#id_note", "Locked, MFA reset approved; the customer sets a new factor from the app.")
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_test_id("case-status")).to_have_text("Resolved")
    case.refresh_from_db()
    assert (case.status, case.outcome) == (CaseStatus.RESOLVED, "account_secured")
    assert webhook.of("change_contact") == []  # cancelled with the case: never sent

    # The supervisor finds every step on the case's timeline ...
    boss.goto(f"/cases/{case.pk}/")
    timeline = boss.get_by_test_id("timeline")
    for step in (
        "SMS to the customer",  # the alert's notification
        "Code sent by SMS",
        "Verification refused: another verification of this customer is in progress",  # the second agent
        "Wrong code",
        "Verified by one-time code to SMS on file",
        "Revealed the email address",
        "Checked:",
        "Lock the account: requested",
        "Lock the account: sent to the client",
        "Lock the account: confirmed by the client",
        "Allow a contact-detail change: waiting for a supervisor",
        "Reset multi-factor authentication: waiting for a supervisor",
        "Reset multi-factor authentication: approved",
        "Reset multi-factor authentication: confirmed by the client",
        "Status: Resolved (Account secured)",
        "Allow a contact-detail change: cancelled, never sent",  # nobody approved it before the case was resolved
    ):
        expect(timeline).to_contain_text(step)
    expect(timeline.locator(".timeline-item").filter(has_text="Revealed the email address")).to_contain_text(
        "Reading the address on file back to the verified caller"
    )
    shoot(boss, "story-7-supervisor-timeline")

    # ... and in its audit trail.
    boss.get_by_role("link", name="Audit trail of this case").click()
    expect(boss.get_by_role("heading", name=re.compile(rf"^History of Case #{case.pk}"))).to_be_visible()
    story = boss.get_by_test_id("audit-table").locator("tbody tr")
    for step, who in (
        ("verification requested", agent.username),
        ("verification refused", other.username),
        ("wrong code", agent.username),
        ("verified", agent.username),
        ("Reason: Confirm a detail with the verified customer: Reading the address", agent.username),
        ("action requested", agent.username),
        ("action approved", supervisor.username),
        ("action confirmed", ""),
        ("status: open → resolved", agent.username),
    ):
        expect(story.filter(has_text=step).filter(has_text=who).first).to_be_visible()
    shoot(boss, "story-8-audit")
    assert browser_problems.all() == [], browser_problems.all()


def test_a_tenant_admin_proves_the_account_action_webhook_with_a_signed_test(
    page, sign_in, tenant, webhook, browser_problems
):
    admin = make_staff("admin.story", role=Role.ADMIN, tenants=[tenant])
    out = io.StringIO()
    call_command("tenant_webhook", tenant.slug, webhook.url, stdout=out)
    webhook.secret = out.getvalue().strip().splitlines()[-1]
    sign_in(page, admin)
    page.get_by_role("link", name="Account actions").click()
    expect(page.get_by_role("heading", name="Account actions of Acme Bank")).to_be_visible()
    expect(page.get_by_test_id("webhook-url")).to_have_text(webhook.url)
    page.get_by_role("button", name="Send a test").click()
    expect(page.get_by_role("status")).to_contain_text("The URL and the signature work.")
    [test] = webhook.of("test")
    assert test["signature_ok"] and test["body"]["account"] == {"external_id": ""}
    shoot(page, "webhook-test-ok")

    # The client was given another secret by mistake: the test says so.
    webhook.secret = "not-the-secret"
    page.get_by_role("button", name="Send a test").click()
    expect(page.get_by_role("status")).to_contain_text("Test failed (answered 401")
    expect(page.get_by_role("status")).to_contain_text("refused the signature")
    shoot(page, "webhook-test-refused")
    assert browser_problems.all() == [], browser_problems.all()

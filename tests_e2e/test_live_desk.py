"""The live desk end to end, in a real browser, as issue 9 tells it: two agents of one client and an
agent of another sign in with their one-time codes; an event comes in through the event API and
raises an alert; it appears on both same-client screens within a second of the 202, and never on
the other client's; one agent claims it from the keyboard and the other sees it claimed; the other
cannot resolve it; the first resolves it from the keyboard, and it leaves the queue on the other's
screen; a supervisor finds the whole story in the audit trail.

Screenshots of the queue and the alert page at 1280, 390 and 1024 px go to `shots/` (git-ignored; set
E2E_SHOTS_DIR to put them elsewhere), to be looked at, not compared.
"""

import hashlib
import hmac
import json
import os
import re
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect

from accounts import services
from accounts.models import Role
from accounts.testing import make_staff
from alerts.keys import api_key_issue
from alerts.models import Alert
from desk.demo import demo_alerts_seed
from desk.live import COALESCE_SECONDS

SHOTS = Path(os.environ.get("E2E_SHOTS_DIR") or Path(__file__).resolve().parents[1] / "shots")
LIVE_BUDGET_SECONDS = 1.0  # from the 202 to the row on the screen (issue 9)
WIDE, NARROW = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
MEDIUM = {"width": 1024, "height": 768}  # a laptop: where the queue's columns and filters fit least

# Keeps in the page a promise of the wall-clock time (ms) at which a row for the customer
# `externalId` is first in the queue's table and rendered (compared with the test's clock at the
# 202: the same machine), or null after `timeoutMs`. A promise that page.evaluate awaits, not
# wait_for_function: the page's CSP forbids the eval that Playwright's polling needs.
_WATCH_ARRIVAL = """
([externalId, timeoutMs]) => {
  window.__arrival = new Promise((resolve) => {
    const seen = () => {
      for (const row of document.querySelectorAll("#queue-rows tr[data-alert-id]")) {
        const customer = row.querySelector(".col-customer strong");
        if (customer && customer.textContent.trim() === externalId && row.getClientRects().length) {
          observer.disconnect();
          resolve(Date.now());
          return;
        }
      }
    };
    const observer = new MutationObserver(seen);
    observer.observe(document.body, { childList: true, subtree: true });
    window.setTimeout(() => { observer.disconnect(); resolve(null); }, timeoutMs);
    seen();
  });
}
"""


def ingest(server_url: str, key, event: dict) -> float:
    """POST one event to the real event API, signed as a client system signs it; the time of the
    202 (wall clock, seconds)."""
    body = json.dumps(event).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(key.signing_secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{server_url}/api/v1/events/",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {key.api_key}",
            "X-AlertDesk-Timestamp": stamp,
            "X-AlertDesk-Signature": f"sha256={signature}",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (the test's own server)
        answer = response.read()
        accepted_at = time.time()
        assert response.status == 202, answer
    assert json.loads(answer) == {"accepted": 1, "duplicates": 0}
    return accepted_at


def mfa_disabled(event_id: str, external_id: str) -> dict:
    """An event that raises an alert on a new account (two-factor turned off)."""
    return {
        "id": event_id,
        "type": "mfa.disabled",
        "occurred_at": datetime.now(UTC).isoformat(),
        "account": {"external_id": external_id, "email": f"{external_id}@example.com", "phone": "+14155550142"},
        "context": {"ip": "81.2.69.160", "factor": "totp", "device_id": "dev-e2e"},
    }


def open_queue(page):
    """The desk's home (the user's first queue), connected to the live channel."""
    page.goto("/")
    expect(page.get_by_test_id("queue-table")).to_be_visible()
    expect(page.locator("[data-live-status]")).to_have_attribute("data-state", "live")


def row_of(page, alert_id):
    return page.locator(f'#queue-rows tr[data-alert-id="{alert_id}"]')


def focus_row(page, alert_id):
    """Move the selection with j (down) until the alert's row has the focus, as an agent does."""
    rows = page.locator("#queue-rows tr[data-alert-id]")
    ids = [rows.nth(i).get_attribute("data-alert-id") for i in range(rows.count())]
    assert str(alert_id) in ids, f"alert {alert_id} is not in the queue"
    page.keyboard.press("k")  # onto the first row (or stay there), focused
    for _ in range(len(ids)):
        if page.evaluate("document.activeElement.dataset.alertId") == str(alert_id):
            break
        page.keyboard.press("j")
    expect(row_of(page, alert_id)).to_be_focused()
    expect(row_of(page, alert_id)).to_have_attribute("aria-selected", "true")


def shoot(page, name):
    """Full-page screenshots at desktop, phone and laptop width, none scrolling sideways (the
    viewport is put back after)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("1280", WIDE), ("390", NARROW), ("1024", MEDIUM)):
        page.set_viewport_size(size)
        page.screenshot(path=SHOTS / f"{name}-{label}.png", full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} at {label} px scrolls sideways by {overflow} px"
    page.set_viewport_size(WIDE)


@pytest.fixture
def floor():
    """Acme Bank with two agents granted its default queue and a supervisor; Globex Telecom with
    one agent; both with demo alerts raised by the real pipeline (some breaching their SLA)."""
    acme = services.tenant_create(slug="acme-bank", name="Acme Bank")
    globex = services.tenant_create(slug="globex", name="Globex Telecom")
    demo_alerts_seed(tenant=acme, target=12)
    demo_alerts_seed(tenant=globex, target=6)
    return {
        "acme": acme,
        "globex": globex,
        "agent1": make_staff("agent.one", role=Role.AGENT, tenants=[acme], default_queue=True),
        "agent2": make_staff("agent.two", role=Role.AGENT, tenants=[acme], default_queue=True),
        "agent_b": make_staff("agent.globex", role=Role.AGENT, tenants=[globex], default_queue=True),
        "supervisor": make_staff("supervisor.acme", role=Role.SUPERVISOR, tenants=[acme]),
    }


def test_an_alert_reaches_its_tenants_agents_live_is_worked_from_the_keyboard_and_audited(
    new_page, sign_in, floor, desk_server, browser_problems, record_property
):
    agent1, agent2, agent_b, supervisor = (floor[k] for k in ("agent1", "agent2", "agent_b", "supervisor"))
    a1, a2, b = new_page(viewport=WIDE), new_page(viewport=WIDE), new_page(viewport=WIDE)
    frames_b = []  # every frame Globex's agent's socket receives
    b.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames_b.append(payload)))
    for page, user in ((a1, agent1), (a2, agent2), (b, agent_b)):
        sign_in(page, user)
        open_queue(page)
    expect(b.get_by_test_id("desk-tenant")).to_have_text("Globex Telecom")
    b_rows_before = b.locator("#queue-rows tr[data-alert-id]").count()
    assert b_rows_before > 0

    # An event through the real event API raises the alert; both Acme screens show it without reload.
    key = api_key_issue(tenant=floor["acme"])
    for page in (a1, a2):
        page.evaluate(_WATCH_ARRIVAL, ["acme-live-1", 10_000])
    accepted_at = ingest(desk_server.url, key, mfa_disabled("ev-live-1", "acme-live-1"))
    arrived_at = [page.evaluate("window.__arrival") for page in (a1, a2)]
    assert None not in arrived_at, f"the alert did not reach a screen within 10 s: {arrived_at}"
    arrivals = [at / 1000 - accepted_at for at in arrived_at]
    record_property("live arrival after the 202 (s), agent 1 and agent 2", [round(a, 3) for a in arrivals])
    assert max(arrivals) < LIVE_BUDGET_SECONDS, f"the alert reached the screens {arrivals} s after the 202"
    alert = Alert.objects.get(customer__external_id="acme-live-1")
    for page in (a1, a2):
        expect(row_of(page, alert.pk)).to_be_visible()
        expect(row_of(page, alert.pk).get_by_test_id("assignee")).to_contain_text("Claim")

    # Never on Globex's screen: well past the coalescing window, no signal named it and no row shows it.
    b.wait_for_timeout(4 * COALESCE_SECONDS * 1000)  # proving an absence takes a wait
    for frame in frames_b:
        ids = [a.get("id") for a in (json.loads(frame).get("payload") or {}).get("alerts", [])]
        assert alert.pk not in ids, frame
    expect(row_of(b, alert.pk)).to_have_count(0)
    expect(b.locator("#queue-rows")).not_to_contain_text("acme-live-1")
    assert b.locator("#queue-rows tr[data-alert-id]").count() == b_rows_before

    # ... while Globex's screen is live: its own client's alert arrives there (and not at Acme's).
    ingest(desk_server.url, api_key_issue(tenant=floor["globex"]), mfa_disabled("ev-live-b", "glob-live-1"))
    expect(b.locator("#queue-rows")).to_contain_text("glob-live-1")
    b_alert = Alert.objects.get(customer__external_id="glob-live-1")
    expect(row_of(a2, b_alert.pk)).to_have_count(0)

    shoot(a1, "queue")  # a real queue: severities, breaching SLAs, the new alert

    # Agent 1 claims it from the keyboard; agent 2's screen shows who holds it, live.
    focus_row(a1, alert.pk)
    shoot(a1, "queue-focused")  # the focused row must be visible as such
    a1.keyboard.press("c")
    expect(a1.get_by_role("status").filter(has_text=f"Alert #{alert.pk} is yours.")).to_be_visible()
    expect(row_of(a1, alert.pk).get_by_test_id("assignee")).to_have_text("you")
    expect(row_of(a2, alert.pk).get_by_test_id("assignee")).to_have_text(agent1.username)
    alert.refresh_from_db()
    assert alert.assignee == agent1

    # Agent 2 opens it (keyboard too) and is offered no step: it is agent 1's.
    focus_row(a2, alert.pk)
    a2.keyboard.press("Enter")
    expect(a2.get_by_test_id("alert-page")).to_be_visible()
    expect(a2.get_by_test_id("held-by")).to_have_text(
        f"{agent1.username} holds this alert: only they or a supervisor can acknowledge, resolve or dismiss it."
    )
    expect(a2.get_by_role("button", name=re.compile("Resolve|Acknowledge|Dismiss"))).to_have_count(0)
    a2.keyboard.press("r")
    expect(a2.locator("#shortcut-status")).to_have_text(f"{agent1.username} holds this alert.")
    expect(row_of(a1, alert.pk).locator("[data-viewing]")).to_have_text(agent2.username)  # presence
    shoot(a2, "alert-held")
    a2.go_back()
    expect(a2.locator("[data-live-status]")).to_have_attribute("data-state", "live")
    expect(row_of(a2, alert.pk)).to_be_visible()

    # Agent 1 opens it (Enter) and resolves it with a note, from the keyboard alone.
    focus_row(a1, alert.pk)
    a1.keyboard.press("Enter")
    expect(a1.get_by_test_id("alert-page")).to_be_visible()
    expect(a1.get_by_role("button", name=re.compile("^Resolve"))).to_be_visible()
    shoot(a1, "alert")
    a1.keyboard.press("r")
    note = a1.get_by_label("Resolution note")
    expect(note).to_be_focused()
    a1.keyboard.type("Customer confirmed the change by phone; factor re-enrolled.")
    a1.keyboard.press("Control+Enter")
    expect(a1.get_by_role("status").filter(has_text="Alert resolved.")).to_be_visible()
    expect(a1.get_by_test_id("status")).to_have_text("Resolved")
    alert.refresh_from_db()
    assert (alert.status, alert.closed_by, alert.assignee) == ("resolved", agent1, agent1)

    # It leaves the queue on agent 2's screen, without reload.
    expect(row_of(a2, alert.pk)).to_have_count(0)

    # A supervisor of Acme finds the whole story in the audit trail.
    sup = new_page(viewport=WIDE)
    sign_in(sup, supervisor)
    sup.get_by_role("link", name="Audit").click()
    expect(sup.get_by_role("heading", name="Audit trail")).to_be_visible()
    sup.get_by_label("Target type").fill("alerts.alert")
    sup.get_by_label("Target id").fill(str(alert.pk))
    sup.get_by_role("button", name="Search").click()
    table = sup.get_by_test_id("audit-table")
    story = table.locator("tbody tr")
    expect(story.filter(has_text="Created")).to_have_count(1)  # raised by detection
    for user in (agent1, agent2):
        expect(story.filter(has_text="Viewed").filter(has_text=user.username).first).to_be_visible()
    claimed = story.filter(has_text="Updated").filter(has_text=f"assignee: ∅ → {agent1.username}")
    expect(claimed).to_have_count(1)
    resolved = story.filter(has_text="status: open → resolved").filter(has_text=agent1.username)
    expect(resolved).to_contain_text("Reason: Customer confirmed the change by phone; factor re-enrolled.")
    # Newest first: resolved, then claimed, then created.
    texts = story.all_inner_texts()
    order = [next(i for i, t in enumerate(texts) if marker in t) for marker in ("resolved", "assignee", "Created")]
    assert order == sorted(order), texts
    story.first.get_by_role("link", name=re.compile(rf"#{alert.pk}\b")).click()
    expect(sup.get_by_role("heading", name=re.compile(rf"^History of .*#{alert.pk}"))).to_be_visible()
    shoot(sup, "audit-history")

    assert browser_problems.all() == [], browser_problems.all()

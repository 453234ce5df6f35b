"""A tenant admin edits a customer SMS in the browser: the preview follows the typing (segments,
the character that forces UCS-2, the check's refusal of a request for a code), and saving works.
Screenshots of the list and the editor at 1280 and 390 px go to $E2E_SHOTS (default /tmp)."""

import os
import re
from pathlib import Path

from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from accounts.demo import totp_now
from accounts.models import Role
from accounts.testing import make_staff
from alerts.models import NotificationTemplate
from alerts.notifications.template_services import message_settings_save

SHOTS = Path(os.environ.get("E2E_SHOTS", "/tmp"))


def sign_in(page, user, password):
    page.goto("/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code", exact=True).fill(totp_now(TOTPDevice.objects.get(user=user, confirmed=True)))
    page.get_by_role("button", name="Verify").click()


def shoot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_a_tenant_admin_edits_an_sms_with_a_live_preview(page, tenant, password, browser_problems):
    admin = make_staff("admin.e2e", role=Role.ADMIN, tenants=[tenant])
    message_settings_save(
        tenant=tenant,
        actor=admin,
        display_name="Acme Bank",
        official_domain="acme-bank.example",
        support_phone="+44 20 7946 0000",
        support_url="https://acme-bank.example/help",
        time_zone="Europe/London",
    )
    sign_in(page, admin, password)
    page.get_by_role("link", name="Customer messages").click()
    expect(page.get_by_role("heading", name="Customer messages")).to_be_visible()
    expect(page.get_by_test_id("message-table").locator("tbody tr")).to_have_count(9)
    shoot(page, "messages-list-1280")

    page.get_by_role("link", name="Login from a new device, SMS: built-in. Edit").click()
    expect(page.get_by_role("heading", name=re.compile("Login from a new device"))).to_be_visible()
    preview = page.get_by_test_id("preview-area")
    expect(preview.get_by_test_id("check-ok")).to_be_visible()
    expect(preview.get_by_test_id("sms-encoding")).to_contain_text("GSM-7")
    expect(page.get_by_role("button", name="{device}")).to_be_visible()  # placeholder buttons, with script
    expect(page.get_by_role("button", name="Check and preview")).to_be_hidden()

    body = page.get_by_label("Message")
    body.fill("{tenant}: new sign-in, {where}. Not you? {link} We never ask for codes or passwords. 🔒")
    expect(preview.get_by_test_id("sms-encoding")).to_contain_text("UCS-2, because of 🔒 (lock)")
    expect(preview.get_by_test_id("sample-body")).to_contain_text("Acme Bank: new sign-in, Lyon, France.")

    body.fill("{tenant}: new sign-in, {where}. Not you? {link} We never ask for codes or passwords.")
    body.press("End")
    body.type(" Reply with the code we sent you.")
    expect(preview.get_by_test_id("check-errors")).to_contain_text("Asks for a password or a code")
    shoot(page, "messages-editor-refused-1280")

    body.fill("{tenant}: new sign-in, {where}, {when}. Not you? {link} We never ask for codes or passwords.")
    body.press("End")
    page.get_by_role("button", name="{device}").click()  # at the caret: the end of the message
    expect(body).to_have_value(re.compile(r"passwords\.\{device\}$"))
    body.fill(
        "{tenant}: new sign-in from {device}, {where}, {when}. Not you? {link} We never ask for codes or passwords."
    )
    expect(preview.get_by_test_id("check-ok")).to_be_visible()
    expect(preview.get_by_test_id("sms-sample")).to_contain_text("GSM-7")
    shoot(page, "messages-editor-1280")

    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("SMS message for login from a new device saved.")).to_be_visible()
    expect(page.get_by_test_id("template-state")).to_contain_text("Your wording, last changed by admin.e2e")
    assert NotificationTemplate.objects.get(tenant=tenant).body.startswith("{tenant}: new sign-in from {device}")

    page.goto("/messages/")
    page.get_by_label("Language (BCP 47 tag)").fill("fr-CA")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("link", name="Possible account takeover, E-mail: built-in. Edit").click()
    expect(page.get_by_test_id("template-state")).to_contain_text("The built-in message in fr (there is none in fr-CA)")
    expect(page.get_by_test_id("preview-area").get_by_test_id("sample-subject")).to_have_text(
        "Acme Bank : urgent : votre compte est peut-être en danger"
    )
    shoot(page, "messages-editor-email-fr-1280")

    page.goto(f"/messages/{tenant.pk}/login/sms/en/")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.get_by_test_id("preview-area").get_by_test_id("check-ok")).to_be_visible()
    shoot(page, "messages-editor-390")
    page.get_by_role("link", name="Customer messages").first.click()
    expect(page.get_by_test_id("message-table")).to_be_visible()
    shoot(page, "messages-list-390")
    page.get_by_test_id("message-table").screenshot(path=str(SHOTS / "messages-table-390.png"))
    assert browser_problems.all() == []

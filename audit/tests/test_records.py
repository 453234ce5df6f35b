"""Every view of data and every change leaves a record, with before/after values and no personal
data in clear; a walk of the URLconf fails when a view could show data without recording it."""

import io

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts import services
from accounts.models import Role, Tenant
from accounts.testing import TEST_PASSWORD, make_staff, totp_code_for, verified_client
from audit.admin_mixins import AuditedAdminMixin
from audit.models import Action, AuditEvent, Origin
from config.logging import set_process_origin

pytestmark = pytest.mark.django_db

# Views that show no customer, alert, case or audit data: sign-in steps, the user's own MFA
# settings, probes, and the desk's home (a count of active alerts, no alert's data). Anything else
# must be @shows_data. Keyed by the view's full dotted path, so that a new view that happens to
# share a name (another app's `home`) is not exempt by accident.
NO_DATA_VIEWS = {
    "config.health.healthz", "config.health.readyz", "config.views.favicon",
    "accounts.views.LoginView", "accounts.views.LogoutView", "accounts.views.mfa_verify", "accounts.views.mfa_enrol",
    "accounts.views.reauth", "accounts.views.security", "accounts.views.backup_codes_regenerate",
    "accounts.views.tenant_switch",
    # Twilio's webhook for SMS replies: the answer it takes is recorded by the answer's service.
    "alerts.notifications.answer_views.answer_sms_twilio",
    "desk.views.home",
    "django.views.generic.base.RedirectView",  # /admin/login/ -> the desk's sign-in
    "alerts.apis.EventIngestApi",  # machine-to-machine: takes events in, shows no data back
    # Lifecycle steps answer only the new status; the change itself is recorded by the service.
    "alerts.apis.AlertAcknowledgeApi", "alerts.apis.AlertResolveApi", "alerts.apis.AlertDismissApi",
    # Claim, release, assign answer the id and the holder's username; the change is recorded by the service.
    "alerts.apis.AlertClaimApi", "alerts.apis.AlertReleaseApi", "alerts.apis.AlertAssignApi",
    # Customer messages: a redirect to the tenant's page; the editor's preview (sample facts only,
    # asked for as the admin types); going back to the built-in message (recorded by the service).
    "desk.message_views.messages_home", "desk.message_views.message_preview", "desk.message_views.message_reset",
    # Case steps answer ids and states; the change itself is recorded by the service.
    "desk.apis.CaseNoteApi", "desk.apis.CaseStatusApi", "desk.apis.CaseClaimApi", "desk.apis.CaseConcernApi",
    "desk.apis.CaseCheckApi", "desk.apis.CaseShareApi", "desk.apis.CaseUnshareApi",
    # Verification and account actions: ids, states and the masked address on file; the services
    # record each request, check and approval (desk.verification, desk.action_services).
    "desk.apis.CaseVerificationApi", "desk.apis.CaseVerificationCheckApi", "desk.apis.CaseActionApi",
    "desk.apis.CaseActionApproveApi", "desk.apis.CaseActionReleaseApi", "desk.apis.CaseKnowledgeApi",
    # The one answer with a clear value: desk.services.case_reveal records it (a reveal, with its
    # reason) in the transaction that returns it.
    "desk.apis.CaseRevealApi",
    # The API's description, no data.
    "drf_spectacular.views.SpectacularAPIView", "drf_spectacular.views.SpectacularSwaggerSplitView",
    # A provider's status callback (machine-to-machine, answers nothing); a delivery test fired (the
    # service records it; the answer is a redirect).
    "alerts.notifications.views.twilio_status", "alerts.notifications.views.drill_run",
    # Delivery receipts (machine-to-machine, signed or basic-auth; they answer nothing).
    "alerts.notifications.views.push_receipt", "alerts.notifications.receipts.email_tracking_webhook",
    "desk.case_views.action_webhook_test",
}  # fmt: skip


def _views(resolver=None, prefix=""):
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            if entry.app_name == "admin":
                continue  # checked below: every registered model admin is audited
            yield from _views(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def _dotted(callback) -> str:
    view = getattr(callback, "view_class", callback)
    return f"{view.__module__}.{view.__qualname__}"


def test_every_view_either_records_what_it_shows_or_shows_no_data():
    unclassified = []
    for pattern, callback in _views():
        name = _dotted(callback)
        if getattr(callback, "audit_shows_data", False):
            assert name not in NO_DATA_VIEWS, f"{name} is in both lists"
            continue
        if name not in NO_DATA_VIEWS:
            unclassified.append(f"/{pattern} ({name})")
    assert unclassified == [], f"views that may show data without recording it: {unclassified}"


def test_the_no_data_list_names_only_views_that_exist():
    assert NO_DATA_VIEWS <= {_dotted(callback) for _, callback in _views()}


def test_the_no_data_list_names_views_by_module_not_by_bare_name():
    # A bare "home" would exempt every view called home, in any app, now and later.
    assert all("." in name for name in NO_DATA_VIEWS)


def test_every_model_admin_is_audited():
    assert admin.site._registry
    for model, model_admin in admin.site._registry.items():
        assert isinstance(model_admin, AuditedAdminMixin), model


def test_data_views_without_parameters_record_each_response(admin_user, db):
    client = verified_client(admin_user)
    for pattern, callback in _views():
        if getattr(callback, "audit_shows_data", False) and "<" not in pattern and "export" not in pattern:
            before = AuditEvent.objects.count()
            assert client.get("/" + pattern).status_code == 200
            assert AuditEvent.objects.count() > before, pattern


def login(client, username, password=TEST_PASSWORD):
    return client.post(
        reverse("accounts:login"),
        {"username": username, "password": password},
        REMOTE_ADDR="198.51.100.4",
        HTTP_USER_AGENT="TestBrowser/1.0",
    )


class TestSignIn:
    def test_password_and_otp_steps_are_recorded_with_request_context(self, agent):
        client = Client()
        response = login(client, "agent")
        event = AuditEvent.objects.get(action=Action.LOGIN)
        assert (event.actor, event.ip, event.user_agent, event.origin) == (
            agent,
            "198.51.100.4",
            "TestBrowser/1.0",
            "web",
        )
        assert event.request_id == response["X-Request-ID"]
        client.post(reverse("accounts:mfa_verify"), {"token": totp_code_for(agent)})
        other = Client()
        login(other, "agent")
        other.post(reverse("accounts:mfa_verify"), {"token": "000000x"})
        assert list(AuditEvent.objects.filter(actor=agent).order_by("id").values_list("action", flat=True)) == [
            "login", "mfa_verified", "login", "mfa_failed",
        ]  # fmt: skip
        client.post(reverse("accounts:logout"))
        assert AuditEvent.objects.filter(actor=agent, action=Action.LOGOUT).exists()

    def test_failed_login_names_the_account_but_never_an_unknown_username_in_clear(self, agent):
        login(Client(), "agent", password="wrong-wrong-wrong")
        login(Client(), "mistyped-secret-passphrase", password="wrong-wrong-wrong")
        known, unknown = AuditEvent.objects.filter(action=Action.LOGIN_FAILED).order_by("id")
        assert known.target_id == str(agent.pk) and known.actor is None
        assert unknown.target_id == "" and unknown.target_label == "m***se"
        assert "mistyped" not in str(AuditEvent.objects.values())

    def test_lockout_is_recorded(self, agent, settings):
        for _ in range(settings.AXES_FAILURE_LIMIT + 1):
            login(Client(), "agent", password="wrong-wrong-wrong")
        assert AuditEvent.objects.filter(action=Action.LOGIN_LOCKED, target_id=str(agent.pk)).exists()

    def test_enrolment_reauth_and_backup_codes_are_recorded(self, tenant_a):
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from accounts.demo import totp_now

        user = make_staff("fresh", role=Role.AGENT, tenants=[tenant_a], enrolled=False)
        client = Client()
        login(client, "fresh")
        client.get(reverse("accounts:mfa_enrol"))
        client.post(reverse("accounts:mfa_enrol"), {"token": totp_now(TOTPDevice.objects.get(user=user))})
        client.post(reverse("accounts:reauth"), {"password": "nope-nope-nope", "token": "1"})
        actions = list(AuditEvent.objects.filter(actor=user).values_list("action", flat=True))
        assert "mfa_enrolled" in actions and "reauth_failed" in actions


class TestChanges:
    def test_membership_and_role_changes_carry_before_and_after(self, agent, tenant_a, tenant_b, admin_user):
        services.membership_set(user=agent, tenant=tenant_b, role=Role.AGENT, actor=admin_user)
        services.membership_set(user=agent, tenant=tenant_b, role=Role.SUPERVISOR, actor=admin_user)
        services.membership_remove(user=agent, tenant=tenant_b, actor=admin_user)
        events = AuditEvent.objects.filter(tenant=tenant_b, target_id=str(agent.pk)).order_by("id")
        assert [(e.action, e.changes["role"]) for e in events] == [
            ("membership_changed", {"before": None, "after": "agent"}),
            ("role_changed", {"before": "agent", "after": "supervisor"}),
            ("membership_changed", {"before": "supervisor", "after": None}),
        ]
        assert {e.actor_id for e in events} == {admin_user.pk}
        assert {e.actor_role for e in events} == {"bpo_admin"}

    def test_personal_data_is_masked_and_passwords_never_recorded(self, db):
        user = services.user_create(username="pat", password=TEST_PASSWORD, email="pat.smith@example.com")
        event = AuditEvent.objects.get(action=Action.CREATE, target_id=str(user.pk))
        assert event.changes["email"] == {"before": None, "after": "p***@e***"}
        assert event.changes["password"] == {"changed": True}
        assert "pat.smith" not in str(event.changes) and TEST_PASSWORD not in str(event.changes)

    def test_deactivation_is_recorded(self, agent, admin_user):
        services.user_deactivate(user=agent, actor=admin_user)
        assert AuditEvent.objects.filter(action=Action.USER_DEACTIVATED, target_id=str(agent.pk), actor=admin_user)

    def test_commands_record_as_the_command_line(self, tenant_a, monkeypatch):
        monkeypatch.setattr("sys.stdin", io.StringIO(TEST_PASSWORD))
        set_process_origin(Origin.CLI)
        try:
            call_command("add_staff", "cli-made", "--role", "agent", "--tenant", "tenant-a", "--password-stdin",
                         stdout=io.StringIO())  # fmt: skip
        finally:
            set_process_origin(Origin.SYSTEM)
        events = AuditEvent.objects.filter(target_label="cli-made")
        assert {e.origin for e in events} == {"cli"} and {e.action for e in events} >= {"create", "membership_changed"}


class TestDjangoAdmin:
    def test_admin_lists_views_and_changes_are_recorded(self, admin_user, tenant_a):
        client = verified_client(admin_user)
        client.get(reverse("admin:accounts_tenant_changelist"))
        listed = AuditEvent.objects.get(action=Action.LIST, target_type="accounts.tenant")
        assert str(tenant_a.pk) in listed.metadata["ids"] and listed.origin == "admin"

        client.get(reverse("admin:accounts_tenant_change", args=[tenant_a.pk]))
        assert AuditEvent.objects.filter(action=Action.VIEW, target_id=str(tenant_a.pk), origin="admin").exists()

        response = client.post(
            reverse("admin:accounts_tenant_change", args=[tenant_a.pk]),
            {"slug": tenant_a.slug, "name": "Renamed", "is_active": "on", "audit_retention_days": 400},
        )
        assert response.status_code == 302
        update = AuditEvent.objects.get(action=Action.UPDATE, target_id=str(tenant_a.pk))
        assert update.changes == {
            "audit_retention_days": {"before": 2557, "after": 400},
            "name": {"before": "Tenant A", "after": "Renamed"},
        }
        assert update.tenant_id == tenant_a.pk and Tenant.objects.get(pk=tenant_a.pk).name == "Renamed"

    def test_admin_password_change_records_that_it_changed_not_the_password(self, admin_user, agent):
        client = verified_client(admin_user)
        new = "a-brand-new-passphrase-99"
        response = client.post(
            reverse("admin:auth_user_password_change", args=[agent.pk]),
            {"password1": new, "password2": new, "usable_password": "true"},
        )
        assert response.status_code == 302
        event = AuditEvent.objects.filter(action=Action.UPDATE, target_id=str(agent.pk)).latest("id")
        assert event.changes == {"password": {"changed": True}}
        assert new not in str(AuditEvent.objects.values())

    def test_admin_deletion_is_recorded_once_by_the_service(self, admin_user, agent, tenant_a):
        membership = agent.memberships.get()
        client = verified_client(admin_user)
        client.post(reverse("admin:accounts_membership_delete", args=[membership.pk]), {"post": "yes"})
        assert not agent.memberships.exists()
        (removal,) = AuditEvent.objects.filter(actor=admin_user).exclude(action__in=[Action.VIEW, Action.LIST])
        assert (removal.action, removal.target_id, removal.tenant_id) == (
            Action.MEMBERSHIP_CHANGED, str(agent.pk), tenant_a.pk,
        )  # fmt: skip
        assert removal.changes == {"role": {"before": "agent", "after": None}}

    def test_a_deletion_through_the_admin_alone_is_recorded_by_the_mixin(self, admin_user, agent):
        device = agent.totpdevice_set.get()
        client = verified_client(admin_user)
        assert client.get(reverse("admin:otp_totp_totpdevice_delete", args=[device.pk])).status_code == 200
        assert AuditEvent.objects.filter(action=Action.VIEW, target_id=str(device.pk), origin="admin").exists()
        client.post(reverse("admin:otp_totp_totpdevice_delete", args=[device.pk]), {"post": "yes"})
        assert not agent.totpdevice_set.exists()
        assert AuditEvent.objects.filter(action=Action.DELETE, target_type="otp_totp.totpdevice").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_seal_that_fails_after_commit_does_not_fail_the_change_it_records(settings, caplog):
    """In-process sealing (the embedded defaults) runs after the request's commit; if it fails (two
    requests sealing at once on SQLite), the recorded events stay committed and the next seal
    takes them: the request must not answer 500 for it."""
    from unittest import mock

    from django.db import OperationalError, transaction

    from audit.models import AuditEvent
    from audit.services import audit_record

    def seal_locked():
        raise OperationalError("database is locked")

    settings.AUDIT_SEAL_ON_COMMIT = True
    with mock.patch("audit.services.audit_seal", new=seal_locked):
        with transaction.atomic():
            audit_record(action="login")
    assert AuditEvent.objects.filter(action="login").exists()
    assert "database is locked" in caplog.text  # Django logs a robust callback's failure

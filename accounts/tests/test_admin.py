"""Django admin for BPO admins: no staff member's TOTP secret is shown, every view is recorded, and
every write goes through the services, with one audit record per change."""

import base64
from unittest import mock

import pytest
from django.urls import NoReverseMatch, reverse

from accounts.models import Membership, Role, Tenant, User
from accounts.testing import TEST_PASSWORD, verified_client
from audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db


def _writes(actor):
    """What `actor` changed, as recorded (views and lists left out)."""
    return list(AuditEvent.objects.filter(actor=actor).exclude(action__in=[Action.VIEW, Action.LIST]).order_by("id"))


class TestStaffAuthenticators:
    @pytest.mark.parametrize("view", ["config", "qrcode"])
    def test_a_bpo_admin_cannot_read_anyones_totp_secret(self, admin_user, agent, view):
        client = verified_client(admin_user)
        for device in (agent.totpdevice_set.get(), admin_user.totpdevice_set.get()):
            assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/{view}/").status_code == 404
        with pytest.raises(NoReverseMatch):
            reverse(f"admin:otp_totp_totpdevice_{view}", kwargs={"pk": agent.totpdevice_set.get().pk})

    def test_the_list_and_the_device_page_are_recorded_and_show_no_secret(self, admin_user, agent):
        device = agent.totpdevice_set.get()
        secrets = (device.key, base64.b32encode(device.bin_key).decode().rstrip("="))
        client = verified_client(admin_user)

        page = client.get(reverse("admin:otp_totp_totpdevice_changelist"))
        assert page.status_code == 200 and "qrcode" not in page.content.decode().lower()
        listed = AuditEvent.objects.get(action=Action.LIST, target_type="otp_totp.totpdevice")
        assert str(device.pk) in listed.metadata["ids"] and listed.actor == admin_user and listed.origin == "admin"

        page = client.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk]))
        html = page.content.decode()
        assert page.status_code == 200 and not any(secret in html for secret in secrets)
        assert "qrcode" not in html.lower() and 'name="key"' not in html
        assert AuditEvent.objects.filter(
            action=Action.VIEW, target_type="otp_totp.totpdevice", target_id=str(device.pk), actor=admin_user
        ).exists()

    @pytest.mark.parametrize(
        "url",
        [
            "/admin/otp_totp/totpdevice/?key__startswith=0",
            "/admin/otp_totp/totpdevice/?user__id__exact=1&key__startswith=0",
            "/admin/accounts/user/?password__startswith=argon2",
            "/admin/otp_static/staticdevice/?token_set__token__startswith=a",
        ],
    )
    def test_no_changelist_filters_on_a_secret_a_character_at_a_time(self, admin_user, agent, url):
        response = verified_client(admin_user).get(url)
        assert response.status_code == 400  # Django's DisallowedModelAdminLookup
        assert not AuditEvent.objects.filter(action=Action.LIST).exists()

    def test_ordinary_changelist_filters_still_work(self, admin_user, agent):
        url = f"/admin/otp_totp/totpdevice/?user__id__exact={agent.pk}"
        assert verified_client(admin_user).get(url).status_code == 200

    def test_an_objects_history_is_recorded(self, admin_user, agent):
        client = verified_client(admin_user)
        assert client.get(reverse("admin:accounts_user_history", args=[agent.pk])).status_code == 200
        event = AuditEvent.objects.get(action=Action.VIEW, target_id=str(agent.pk), actor=admin_user)
        assert event.metadata == {"view": "history"}

    def test_removing_a_lost_authenticator_is_one_record_and_narrows_its_owners_sockets(self, admin_user, agent):
        device = agent.totpdevice_set.get()
        with mock.patch("accounts.services.push.user_access_changed") as access_changed:
            response = verified_client(admin_user).post(
                reverse("admin:otp_totp_totpdevice_delete", args=[device.pk]), {"post": "yes"}
            )
        assert response.status_code == 302 and not agent.totpdevice_set.exists()
        access_changed.assert_called_once_with(agent.pk)
        (record,) = _writes(admin_user)
        assert (record.action, record.target_type, record.target_id) == (
            Action.DELETE,
            "otp_totp.totpdevice",
            str(device.pk),
        )


class TestUsers:
    def test_changing_a_users_password_narrows_their_sockets_and_is_recorded_once(self, admin_user, agent):
        new = "a-brand-new-long-password-9"
        with mock.patch("accounts.admin.push.user_access_changed") as access_changed:
            response = verified_client(admin_user).post(
                f"/admin/accounts/user/{agent.pk}/password/",
                {"password1": new, "password2": new, "usable_password": "true"},
            )
        assert response.status_code == 302
        agent.refresh_from_db()
        assert agent.check_password(new)
        access_changed.assert_called_once_with(agent.pk)
        (record,) = _writes(admin_user)
        assert record.action == Action.UPDATE and record.changes == {"password": {"changed": True}}

    def test_adding_a_user_goes_through_user_create_and_is_recorded_once(self, admin_user):
        client = verified_client(admin_user)
        response = client.post(
            reverse("admin:accounts_user_add"),
            {
                "username": "newbie",
                "email": "newbie@example.com",
                "password1": TEST_PASSWORD,
                "password2": TEST_PASSWORD,
            },
        )
        assert response.status_code == 302, response.content[:3000]
        user = User.objects.get(username="newbie")
        assert user.check_password(TEST_PASSWORD) and user.password.startswith(("argon2", "md5", "pbkdf2"))
        (created,) = _writes(admin_user)
        assert (created.action, created.target_id) == (Action.CREATE, str(user.pk))
        assert created.changes["password"] == {"changed": True} and created.changes["email"]["after"] == "n***@e***"
        assert response["Location"] == reverse("admin:accounts_user_change", args=[user.pk])

    @pytest.mark.parametrize("password", ["password", "short", "1234567890123"])
    def test_a_password_the_validators_refuse_creates_nothing(self, admin_user, password):
        client = verified_client(admin_user)
        response = client.post(
            reverse("admin:accounts_user_add"), {"username": "newbie", "password1": password, "password2": password}
        )
        assert response.status_code == 200
        assert response.context["adminform"].form.errors
        assert not User.objects.filter(username="newbie").exists() and _writes(admin_user) == []

    def _change(self, client, user, **data):
        fields = {"username": user.username, "first_name": "", "last_name": "", "email": user.email}
        fields.update({"is_active": "on"} if user.is_active else {})
        fields.update({"is_bpo_admin": "on"} if user.is_bpo_admin else {})
        fields.update({"memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "1"})
        fields.update({"memberships-0-id": str(user.memberships.get().pk), "memberships-0-user": str(user.pk)})
        fields.update(data)
        return client.post(
            reverse("admin:accounts_user_change", args=[user.pk]), {k: v for k, v in fields.items() if v is not None}
        )

    def test_deactivating_is_one_record_through_the_service(self, admin_user, agent):
        response = self._change(verified_client(admin_user), agent, is_active=None)
        assert response.status_code == 302, response.content[:3000]
        assert not User.objects.get(pk=agent.pk).is_active
        assert [(e.action, e.target_id) for e in _writes(admin_user)] == [(Action.USER_DEACTIVATED, str(agent.pk))]

    def test_a_contact_change_is_one_masked_update(self, admin_user, agent):
        response = self._change(verified_client(admin_user), agent, email="pat.smith@example.com", first_name="Pat")
        assert response.status_code == 302
        (update,) = _writes(admin_user)
        assert update.action == Action.UPDATE and update.changes == {
            "email": {"before": "", "after": "p***@e***"},
            "first_name": {"before": "", "after": "***"},
        }
        assert User.objects.get(pk=agent.pk).email == "pat.smith@example.com"

    def test_making_a_bpo_admin_is_one_role_change(self, admin_user, agent):
        assert self._change(verified_client(admin_user), agent, is_bpo_admin="on").status_code == 302
        (change,) = _writes(admin_user)
        assert change.action == Action.ROLE_CHANGED and change.changes == {
            "is_bpo_admin": {"before": False, "after": True}
        }
        assert User.objects.get(pk=agent.pk).has_perm("accounts.change_membership")


class TestTenants:
    def test_adding_a_tenant_goes_through_tenant_create_once(self, admin_user):
        client = verified_client(admin_user)
        response = client.post(
            reverse("admin:accounts_tenant_add"),
            {"name": "Initech", "slug": "initech", "is_active": "on", "audit_retention_days": 400},
        )
        assert response.status_code == 302, response.content[:3000]
        tenant = Tenant.objects.get(slug="initech")
        assert tenant.audit_retention_days == 400
        # The tenant, and the default queue the desk gives it in the same transaction.
        created, queue = _writes(admin_user)
        assert (created.action, created.tenant_id, created.target_type) == (Action.CREATE, tenant.pk, "accounts.tenant")
        assert created.changes["audit_retention_days"] == {"before": None, "after": 400}
        assert (queue.action, queue.tenant_id, queue.target_type) == (Action.CREATE, tenant.pk, "desk.queue")

    def test_deactivating_a_tenant_is_one_record_and_the_slug_stays(self, admin_user, tenant_a):
        response = verified_client(admin_user).post(
            reverse("admin:accounts_tenant_change", args=[tenant_a.pk]),
            {"slug": "renamed-slug", "name": tenant_a.name, "audit_retention_days": tenant_a.audit_retention_days},
        )
        assert response.status_code == 302
        tenant = Tenant.objects.get(pk=tenant_a.pk)
        assert not tenant.is_active and tenant.slug == "tenant-a"
        (change,) = _writes(admin_user)
        assert change.action == Action.UPDATE and change.changes == {"is_active": {"before": True, "after": False}}


class TestMemberships:
    def test_adding_a_membership_is_one_record(self, admin_user, agent, tenant_b):
        response = verified_client(admin_user).post(
            reverse("admin:accounts_membership_add"), {"user": agent.pk, "tenant": tenant_b.pk, "role": Role.SUPERVISOR}
        )
        assert response.status_code == 302
        membership = Membership.objects.get(user=agent, tenant=tenant_b)
        assert response["Location"] == reverse("admin:accounts_membership_changelist")
        (change,) = _writes(admin_user)
        assert change.action == Action.MEMBERSHIP_CHANGED and change.changes == {
            "role": {"before": None, "after": "supervisor"}
        }
        assert membership.role == Role.SUPERVISOR

    def test_agents_and_supervisors_never_reach_the_admin(self, agent, supervisor, tenant_b):
        for user in (agent, supervisor):
            response = verified_client(user).post(
                reverse("admin:accounts_membership_add"), {"user": user.pk, "tenant": tenant_b.pk, "role": Role.ADMIN}
            )
            assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
        assert not Membership.objects.filter(tenant=tenant_b).exists()

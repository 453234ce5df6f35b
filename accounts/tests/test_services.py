import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from accounts import services
from accounts.models import Membership, Role, Tenant, User
from accounts.roles import BPO_ADMIN_GROUP, BPO_ADMIN_PERMISSIONS, ROLE_PERMISSIONS
from accounts.selectors import role_for, tenant_get_for, tenant_list_for, user_has_tenant_perm
from accounts.testing import TEST_PASSWORD, make_staff
from audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db


def test_role_groups_carry_exactly_their_permissions():
    for role, perms in [*ROLE_PERMISSIONS.items(), (BPO_ADMIN_GROUP, BPO_ADMIN_PERMISSIONS)]:
        group = Group.objects.get(name=role)
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert held == perms


def test_user_create_refuses_weak_passwords_and_stores_argon2_in_production_settings():
    with pytest.raises(ValidationError):
        services.user_create(username="weak", password="password")
    assert not User.objects.filter(username="weak").exists()

    from config import settings as production_settings

    assert production_settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


def test_membership_set_creates_then_changes_the_role(agent, tenant_a):
    membership = services.membership_set(user=agent, tenant=tenant_a, role=Role.SUPERVISOR)
    assert Membership.objects.get(pk=membership.pk).role == Role.SUPERVISOR
    assert Membership.objects.filter(user=agent).count() == 1


def test_membership_set_refuses_an_unknown_role(agent, tenant_b):
    with pytest.raises(ValidationError):
        services.membership_set(user=agent, tenant=tenant_b, role="root")
    assert not Membership.objects.filter(user=agent, tenant=tenant_b).exists()


def test_tenant_create_validates_the_slug():
    with pytest.raises(ValidationError):
        services.tenant_create(slug="not a slug!", name="X")
    assert not Tenant.objects.exists()


class TestAccess:
    def test_staff_see_only_their_active_tenants(self, agent, tenant_a, tenant_b):
        assert list(tenant_list_for(user=agent)) == [tenant_a]
        services.tenant_set_active(tenant=tenant_a, is_active=False)
        assert list(tenant_list_for(user=agent)) == []

    def test_bpo_admin_sees_every_active_tenant(self, admin_user, tenant_a, tenant_b):
        assert set(tenant_list_for(user=admin_user)) == {tenant_a, tenant_b}
        assert role_for(user=admin_user, tenant=tenant_b) == Role.ADMIN

    def test_another_tenant_is_a_404_like_a_missing_one(self, agent, tenant_b):
        from django.http import Http404

        for tenant_id in (tenant_b.pk, 999999, "abc", None):
            with pytest.raises(Http404):
                tenant_get_for(user=agent, tenant_id=tenant_id)

    def test_permissions_follow_the_role_in_that_tenant(self, tenant_a, tenant_b):
        user = make_staff("two-hats", role=Role.AGENT, tenants=[tenant_a])
        services.membership_set(user=user, tenant=tenant_b, role=Role.ADMIN)
        assert user_has_tenant_perm(user=user, tenant=tenant_b, perm="accounts.change_membership")
        assert not user_has_tenant_perm(user=user, tenant=tenant_a, perm="accounts.change_membership")
        assert user_has_tenant_perm(user=user, tenant=tenant_a, perm="accounts.view_tenant")

    def test_inactive_users_have_no_tenants_and_no_permissions(self, agent, tenant_a):
        services.user_deactivate(user=agent)
        assert list(tenant_list_for(user=agent)) == []
        assert not user_has_tenant_perm(user=agent, tenant=tenant_a, perm="accounts.view_tenant")


def test_mfa_enrolment_confirm_refuses_a_wrong_code_and_changes_nothing(tenant_a):
    user = make_staff("enrol", enrolled=False)
    device = services.mfa_enrolment_start(user=user)
    assert services.mfa_enrolment_start(user=user).pk == device.pk  # one pending device, not a pile
    with pytest.raises(ValidationError):
        services.mfa_enrolment_confirm(user=user, device=device, token="000000x")
    device.refresh_from_db()
    assert not device.confirmed
    assert not user.staticdevice_set.exists()


def test_the_fixture_password_passes_the_validators_and_a_weak_one_does_not():
    from django.contrib.auth.password_validation import validate_password

    validate_password(TEST_PASSWORD, user=User(username="someone"))  # raises if the validators refuse it
    with pytest.raises(ValidationError):
        validate_password("12345678901234", user=User(username="someone"))  # long enough, but all digits


def test_bpo_admin_flag_follows_the_group(agent):
    services.user_set_bpo_admin(user=agent, is_bpo_admin=True)
    agent = User.objects.get(pk=agent.pk)
    assert agent.is_staff and agent.has_perm("accounts.change_membership") and not agent.is_superuser
    services.user_set_bpo_admin(user=agent, is_bpo_admin=False)
    agent = User.objects.get(pk=agent.pk)
    assert not agent.is_staff and not agent.has_perm("accounts.change_membership")


class TestMfaVerify:
    def test_the_right_code_returns_its_device_and_is_recorded(self, agent):
        from accounts.testing import totp_code_for

        device = services.mfa_verify(user=agent, token=totp_code_for(agent))
        assert device == agent.totpdevice_set.get()
        assert AuditEvent.objects.get(actor=agent, action=Action.MFA_VERIFIED).metadata == {"method": "totp"}

    def test_a_backup_code_is_recorded_as_one(self, agent):
        code = services.mfa_backup_codes_regenerate(user=agent)[0]
        services.mfa_verify(user=agent, token=code)
        assert AuditEvent.objects.get(actor=agent, action=Action.MFA_VERIFIED).metadata == {"method": "backup_code"}

    def test_a_wrong_code_is_refused_and_recorded(self, agent):
        with pytest.raises(services.MFAVerifyError) as refused:
            services.mfa_verify(user=agent, token="not-a-code")
        assert refused.value.wait_seconds == 0 and refused.value.messages == [services.WRONG_CODE]
        assert AuditEvent.objects.filter(actor=agent, action=Action.MFA_FAILED).count() == 1


class TestReauthCheck:
    def _request(self, user):
        from django.test import RequestFactory

        request = RequestFactory().post("/accounts/reauth/")
        request.user = user
        return request

    def test_password_and_code_pass_and_are_recorded(self, agent):
        from accounts.testing import totp_code_for

        services.reauth_check(request=self._request(agent), password=TEST_PASSWORD, token=totp_code_for(agent))
        assert AuditEvent.objects.filter(actor=agent, action=Action.REAUTH).count() == 1

    @pytest.mark.parametrize("wrong", ["password", "token"])
    def test_either_one_wrong_is_refused_and_recorded(self, agent, wrong):
        from accounts.testing import totp_code_for

        password = "not-the-password" if wrong == "password" else TEST_PASSWORD
        token = "000000x" if wrong == "token" else totp_code_for(agent)
        with pytest.raises(ValidationError) as refused:
            services.reauth_check(request=self._request(agent), password=password, token=token)
        assert hasattr(refused.value, "error_dict") == (wrong == "token")  # which field the form marks
        failed = AuditEvent.objects.get(actor=agent, action=Action.REAUTH_FAILED)
        assert failed.metadata == {"step": "otp" if wrong == "token" else "password"}
        assert not AuditEvent.objects.filter(action=Action.REAUTH).exists()


class TestUpdates:
    def test_user_update_records_one_masked_diff_and_refuses_access_fields(self, agent, admin_user):
        services.user_update(user=agent, data={"email": "a.b@example.com", "last_name": "Brown"}, actor=admin_user)
        (event,) = AuditEvent.objects.filter(action=Action.UPDATE, target_id=str(agent.pk), actor=admin_user)
        assert event.changes == {
            "email": {"before": "", "after": "a***@e***"},
            "last_name": {"before": "", "after": "B***wn"},
        }
        with pytest.raises(ValidationError):
            services.user_update(user=agent, data={"is_superuser": True}, actor=admin_user)
        assert not User.objects.get(pk=agent.pk).is_superuser

    def test_tenant_update_records_one_diff_and_nothing_when_nothing_changed(self, tenant_a, admin_user):
        services.tenant_update(tenant=tenant_a, data={"name": "Tenant A"}, actor=admin_user)
        assert not AuditEvent.objects.filter(action=Action.UPDATE).exists()
        services.tenant_update(tenant=tenant_a, data={"audit_retention_days": 30}, actor=admin_user)
        (event,) = AuditEvent.objects.filter(action=Action.UPDATE, tenant=tenant_a)
        assert event.changes == {"audit_retention_days": {"before": 2557, "after": 30}}
        for bad in ({"slug": "other"}, {"name": ""}):
            with pytest.raises(ValidationError):
                services.tenant_update(tenant=Tenant.objects.get(pk=tenant_a.pk), data=bad, actor=admin_user)
        assert Tenant.objects.get(pk=tenant_a.pk).slug == "tenant-a"

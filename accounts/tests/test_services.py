import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from accounts import services
from accounts.models import Membership, Role, Tenant, User
from accounts.roles import BPO_ADMIN_GROUP, BPO_ADMIN_PERMISSIONS, ROLE_PERMISSIONS
from accounts.selectors import role_for, tenant_get_for, tenant_list_for, user_has_tenant_perm
from accounts.testing import TEST_PASSWORD, make_staff

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
    assert TEST_PASSWORD  # the fixture password is strong enough for the validators


def test_bpo_admin_flag_follows_the_group(agent):
    services.user_set_bpo_admin(user=agent, is_bpo_admin=True)
    agent = User.objects.get(pk=agent.pk)
    assert agent.is_staff and agent.has_perm("accounts.change_membership") and not agent.is_superuser
    services.user_set_bpo_admin(user=agent, is_bpo_admin=False)
    agent = User.objects.get(pk=agent.pk)
    assert not agent.is_staff and not agent.has_perm("accounts.change_membership")

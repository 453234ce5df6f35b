"""Access scopes deny by default: a BPO-wide scope still respects the permission asked."""

import pytest

from accounts import services
from accounts.models import Role
from accounts.selectors import tenant_ids_with_perm, user_has_tenant_perm
from accounts.testing import make_staff

pytestmark = pytest.mark.django_db


def test_a_bpo_admin_gets_every_active_tenant_only_for_the_bpo_admin_groups_permissions(admin_user, tenant_a, tenant_b):
    assert set(tenant_ids_with_perm(user=admin_user, perm="alerts.view_alert")) == {tenant_a.pk, tenant_b.pk}
    assert tenant_ids_with_perm(user=admin_user, perm="alerts.change_alert") == []
    assert tenant_ids_with_perm(user=admin_user, perm="alerts.delete_alert") == []
    assert user_has_tenant_perm(user=admin_user, tenant=tenant_a, perm="alerts.view_alert")
    assert not user_has_tenant_perm(user=admin_user, tenant=tenant_a, perm="alerts.change_alert")


def test_a_bpo_admin_with_a_membership_gets_what_the_membership_gives(admin_user, tenant_a, tenant_b):
    services.membership_set(user=admin_user, tenant=tenant_a, role=Role.AGENT)
    assert tenant_ids_with_perm(user=admin_user, perm="alerts.change_alert") == [tenant_a.pk]
    assert user_has_tenant_perm(user=admin_user, tenant=tenant_a, perm="alerts.change_alert")
    assert not user_has_tenant_perm(user=admin_user, tenant=tenant_b, perm="alerts.change_alert")


def test_deactivated_tenants_and_users_are_out_of_every_scope(admin_user, agent, tenant_a, tenant_b):
    tenant_b.is_active = False
    tenant_b.save(update_fields=["is_active"])
    assert tenant_ids_with_perm(user=admin_user, perm="alerts.view_alert") == [tenant_a.pk]
    assert tenant_ids_with_perm(user=agent, perm="alerts.change_alert") == [tenant_a.pk]
    services.user_deactivate(user=agent)
    assert tenant_ids_with_perm(user=agent, perm="alerts.view_alert") == []


def test_a_role_without_the_permission_gets_nothing(agent, tenant_a):
    assert tenant_ids_with_perm(user=agent, perm="audit.view_auditevent") == []
    other = make_staff("nobody", role=Role.SUPERVISOR, tenants=[])
    assert tenant_ids_with_perm(user=other, perm="alerts.view_alert") == []


def test_a_deactivated_tenant_gives_its_members_no_permission_either(agent, tenant_a):
    assert user_has_tenant_perm(user=agent, tenant=tenant_a, perm="alerts.view_alert")
    services.tenant_set_active(tenant=tenant_a, is_active=False)
    assert not user_has_tenant_perm(user=agent, tenant=tenant_a, perm="alerts.view_alert")
    assert tenant_ids_with_perm(user=agent, perm="alerts.view_alert") == []

"""Access scopes deny by default: a BPO-wide scope still respects the permission asked."""

import pytest
from django.contrib.auth.models import Permission

from accounts import services
from accounts.models import Role, User
from accounts.selectors import (
    request_memo_start,
    role_for,
    tenant_access_for,
    tenant_ids_with_perm,
    tenant_list_for,
    user_has_tenant_perm,
)
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


def test_the_access_read_once_answers_as_the_roles_groups_say_for_every_permission(
    admin_user, agent, supervisor, tenant_a, tenant_b
):
    """tenant_access_for reads memberships and role permissions in one query: its answers are the
    groups' own, for every permission any group carries, and the tenant list and role are those of
    tenant_list_for and role_for."""
    services.membership_set(user=supervisor, tenant=tenant_b, role=Role.ADMIN)
    services.membership_set(user=admin_user, tenant=tenant_b, role=Role.AGENT)
    perms = {f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.filter(group__isnull=False)}
    for user in (admin_user, agent, supervisor, make_staff("nobody", tenants=[])):
        access = tenant_access_for(user=user)
        assert list(access.tenants) == list(tenant_list_for(user=user))
        for tenant in (tenant_a, tenant_b):
            assert access.role_in(tenant) == role_for(user=user, tenant=tenant)
            for perm in perms:
                assert (tenant.pk in access.tenant_ids_with_perm(perm)) == user_has_tenant_perm(
                    user=user, tenant=tenant, perm=perm
                ), (user, tenant, perm)


def test_the_access_read_is_kept_for_the_request_only(agent, tenant_a, django_assert_num_queries):
    """Outside a request every call reads again (a membership removed is seen at once); the
    request's user reads once, and a new request (a new user object) reads again."""
    assert tenant_ids_with_perm(user=agent, perm="alerts.view_alert") == [tenant_a.pk]
    services.membership_remove(user=agent, tenant=tenant_a)
    assert tenant_ids_with_perm(user=agent, perm="alerts.view_alert") == []
    services.membership_set(user=agent, tenant=tenant_a, role=Role.AGENT)
    request_user = User.objects.get(pk=agent.pk)
    request_memo_start(request_user)
    with django_assert_num_queries(1):
        for perm in ("alerts.view_alert", "alerts.change_alert", "desk.view_queue", "alerts.view_alert"):
            tenant_ids_with_perm(user=request_user, perm=perm)
    next_request = User.objects.get(pk=agent.pk)
    request_memo_start(next_request)
    services.membership_remove(user=agent, tenant=tenant_a)
    assert tenant_ids_with_perm(user=next_request, perm="alerts.view_alert") == []

"""Reads of staff, tenants and memberships, and the access functions for tenants."""

from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import Http404
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership, Role, Tenant, User
from accounts.roles import BPO_ADMIN_GROUP


def tenant_list_for(*, user: User) -> QuerySet[Tenant]:
    """The active tenants `user` may act in: their memberships, or every tenant for a BPO admin."""
    if not user.is_authenticated or not user.is_active:
        return Tenant.objects.none()
    tenants = Tenant.objects.filter(is_active=True)
    if user.is_bpo_admin:
        return tenants
    return tenants.filter(memberships__user=user).distinct()


def tenant_get_for(*, user: User, tenant_id: int) -> Tenant:
    """One tenant `user` may act in. Missing and forbidden both raise Http404."""
    try:
        return tenant_list_for(user=user).get(pk=tenant_id)
    except (Tenant.DoesNotExist, ValueError, TypeError):
        raise Http404("No such tenant.") from None


def role_for(*, user: User, tenant: Tenant) -> str | None:
    """The role `user` holds in `tenant` (admin for a BPO admin), or None."""
    if user.is_bpo_admin:
        return Role.ADMIN
    return Membership.objects.filter(user=user, tenant=tenant).values_list("role", flat=True).first()


def _groups_with_perm(perm: str) -> QuerySet[Group]:
    app_label, codename = perm.split(".")
    return Group.objects.filter(permissions__content_type__app_label=app_label, permissions__codename=codename)


def bpo_admin_has_perm(*, user: User, perm: str) -> bool:
    """Whether `user` is an active BPO admin whose group (bpo_admin) carries `perm`: being BPO-wide
    widens a scope to every tenant only for the permissions that group holds."""
    if not (user.is_active and getattr(user, "is_bpo_admin", False)):
        return False
    return _groups_with_perm(perm).filter(name=BPO_ADMIN_GROUP).exists()


def user_has_tenant_perm(*, user: User, tenant: Tenant, perm: str) -> bool:
    """Whether `user` may use `perm` ("app_label.codename") in `tenant`: their role there carries
    it, or they are a BPO admin and the bpo_admin group carries it (for an active tenant)."""
    if not (user.is_active and tenant.is_active):  # as tenant_ids_with_perm: a deactivated tenant is no scope
        return False
    if bpo_admin_has_perm(user=user, perm=perm):
        return True
    return Membership.objects.filter(user=user, tenant=tenant, role__in=_groups_with_perm(perm).values("name")).exists()


def mfa_has_confirmed_authenticator(*, user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def mfa_authenticator_list(*, user: User) -> QuerySet[TOTPDevice]:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk")


def mfa_backup_codes_remaining(*, user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def tenant_ids_with_perm(*, user: User, perm: str) -> list[int]:
    """Ids of the active tenants where `user` may use `perm`: where their role carries it, and every
    active tenant for a BPO admin when the bpo_admin group carries it. Deny by default: a
    permission nobody gave `user` is an empty list, BPO admin or not. For list screens that filter
    by tenant; at most two queries."""
    if not user.is_active:
        return []
    tenants = Tenant.objects.filter(is_active=True)
    if bpo_admin_has_perm(user=user, perm=perm):
        return list(tenants.values_list("pk", flat=True))
    return list(
        Membership.objects.filter(
            user=user, role__in=_groups_with_perm(perm).values("name"), tenant__is_active=True
        ).values_list("tenant_id", flat=True)
    )

"""Reads of staff, tenants and memberships, and the access functions for tenants."""

from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import Http404
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership, Role, Tenant, User


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


def user_has_tenant_perm(*, user: User, tenant: Tenant, perm: str) -> bool:
    """Whether the role `user` holds in `tenant` carries `perm` ("app_label.codename")."""
    if not user.is_active:
        return False
    if user.is_bpo_admin:
        return True
    role = role_for(user=user, tenant=tenant)
    if role is None:
        return False
    app_label, codename = perm.split(".")
    return Group.objects.filter(
        name=role, permissions__content_type__app_label=app_label, permissions__codename=codename
    ).exists()


def mfa_has_confirmed_authenticator(*, user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def mfa_authenticator_list(*, user: User) -> QuerySet[TOTPDevice]:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk")


def mfa_backup_codes_remaining(*, user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def tenant_ids_with_perm(*, user: User, perm: str) -> list[int] | None:
    """Ids of the active tenants where `user`'s role carries `perm`; None means every tenant (a BPO
    admin). One query: for list screens that filter by tenant."""
    if not user.is_active:
        return []
    if user.is_bpo_admin:
        return None
    app_label, codename = perm.split(".")
    roles = Group.objects.filter(permissions__content_type__app_label=app_label, permissions__codename=codename)
    return list(
        Membership.objects.filter(user=user, role__in=roles.values("name"), tenant__is_active=True).values_list(
            "tenant_id", flat=True
        )
    )

"""Reads of staff, tenants and memberships, and the access functions for tenants."""

import functools
from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.db.models import QuerySet
from django.http import Http404
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership, Role, Tenant, User
from accounts.roles import BPO_ADMIN_GROUP
from config.sql import ModelRead


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
    if request_memo(user) is not None:  # in a request: the access read once (tenant_access_for), no query
        return tenant.pk in tenant_access_for(user=user).tenant_ids_with_perm(perm)
    if bpo_admin_has_perm(user=user, perm=perm):
        return True
    return Membership.objects.filter(user=user, tenant=tenant, role__in=_groups_with_perm(perm).values("name")).exists()


def mfa_has_confirmed_authenticator(*, user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


_TOTP_DEVICES = ModelRead(TOTPDevice)
_MAX_ID = 2**63 - 1


def mfa_device_by_persistent_id(persistent_id: str, *, totp_devices: dict | None = None) -> Device | None:
    """The OTP device a session names (django_otp's Device.from_persistent_id, without locking), or
    None: what the OTP middleware and the WebSocket's session check verify a session against. An
    authenticator app's device, the one staff sign in with, is taken from `totp_devices` (the
    user's, read with the user: accounts.backends) when given, else read with a statement built
    once (0.84 ms through the ORM, 0.33 ms so); any other kind as django_otp reads it."""
    label, _, pk = persistent_id.rpartition("/")
    if label != TOTPDevice.model_label():
        return Device.from_persistent_id(persistent_id)
    if not (pk.isascii() and pk.isdigit()) or int(pk) > _MAX_ID:
        return None
    if totp_devices is not None:
        return totp_devices.get(int(pk))
    found = _TOTP_DEVICES.rows('t."id" = %s', [int(pk)])
    return found[0] if found else None


def mfa_authenticator_list(*, user: User) -> QuerySet[TOTPDevice]:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk")


def mfa_backup_codes_remaining(*, user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def tenant_ids_with_perm(*, user: User, perm: str) -> list[int]:
    """Ids of the active tenants where `user` may use `perm`, by tenant name: where their role
    carries it, and every active tenant for a BPO admin when the bpo_admin group carries it. Deny
    by default: a permission nobody gave `user` is an empty list, BPO admin or not. For list screens
    that filter by tenant; read from `tenant_access_for` (one query, none more in a request)."""
    return tenant_access_for(user=user).tenant_ids_with_perm(perm)


# --- What a user may do in which tenant, read once a request ---------------------------------
#
# A page asks "where may this user see alerts? change them? see every queue?" several times, and
# the top bar wants their tenants and their role: each was a query of its own. `tenant_access_for`
# reads the user's memberships of active tenants with the permissions of each role's group in one
# query (a BPO admin: every active tenant, and the bpo_admin group's permissions, in two).
#
# Within a request it is read once: CurrentTenantMiddleware gives the request's user a memo
# (`request_memo_start`) that lives as long as that user object, one request, like Django's own
# permission cache. A grant or a membership changed by another request is seen by the next request;
# nothing is kept across requests. Outside a request (tasks, sockets, the shell) there is no memo:
# every call reads the database again.

_MEMO = "_request_memo"


def request_memo_start(user) -> None:
    """Give the request's user a memo for the access reads of this request (middleware only)."""
    setattr(user, _MEMO, {})


def request_memo(user) -> dict | None:
    """The memo of the request `user` came with, or None outside a request."""
    return getattr(user, _MEMO, None)


@dataclass(frozen=True)
class TenantAccess:
    """What one user may do in which active tenant, as read by `tenant_access_for`."""

    tenants: tuple[Tenant, ...]  # the tenants they may act in (tenant_list_for), by name
    roles: dict[int, str]  # tenant id -> their role there (their memberships)
    role_perms: dict[str, frozenset[str]]  # role -> the "app_label.codename" its group carries
    bpo_perms: frozenset[str]  # a BPO admin's: what the bpo_admin group carries (else nothing)
    is_bpo_admin: bool

    def tenant_ids_with_perm(self, perm: str) -> list[int]:
        if perm in self.bpo_perms:
            return [t.pk for t in self.tenants]
        return [t.pk for t in self.tenants if perm in self.role_perms.get(self.roles.get(t.pk), ())]

    def role_in(self, tenant: Tenant) -> str | None:
        """Their role in `tenant` (admin for a BPO admin), as role_for says it."""
        return Role.ADMIN if self.is_bpo_admin else self.roles.get(tenant.pk)


_NO_ACCESS = TenantAccess(tenants=(), roles={}, role_perms={}, bpo_perms=frozenset(), is_bpo_admin=False)


def tenant_access_for(*, user: User) -> TenantAccess:
    """What `user` may do in which active tenant: the one read behind tenant_ids_with_perm and the
    top bar's tenants and role. Once a request (see request_memo_start), else on every call."""
    memo = request_memo(user)
    if memo is not None and "tenant_access" in memo:
        return memo["tenant_access"]
    access = _tenant_access_read(user)
    if memo is not None:
        memo["tenant_access"] = access
    return access


def tenant_of(*, user: User, tenant_id: int) -> Tenant:
    """The tenant `tenant_id` from the user's access read (tenant_access_for: no query when it is one
    they may act in, as the tenant of anything they were allowed to see is); else read by id."""
    for tenant in tenant_access_for(user=user).tenants:
        if tenant.pk == tenant_id:
            return tenant
    return Tenant.objects.get(pk=tenant_id)


_TENANTS = ModelRead(Tenant)


@functools.cache
def _tenant_access_sql(bpo_admin: bool) -> tuple[str, tuple]:
    """The joins and extra columns of the access read: each tenant joined to the user's membership
    (every active tenant for a BPO admin), and to the permissions of the group named as the role:
    one row a permission, or one with NULLs. Written in SQL once (ModelRead): through the ORM's
    raw() every request resolved its columns again."""
    m = Membership._meta.db_table
    g, gp = Group._meta.db_table, Group.permissions.through._meta.db_table
    p, ct = Permission._meta.db_table, Permission._meta.get_field("content_type").related_model._meta.db_table
    joins = f"""
        {"LEFT JOIN" if bpo_admin else "JOIN"} {m} m ON m.tenant_id = t.id AND m.user_id = %s
        LEFT JOIN {g} g ON g.name = m.role
        LEFT JOIN {gp} gp ON gp.group_id = g.id
        LEFT JOIN {p} p ON p.id = gp.permission_id
        LEFT JOIN {ct} ct ON ct.id = p.content_type_id
    """  # table names from model metadata; the user id is a parameter
    extra = (("access_role", "m.role", ()), ("access_app", "ct.app_label", ()), ("access_codename", "p.codename", ()))
    return joins, extra


def _tenant_access_read(user: User) -> TenantAccess:
    if not (user.is_authenticated and user.is_active):
        return _NO_ACCESS
    bpo_admin = bool(user.is_bpo_admin)
    joins, extra = _tenant_access_sql(bpo_admin)
    tenants: dict[int, Tenant] = {}
    roles: dict[int, str] = {}
    role_perms: dict[str, set[str]] = {}
    for row in _TENANTS.rows("t.is_active", (), "ORDER BY t.name, t.id", extra=extra, joins=(joins, [user.pk])):
        tenants.setdefault(row.pk, row)
        if row.access_role is not None:
            roles[row.pk] = row.access_role
            perms = role_perms.setdefault(row.access_role, set())
            if row.access_codename is not None:
                perms.add(f"{row.access_app}.{row.access_codename}")
    bpo_perms = frozenset()
    if bpo_admin:
        bpo_perms = frozenset(
            f"{app}.{codename}"
            for app, codename in Permission.objects.filter(group__name=BPO_ADMIN_GROUP).values_list(
                "content_type__app_label", "codename"
            )
        )
    return TenantAccess(
        tenants=tuple(tenants.values()),
        roles=roles,
        role_perms={role: frozenset(perms) for role, perms in role_perms.items()},
        bpo_perms=bpo_perms,
        is_bpo_admin=bpo_admin,
    )

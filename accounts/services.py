"""Every write to staff users, tenants, memberships and MFA devices."""

import logging

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership, Role, Tenant, User
from accounts.roles import BPO_ADMIN_GROUP, BPO_ADMIN_PERMISSIONS, ROLE_PERMISSIONS
from audit.masking import audit_diff
from audit.models import Action
from audit.services import audit_record
from config import push

logger = logging.getLogger(__name__)


@transaction.atomic
def role_groups_sync() -> None:
    """Make the role groups hold exactly the permissions in accounts.roles."""
    for role, perms in [*ROLE_PERMISSIONS.items(), (BPO_ADMIN_GROUP, BPO_ADMIN_PERMISSIONS)]:
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            found = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if found is None:  # during a partial migrate the permission may not exist yet
                continue
            wanted.append(found)
        group.permissions.set(wanted)


@transaction.atomic
def tenant_create(*, slug: str, name: str, actor: User | None = None) -> Tenant:
    tenant = Tenant(slug=slug, name=name)
    tenant.full_clean()
    tenant.save()
    audit_record(
        action=Action.CREATE,
        actor=actor,
        tenant=tenant,
        target=tenant,
        changes=audit_diff({}, {"slug": slug, "name": name}),
    )
    logger.info("tenant created", extra={"tenant_id": tenant.pk})
    return tenant


@transaction.atomic
def tenant_set_active(*, tenant: Tenant, is_active: bool, actor: User | None = None) -> Tenant:
    before = tenant.is_active
    tenant.is_active = is_active
    tenant.save(update_fields=["is_active"])
    audit_record(
        action=Action.UPDATE,
        actor=actor,
        tenant=tenant,
        target=tenant,
        changes=audit_diff({"is_active": before}, {"is_active": is_active}),
    )
    # Everyone who may hear the tenant: its members and the BPO admins; their connections re-scope.
    users = User.objects.filter(Q(memberships__tenant=tenant) | Q(is_bpo_admin=True)).distinct()
    push.users_access_changed(users.values_list("pk", flat=True))
    return tenant


@transaction.atomic
def user_create(
    *, username: str, password: str, email: str = "", is_bpo_admin: bool = False, actor: User | None = None
) -> User:
    """Create a staff user; the password must pass the configured validators."""
    user = User(username=username, email=email, is_bpo_admin=is_bpo_admin, is_staff=is_bpo_admin)
    user.full_clean(exclude=["password"])
    validate_password(password, user=user)
    user.set_password(password)
    user.save()
    audit_record(
        action=Action.CREATE,
        actor=actor,
        target=user,
        changes=audit_diff({}, {"username": username, "email": email, "password": "set"}, personal={"email"}),
    )
    if is_bpo_admin:
        user_set_bpo_admin(user=user, is_bpo_admin=True, actor=actor)
    logger.info("staff user created", extra={"user_id": user.pk})
    return user


@transaction.atomic
def user_set_password(*, user: User, password: str, actor: User | None = None) -> User:
    validate_password(password, user=user)
    user.set_password(password)
    user.save(update_fields=["password"])
    audit_record(action=Action.UPDATE, actor=actor, target=user, changes={"password": {"changed": True}})
    push.user_access_changed(user.pk)  # the sessions' auth hash no longer matches
    return user


@transaction.atomic
def user_set_bpo_admin(*, user: User, is_bpo_admin: bool, actor: User | None = None) -> User:
    """BPO admins manage every tenant; they are the only users Django admin lets in, and the
    bpo_admin group gives them the admin permissions they need there (and no superuser bypass)."""
    before = user.is_bpo_admin
    user.is_bpo_admin = is_bpo_admin
    user.is_staff = is_bpo_admin
    user.save(update_fields=["is_bpo_admin", "is_staff"])
    if before != is_bpo_admin:
        audit_record(
            action=Action.ROLE_CHANGED,
            actor=actor,
            target=user,
            changes=audit_diff({"is_bpo_admin": before}, {"is_bpo_admin": is_bpo_admin}),
        )
    group, _ = Group.objects.get_or_create(name=BPO_ADMIN_GROUP)
    if is_bpo_admin:
        user.groups.add(group)
    else:
        user.groups.remove(group)
    push.user_access_changed(user.pk)
    return user


@transaction.atomic
def user_deactivate(*, user: User, actor: User | None = None) -> User:
    """Deactivate a user. Their sessions end at once: the authentication backend refuses
    inactive users on every request, so an open session is anonymous from the next request,
    and their open desk connections are closed once this commits."""
    user.is_active = False
    user.save(update_fields=["is_active"])
    audit_record(action=Action.USER_DEACTIVATED, actor=actor, target=user)
    push.user_sessions_end(user_id=user.pk)
    logger.info("staff user deactivated", extra={"user_id": user.pk})
    return user


@transaction.atomic
def user_activate(*, user: User, actor: User | None = None) -> User:
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit_record(action=Action.USER_ACTIVATED, actor=actor, target=user)
    return user


@transaction.atomic
def membership_set(*, user: User, tenant: Tenant, role: str, actor: User | None = None) -> Membership:
    """Give `user` the `role` in `tenant`, creating the membership or changing its role."""
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    membership, created = Membership.objects.select_for_update().get_or_create(
        user=user, tenant=tenant, defaults={"role": role}
    )
    if created:
        audit_record(
            action=Action.MEMBERSHIP_CHANGED,
            actor=actor,
            tenant=tenant,
            target=user,
            changes=audit_diff({"role": None}, {"role": role}),
        )
    elif membership.role != role:
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role", "updated_at"])
        audit_record(
            action=Action.ROLE_CHANGED,
            actor=actor,
            tenant=tenant,
            target=user,
            changes=audit_diff({"role": before}, {"role": role}),
        )
    push.user_access_changed(user.pk)
    return membership


@transaction.atomic
def membership_remove(*, user: User, tenant: Tenant, actor: User | None = None) -> None:
    membership = Membership.objects.select_for_update().filter(user=user, tenant=tenant).first()
    if membership is None:
        return
    membership.delete()
    audit_record(
        action=Action.MEMBERSHIP_CHANGED,
        actor=actor,
        tenant=tenant,
        target=user,
        changes=audit_diff({"role": membership.role}, {"role": None}),
    )
    push.user_access_changed(user.pk)


# --- MFA -------------------------------------------------------------------------------------


@transaction.atomic
def mfa_enrolment_start(*, user: User) -> TOTPDevice:
    """The user's pending (unconfirmed) authenticator, created on first use."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


@transaction.atomic
def mfa_enrolment_confirm(*, user: User, device: TOTPDevice, token: str) -> list[str]:
    """Confirm a pending authenticator with a code from it. It replaces any earlier authenticator
    (only now, so abandoning a replacement leaves the old one working) and comes with a new set
    of backup codes, returned here in clear once."""
    if device.user_id != user.pk or device.confirmed:
        raise ValidationError("This enrolment is no longer pending. Start again.")
    if not device.verify_token(token):
        raise ValidationError("That code is not valid. Check the time on your phone and try again.")
    replaced = TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()[0]
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    audit_record(action=Action.MFA_ENROLLED, actor=user, target=user, metadata={"replaced": replaced})
    push.user_access_changed(user.pk)  # sessions verified with a replaced device are unverified now
    return _backup_codes_make(user=user)


@transaction.atomic
def mfa_backup_codes_regenerate(*, user: User) -> list[str]:
    """Replace the user's one-time backup codes; the new ones are returned once."""
    audit_record(action=Action.MFA_BACKUP_CODES, actor=user, target=user)
    return _backup_codes_make(user=user)


def _backup_codes_make(*, user: User) -> list[str]:
    device, _ = StaticDevice.objects.get_or_create(user=user, name="Backup codes", defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(settings.MFA_BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


@transaction.atomic
def session_expired_clear() -> int:
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted

"""Every write to staff users, tenants, memberships and MFA devices."""

import logging
import math

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_otp import devices_for_user, match_token
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership, Role, Tenant, User
from accounts.roles import BPO_ADMIN_GROUP, BPO_ADMIN_PERMISSIONS, ROLE_PERMISSIONS
from accounts.signals import tenant_created
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
def tenant_create(
    *,
    slug: str,
    name: str,
    is_active: bool = True,
    audit_retention_days: int | None = None,
    actor: User | None = None,
) -> Tenant:
    tenant = Tenant(slug=slug, name=name, is_active=is_active)
    if audit_retention_days is not None:
        tenant.audit_retention_days = audit_retention_days
    tenant.full_clean()
    tenant.save()
    after = {"slug": slug, "name": name}
    if not is_active:
        after["is_active"] = False
    if audit_retention_days is not None:
        after["audit_retention_days"] = tenant.audit_retention_days
    audit_record(action=Action.CREATE, actor=actor, tenant=tenant, target=tenant, changes=audit_diff({}, after))
    # In this transaction: the desk adds the tenant's default queue (a tenant without one would
    # leave its alerts in no queue), without the identity domain importing the desk.
    tenant_created.send(sender=Tenant, tenant=tenant, actor=actor)
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


TENANT_UPDATABLE_FIELDS = frozenset({"name", "audit_retention_days"})


@transaction.atomic
def tenant_update(*, tenant: Tenant, data: dict, actor: User | None = None) -> Tenant:
    """Change a tenant's name or retention period (`data`: field -> new value); one record of
    what changed. Activation has its own service (tenant_set_active); the slug does not change."""
    unknown = set(data) - TENANT_UPDATABLE_FIELDS
    if unknown:
        raise ValidationError(f"These tenant fields cannot be changed here: {', '.join(sorted(unknown))}.")
    before = {name: getattr(tenant, name) for name in data}
    for name, value in data.items():
        setattr(tenant, name, value)
    tenant.full_clean()
    changes = audit_diff(before, dict(data))
    if changes:
        tenant.save(update_fields=list(data))
        audit_record(action=Action.UPDATE, actor=actor, tenant=tenant, target=tenant, changes=changes)
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


USER_UPDATABLE_FIELDS = frozenset({"username", "first_name", "last_name", "email"})


@transaction.atomic
def user_update(*, user: User, data: dict, actor: User | None = None) -> User:
    """Change a staff user's name, username or email (`data`: field -> new value); one record of
    what changed, personal fields masked. Access has its own services (activation, BPO admin)."""
    unknown = set(data) - USER_UPDATABLE_FIELDS
    if unknown:
        raise ValidationError(f"These user fields cannot be changed here: {', '.join(sorted(unknown))}.")
    before = {name: getattr(user, name) for name in data}
    for name, value in data.items():
        setattr(user, name, value)
    user.full_clean(exclude=["password"])
    changes = audit_diff(before, dict(data), personal={"email", "first_name", "last_name"})
    if changes:
        user.save(update_fields=list(data))
        audit_record(action=Action.UPDATE, actor=actor, target=user, changes=changes)
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


WRONG_CODE = "That code is not right, or it was already used. Try again."
REAUTH_FAILED = "That did not match. Check your password and code and try again."


class MFAVerifyError(ValidationError):
    """The code was refused. `wait_seconds` is set when it was not even checked: too many wrong
    codes in a row, and the authenticator waits (1, 2, 4, 8... seconds) before it checks again."""

    def __init__(self, message: str, *, wait_seconds: int = 0):
        super().__init__(message)
        self.wait_seconds = wait_seconds


def _throttle_wait(user: User) -> int:
    """Seconds until every device of `user` checks codes again (0: they all do now)."""
    now = timezone.now()
    wait = 0.0
    for device in devices_for_user(user, confirmed=True):
        allowed, data = device.verify_is_allowed()
        if not allowed and data and data.get("locked_until"):
            wait = max(wait, (data["locked_until"] - now).total_seconds())
    return math.ceil(wait) if wait > 0 else 0


def _wait_message(seconds: int) -> str:
    unit = "second" if seconds == 1 else "seconds"
    return f"Too many codes that did not work in a row. Wait {seconds} {unit}, then enter a new code."


def mfa_verify(*, user: User, token: str) -> Device:
    """The OTP step (of signing in or of re-authentication): the device the code belongs to, an
    authenticator app or a one-time backup code. A wrong code, or one that came too soon after
    wrong ones, raises MFAVerifyError and is recorded. Not atomic: a failure must leave its record
    and django-otp's throttle count, which the error is raised after."""
    wait = _throttle_wait(user)
    device = match_token(user, token)
    if device is None:
        audit_record(action=Action.MFA_FAILED, actor=user, metadata={"throttled": True} if wait else {})
        if wait:
            raise MFAVerifyError(_wait_message(wait), wait_seconds=wait)
        raise MFAVerifyError(WRONG_CODE)
    audit_record(action=Action.MFA_VERIFIED, actor=user, metadata={"method": mfa_method(device)})
    return device


def mfa_method(device: Device) -> str:
    return "backup_code" if isinstance(device, StaticDevice) else "totp"


def reauth_check(*, request, password: str, token: str) -> None:
    """Password and OTP code again before a sensitive action, for `request.user`. Raises
    ValidationError (keyed "__all__" for the password, "token" for the code) and records the
    failure; records the success. `request` is for the authentication backends (lockout)."""
    user = request.user
    if authenticate(request, username=user.get_username(), password=password) != user:
        audit_record(action=Action.REAUTH_FAILED, actor=user, metadata={"step": "password"})
        raise ValidationError(REAUTH_FAILED)
    wait = _throttle_wait(user)
    if match_token(user, token) is None:
        audit_record(action=Action.REAUTH_FAILED, actor=user, metadata={"step": "otp"})
        raise ValidationError({"token": _wait_message(wait) if wait else WRONG_CODE})
    audit_record(action=Action.REAUTH, actor=user)


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
def mfa_device_remove(*, device: TOTPDevice, actor: User | None = None) -> None:
    """Remove a staff member's lost authenticator (a BPO admin, from Django admin): its owner
    enrols again at the next sign-in, and their open desk connections re-check at once, since the
    sessions it verified are verified no more."""
    user_id = device.user_id
    audit_record(
        action=Action.DELETE,
        actor=actor,
        target_type="otp_totp.totpdevice",
        target_id=str(device.pk),
        target_label=f"authenticator of user #{user_id}",
        metadata={"user": user_id},
    )
    device.delete()
    push.user_access_changed(user_id)


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

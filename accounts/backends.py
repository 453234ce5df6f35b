"""The password backend: Django's ModelBackend, with the user read that every request makes
(get_user, from the session) written once as SQL, and the user's authenticator-app devices read in
the same statement (`user.totp_devices`), which the OTP middleware then takes the session's device
from: one statement where the ORM made two (0.8 ms each, compiled; and on a virtual machine each
round trip to an idle database costs about 0.4 ms more to wake it)."""

from django.contrib.auth.backends import ModelBackend
from django.db import connection
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from config.sql import ModelRead, field_values

_DEVICE_FIELDS = list(TOTPDevice._meta.concrete_fields)
_DEVICE_NAMES = [f.attname for f in _DEVICE_FIELDS]
_DEVICE_COLUMNS = [(f"_device_{n}", f'd."{f.column}"', ()) for n, f in enumerate(_DEVICE_FIELDS)]
_DEVICE_JOIN = (f'LEFT OUTER JOIN "{TOTPDevice._meta.db_table}" d ON d."user_id" = t."id"', [])
_USERS = ModelRead(User)


def user_with_totp_devices(user_id) -> User | None:
    """The user of this id, with `totp_devices`: their authenticator-app devices by id (confirmed
    or not, as django_otp reads a session's device), in one statement; None for no such user."""
    rows = _USERS.rows('t."id" = %s', [user_id], 'ORDER BY d."id"', extra=_DEVICE_COLUMNS, joins=_DEVICE_JOIN)
    if not rows:
        return None
    devices = {}
    for row in rows:
        values = [row.__dict__.pop(name) for name, _, _ in _DEVICE_COLUMNS]
        if values[0] is not None:  # a user without devices: one row of NULLs
            device = TOTPDevice.from_db(connection.alias, _DEVICE_NAMES, field_values(_DEVICE_FIELDS, values))
            devices[device.pk] = device
    user = rows[0]
    user.totp_devices = devices
    return user


class StaffModelBackend(ModelBackend):
    def get_user(self, user_id):
        """As ModelBackend.get_user: the user of this id while they may sign in (active), else None;
        with their authenticator-app devices (user_with_totp_devices)."""
        user = user_with_totp_devices(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None

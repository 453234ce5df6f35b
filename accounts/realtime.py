"""WebSocket authentication: the same session and the same MFA wall as the HTTP views."""

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device


@database_sync_to_async
def _is_verified(user, session) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    if not persistent_id:
        return False
    device = Device.from_persistent_id(persistent_id, for_verify=False)
    return device is not None and device.user_id == user.pk and device.confirmed


class _RequireVerified:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if not await _is_verified(scope.get("user"), scope.get("session")):
            # Refuse the handshake: the client sees a closed connection, never data.
            await send({"type": "websocket.close", "code": 4401})
            return None
        scope["verified"] = True
        return await self.inner(scope, receive, send)


def VerifiedStaffMiddleware(inner):  # noqa: N802 (reads like the Channels middleware it wraps)
    return AuthMiddlewareStack(_RequireVerified(inner))

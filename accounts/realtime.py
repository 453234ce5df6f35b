"""WebSocket authentication: the same session, the same lifetime and the same MFA wall as the HTTP
views, checked at the handshake and again whenever an open connection re-checks its access."""

import time
from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace

from channels.db import database_sync_to_async
from channels.sessions import SessionMiddlewareStack
from django.conf import settings
from django.contrib.auth import get_user
from django_otp import DEVICE_ID_SESSION_KEY

from accounts.middleware import SESSION_PUSH_KEY, SESSION_SEEN_KEY, SESSION_STARTED_KEY
from accounts.models import User
from accounts.selectors import mfa_device_by_persistent_id
from config import push


@dataclass(frozen=True)
class SessionState:
    """A session as the desk sees it now: its user while it may use the desk, else why it may not."""

    user: User | None
    ended: str = ""  # push.SIGNED_OUT, push.EXPIRED or push.REVOKED once it may not
    push_id: str = ""
    expires_at: float | None = None  # when the idle or absolute limit falls, as the session stands


def session_state(session) -> SessionState:
    """Whether `session` (a SessionBase) may use the desk now: signed in as an active user (the
    authentication backend's rules, password changes included), past the OTP step with a device
    still enrolled, and within its idle and absolute lifetime (SessionLifetimeMiddleware's rules)."""
    user = get_user(SimpleNamespace(session=session))
    if not user.is_authenticated:
        return SessionState(user=None, ended=push.SIGNED_OUT)
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    device = mfa_device_by_persistent_id(persistent_id) if persistent_id else None
    if device is None or device.user_id != user.pk or not device.confirmed:
        return SessionState(user=None, ended=push.REVOKED)
    push_id = session.get(SESSION_PUSH_KEY)
    if not push_id:  # stamped on every signed-in HTTP request; the desk page is loaded before its socket
        return SessionState(user=None, ended=push.SIGNED_OUT)
    started, seen = session.get(SESSION_STARTED_KEY), session.get(SESSION_SEEN_KEY)
    expires_at = None
    if started is not None and seen is not None:
        expires_at = min(
            seen + settings.SESSION_IDLE_TIMEOUT.total_seconds(),
            started + settings.SESSION_ABSOLUTE_LIFETIME.total_seconds(),
        )
        if time.time() > expires_at:
            return SessionState(user=None, ended=push.EXPIRED)
    return SessionState(user=user, push_id=push_id, expires_at=expires_at)


def session_state_now(session_key: str | None) -> SessionState:
    """session_state() of the session as it is stored now (a connection's copy goes stale)."""
    if not session_key:
        return SessionState(user=None, ended=push.SIGNED_OUT)
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if not store.exists(session_key):  # a sign-out or an expiry told the connection itself, first
        return SessionState(user=None, ended=push.REPLACED)
    return session_state(store)


class _RequireVerified:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        # Off the process's one thread-sensitive thread (every such call outside an HTTP request queues
        # there): a reconnect storm of 200 handshakes waited there one by one past daphne's timeout.
        state = await database_sync_to_async(session_state, thread_sensitive=False)(scope["session"])
        if state.user is None:
            # Refuse the handshake: the client sees a closed connection, never data.
            await send({"type": "websocket.close", "code": 4401})
            return None
        scope["user"], scope["verified"], scope["session_state"] = state.user, True, state
        return await self.inner(scope, receive, send)


def VerifiedStaffMiddleware(inner):  # noqa: N802 (reads like the Channels middleware it wraps)
    return SessionMiddlewareStack(_RequireVerified(inner))

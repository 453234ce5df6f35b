"""Live pushes to the desk's WebSocket connections: the one low-level module that `accounts`,
`alerts` and `desk` call (Zulip's `send_event_on_commit`). It names the Channels groups and sends
to them once the caller's transaction commits, so nothing rolled back is announced; it imports no
domain app, so identity and the domain never import the desk.

Groups: a connection joins its user's group and its session's group (control messages), plus the
"scope groups" the desk's access function yields for it (today one per tenant whose alerts the
user may see). Payloads carry ids and states only, never personal data.
"""

import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# Channel-layer message types; desk.consumers.DeskConsumer has a handler for each.
EVENT = "push.event"  # forward to the client if the connection still hears the group
ACCESS_CHANGED = "access.changed"  # re-read the session and the access function, narrow or close
SESSION_END = "session.end"  # tell the client session.ended, then close

# Why a connection was closed, as the client reads it in session.ended. `replaced`: the session the
# connection was opened with is gone without a sign-out (its id rotated at re-authentication, or it
# was cleaned up): the client reconnects with its cookie, and only a refused handshake means it is
# signed out.
SIGNED_OUT, EXPIRED, REVOKED, REPLACED = "signed_out", "expired", "revoked", "replaced"


def tenant_group(tenant_id: int) -> str:
    return f"tenant.{tenant_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def session_group(push_id: str) -> str:
    """`push_id` is a random id kept in the session (accounts.middleware), never the session key."""
    return f"session.{push_id}"


def tenant_events(messages: list[tuple[int, str, dict]]) -> None:
    """Announce (tenant id, event type, payload) to the connections that hear each tenant, in order,
    after commit."""
    _send_on_commit(
        [
            (
                tenant_group(tenant_id),
                {
                    "type": EVENT,
                    "group": tenant_group(tenant_id),
                    "event": event,
                    "queue": None,  # queues come with the next issue
                    "payload": {**payload, "tenant": tenant_id},
                },
            )
            for tenant_id, event, payload in messages
        ]
    )


def user_access_changed(user_id: int) -> None:
    """What `user_id` may see has changed (membership or role, grant, tenant, MFA device, password):
    their open connections re-check their session and scope, then narrow, widen or close."""
    users_access_changed([user_id])


def users_access_changed(user_ids: Iterable[int]) -> None:
    _send_on_commit([(user_group(user_id), {"type": ACCESS_CHANGED}) for user_id in dict.fromkeys(user_ids)])


def user_sessions_end(*, user_id: int, reason: str = REVOKED) -> None:
    """Close every open connection of a user (deactivated)."""
    _send_on_commit([(user_group(user_id), {"type": SESSION_END, "reason": reason})])


def session_end(*, push_id: str, reason: str) -> None:
    """Close the open connections of one session (signed out, expired)."""
    _send_on_commit([(session_group(push_id), {"type": SESSION_END, "reason": reason})])


def _send_on_commit(messages: list[tuple[str, dict]]) -> None:
    if messages:
        transaction.on_commit(lambda: _send(messages))


def _send(messages: list[tuple[str, dict]]) -> None:
    # One trip into the event loop for the lot: each async_to_sync call costs milliseconds.
    async def send_all():
        layer = get_channel_layer()
        for group, message in messages:
            await layer.group_send(group, message)

    try:
        async_to_sync(send_all)()
    except Exception:  # the change is committed; a client that misses a push refetches on the gap
        logger.warning(
            "live push not sent",
            extra={"push_types": sorted({m["type"] for _, m in messages}), "push_count": len(messages)},
            exc_info=True,
        )

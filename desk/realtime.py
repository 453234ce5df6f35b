"""The one place that names Channels groups and pushes to them."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def tenant_group(tenant_id: int) -> str:
    return f"tenant.{tenant_id}"


def tenant_announce(*, tenant_id: int, event: str, payload: dict) -> None:
    """Push an event to every desk connection of a tenant. Call it from transaction.on_commit."""
    tenant_announce_many([(tenant_id, event, payload)])


def tenant_announce_many(messages: list[tuple[int, str, dict]]) -> None:
    """Push several (tenant id, event, payload) in order, in one trip into the event loop: each
    async_to_sync call costs milliseconds, which a chunk of alerts would pay per alert."""

    async def send_all():
        layer = get_channel_layer()
        for tenant_id, event, payload in messages:
            await layer.group_send(tenant_group(tenant_id), {"type": "desk.event", "event": event, "payload": payload})

    if messages:
        async_to_sync(send_all)()


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def user_sessions_end(*, user_id: int) -> None:
    """Close every open desk connection of a user (deactivated, or signed out everywhere)."""
    async_to_sync(get_channel_layer().group_send)(user_group(user_id), {"type": "session.end"})

import asyncio
import logging
import time

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.realtime import SessionState, session_state_now
from accounts.selectors import tenant_ids_with_perm
from config import push
from desk import live
from desk.selectors import CASE_SUPERVISE_PERM, cases_shared_with, queue_list_for

logger = logging.getLogger(__name__)

# A connection re-reads its session at least this often, even with no push telling it to: it
# notices a session deleted or rotated out of band (clean-up, re-authentication) within this time.
RECHECK_SECONDS = 300
# Close codes: the session may not use the desk any more; the user may see nothing on it.
CLOSE_SESSION, CLOSE_NO_ACCESS = 4401, 4403


def scope_groups_for(*, user) -> dict[str, int | None]:
    """The groups a desk connection of `user` hears, from the same access functions as the HTTP
    reads: a group per queue they may see (desk.selectors.queue_list_for), with the queue's id; a
    group per case shared with them outside those queues (a case of a queue they see is told to
    the queue); and the supervisors' group of each tenant whose security concerns they review."""
    # Unordered: the ordering of the listing joins the tenant for nothing here (a handshake storm pays it).
    queues = list(queue_list_for(user=user).order_by().values_list("pk", flat=True))
    groups: dict[str, int | None] = {push.queue_group(pk): pk for pk in queues}
    for pk in cases_shared_with(user=user).exclude(queue_id__in=queues).order_by().values_list("pk", flat=True):
        groups[push.case_group(pk)] = None
    for tenant_id in tenant_ids_with_perm(user=user, perm=CASE_SUPERVISE_PERM):
        groups[push.supervisors_group(tenant_id)] = None
    return groups


def off_loop(func):
    """`func` run in the event loop's thread pool, not on the process's one thread-sensitive thread:
    every thread-sensitive call outside an HTTP request queues there, and 200 handshakes at once
    waited there one by one (past daphne's 5 s handshake timeout under load). Each call is
    self-contained (its own queries, on the pool thread's own connection), so nothing needs the
    same thread twice."""
    return database_sync_to_async(func, thread_sensitive=False)


def _queue_ids(groups: dict[str, int | None]) -> list[int]:
    return sorted(pk for pk in groups.values() if pk is not None)


def access_now(session_key: str | None, user_id: int) -> tuple[SessionState, dict[str, int | None]]:
    """The session as stored now and the groups its user may hear (none once it may not)."""
    state = session_state_now(session_key)
    if state.user is None or state.user.pk != user_id:
        return (state if state.ended else SessionState(user=None, ended=push.SIGNED_OUT)), {}
    return state, scope_groups_for(user=state.user)


class DeskConsumer(AsyncJsonWebsocketConsumer):
    """Live updates for the desk. Reached only through VerifiedStaffMiddleware (signed in, active,
    past the OTP step, within the session's lifetime).

    Every message to the client is `{"type", "seq", "queue", "payload"}`, `seq` counting up from 1 on
    the connection: `hello` (the queue ids it hears), `queue.changed` and `case.changed` (desk.live's
    coalesced signals), `concern.raised` (to supervisors), `presence`, `access.changed`,
    `session.ended`, `pong`. A connection hears only the queues its user
    may see now: on a push of `access.changed` (to the user's group), at the session's idle or
    absolute deadline and every RECHECK_SECONDS it re-reads its session and the access function,
    and narrows or closes.
    """

    async def connect(self):
        self.seq = 0
        self.closing = False
        self.scope_groups: dict[str, int | None] = {}  # group: its queue's id (None: a case's, the supervisors')
        self.timer: asyncio.Task | None = None
        self.viewing: tuple[int, int] | None = None  # (alert id, its queue id) this page has open
        state: SessionState = self.scope["session_state"]
        # Control groups first: a revocation committed from now on reaches this connection, and one
        # committed before is seen by the read below.
        self.control_groups = [push.user_group(state.user.pk), push.session_group(state.push_id)]
        for group in self.control_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        state, groups = await self._access_now()
        if not groups:
            await self._leave_all()
            await self.close(code=CLOSE_SESSION if state.ended else CLOSE_NO_ACCESS)
            return
        await self._rescope(groups)
        await self.accept()
        self._arm(state.expires_at)
        live.flusher_ensure()
        await self._push("hello", {"queues": _queue_ids(self.scope_groups)})

    async def dispatch(self, message):
        # channels' AsyncConsumer.dispatch first closes the old database connections of the
        # process's thread-sensitive thread, a hop to that thread for every message: under
        # bench/live.py's load that was an eighth of a web process's Python time, for signals that
        # touch no database. This consumer reads the database only through off_loop, whose calls
        # close their own connections before and after (channels' database_sync_to_async).
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def disconnect(self, code):
        if self.timer is not None:
            self.timer.cancel()
        await self._leave_all()
        await self._view(None)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type")
        if kind == "ping":
            await self._push("pong", {})
        elif kind == "viewing" and not self.closing:
            await self._view(content.get("alert"))

    async def _view(self, alert_id) -> None:
        """Presence: this page has `alert_id` open (None: none). Told to the alert's queue, and only
        for an alert the user may see in one of this connection's queues; anything else is none."""
        target = None
        if isinstance(alert_id, int) and not isinstance(alert_id, bool) and self.scope_groups:
            queue_id = await off_loop(live.presence_queue)(
                user=self.scope["user"], alert_id=alert_id, queue_ids=set(_queue_ids(self.scope_groups))
            )
            target = None if queue_id is None else (alert_id, queue_id)
        previous, self.viewing = self.viewing, target
        if previous is not None and previous != target:
            await self._presence(previous, viewing=False)
        if target is not None:
            await self._presence(target, viewing=True)

    async def _presence(self, target: tuple[int, int], *, viewing: bool) -> None:
        alert_id, queue_id = target
        try:
            users = await off_loop(live.presence_set)(
                alert_id=alert_id, username=self.scope["user"].username, viewing=viewing
            )
            group = push.queue_group(queue_id)
            message = {"type": "presence.update", "group": group, "queue": queue_id, "alert": alert_id, "users": users}
            await self.channel_layer.group_send(group, message)
        except Exception:  # best effort: the next ping repeats it
            logger.warning("presence not relayed", exc_info=True)

    # --- channel-layer messages (config.push) ---------------------------------------------------

    async def queue_changed(self, message):
        # A message already on its way from a group this connection has just left is dropped here.
        if message["group"] in self.scope_groups:
            await self._push("queue.changed", message["payload"], queue=message["queue"])

    async def case_changed(self, message):
        if message["group"] in self.scope_groups:
            await self._push("case.changed", message["payload"], queue=message["queue"])

    async def concern_raised(self, message):
        if message["group"] in self.scope_groups:
            await self._push("concern.raised", message["payload"])

    async def presence_update(self, message):
        if message["group"] in self.scope_groups:
            await self._push("presence", {"alert": message["alert"], "users": message["users"]}, queue=message["queue"])

    async def access_changed(self, message):
        state, groups = await self._access_now()
        if state.ended:
            await self._end(state.ended)
        elif not groups:
            await self._push("access.changed", {"queues": []})
            await self._close(CLOSE_NO_ACCESS)
        else:
            if groups.keys() != self.scope_groups.keys():
                await self._rescope(groups)
                await self._push("access.changed", {"queues": _queue_ids(groups)})
                if self.viewing is not None and self.viewing[1] not in groups.values():
                    await self._view(None)
            else:  # renew the memberships: the layer forgets them after its group_expiry (settings)
                for group in [*self.control_groups, *self.scope_groups]:
                    await self.channel_layer.group_add(group, self.channel_name)
            self._arm(state.expires_at)

    async def session_end(self, message):
        await self._end(message.get("reason", push.SIGNED_OUT))

    # --- helpers ----------------------------------------------------------------------------------

    async def _access_now(self) -> tuple[SessionState, dict[str, int | None]]:
        return await off_loop(access_now)(self.scope["session"].session_key, self.scope["user"].pk)

    async def _rescope(self, groups: dict[str, int | None]) -> None:
        left = self.scope_groups.keys() - groups.keys()
        joined = groups.keys() - self.scope_groups.keys()
        self.scope_groups = groups  # first: push_event filters on it
        for group in left:
            await self.channel_layer.group_discard(group, self.channel_name)
        for group in joined:
            await self.channel_layer.group_add(group, self.channel_name)

    async def _push(self, kind: str, payload: dict, queue=None) -> None:
        if self.closing:
            return
        self.seq += 1
        await self.send_json({"type": kind, "seq": self.seq, "queue": queue, "payload": payload})

    async def _end(self, reason: str) -> None:
        await self._push("session.ended", {"reason": reason})
        await self._close(CLOSE_SESSION)

    async def _close(self, code: int) -> None:
        await self._leave_all()
        self.closing = True
        if self.timer is not None:
            self.timer.cancel()
        await self.close(code=code)

    async def _leave_all(self) -> None:
        groups, self.scope_groups = [*self.control_groups, *self.scope_groups], {}
        self.control_groups = []
        for group in groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    def _arm(self, expires_at: float | None) -> None:
        """Re-check at the session's deadline (or RECHECK_SECONDS), through the consumer's own
        queue so that the re-check runs between messages, never alongside one."""
        if self.timer is not None:
            self.timer.cancel()
        delay = RECHECK_SECONDS if expires_at is None else min(RECHECK_SECONDS, expires_at - time.time() + 0.05)
        self.timer = asyncio.create_task(self._recheck_after(max(delay, 0)))

    async def _recheck_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            await self.channel_layer.send(self.channel_name, {"type": push.ACCESS_CHANGED})
        except Exception:  # deny by default: a connection that cannot re-check is closed; the client reconnects
            logger.warning("desk connection could not schedule its re-check; closing it", exc_info=True)
            await self._close(CLOSE_SESSION)

"""Live pushes to the desk's WebSocket connections: the one low-level module that `accounts`,
`alerts` and `desk` call (Zulip's `send_event_on_commit`). It names the Channels groups and sends
to them once the caller's transaction commits, so nothing rolled back is announced; it imports no
domain app, so identity and the domain never import the desk.

Groups: a connection joins its user's group and its session's group (control messages), plus the
"scope groups" the desk's access functions yield for it: one per queue the user may see, one per
case shared with them outside those queues, and, for those who review security concerns, one per
tenant they supervise. Payloads carry ids and states only, never personal data.

Alert changes are not fanned out here (one frame per alert per connection did not survive load): after
commit they are appended to a change buffer (`changes_buffer()`), which the desk's flusher
(desk.live) drains every fraction of a second, coalesced into one `queue.changed` signal per changed
queue. The buffer is a Redis list on the channel layer's Redis when REDIS_URL is set (every web
process's flusher takes distinct items from it), else an in-process deque (the embedded defaults: an
in-memory channel layer, one process).
"""

import json
import logging
import time
from collections import deque
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

# Channel-layer message types; desk.consumers.DeskConsumer has a handler for each.
QUEUE_CHANGED = "queue.changed"  # a coalesced signal: what changed in one queue (desk.live)
CASE_CHANGED = "case.changed"  # a coalesced signal: which cases of one queue (or one shared case) changed
CONCERN_RAISED = "concern.raised"  # a security concern on a case, to the tenant's supervisors
ACCESS_CHANGED = "access.changed"  # re-read the session and the access function, narrow or close
SESSION_END = "session.end"  # tell the client session.ended, then close

# Why a connection was closed, as the client reads it in session.ended. `replaced`: the session the
# connection was opened with is gone without a sign-out (its id rotated at re-authentication, or it
# was cleaned up): the client reconnects with its cookie, and only a refused handshake means it is
# signed out.
SIGNED_OUT, EXPIRED, REVOKED, REPLACED = "signed_out", "expired", "revoked", "replaced"


def queue_group(queue_id: int) -> str:
    return f"queue.{queue_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def session_group(push_id: str) -> str:
    """`push_id` is a random id kept in the session (accounts.middleware), never the session key."""
    return f"session.{push_id}"


def case_group(case_id: int) -> str:
    """A case shared with a specialist outside their queues: its connections hear it here."""
    return f"case.{case_id}"


def supervisors_group(tenant_id: int) -> str:
    """The connections of the staff who review a tenant's security concerns (its supervisors, admins)."""
    return f"supervisors.{tenant_id}"


def tenant_events(messages: list[tuple[int, str, dict]]) -> None:
    """Note that alerts changed: (tenant id, event type, payload with the alert's id, type, severity,
    status, assignee and, when it changed, previous_severity). After commit each goes to the change
    buffer; the desk's flusher tells each changed queue's connections, coalesced."""
    changes = [alert_change(tenant_id, payload) for tenant_id, _, payload in messages]
    if changes:
        transaction.on_commit(lambda: changes_append(changes))


def alert_change(tenant_id: int, payload: dict) -> dict:
    """A change buffer entry: what placement needs (tenant, type, severity) and what a queue's
    signal carries (id, status, severity, assignee). Never personal data: a staff username at most."""
    change = {
        "tenant": tenant_id,
        "id": payload["id"],
        "type": payload.get("type"),
        "severity": payload.get("severity"),
        "status": payload.get("status"),
        "assignee": payload.get("assignee"),
    }
    if payload.get("previous_severity") is not None and payload["previous_severity"] != payload.get("severity"):
        change["previous_severity"] = payload["previous_severity"]
    return change


def case_events(changes: list[dict]) -> None:
    """Note that cases changed: each {"tenant", "id", "queue", "status", "assignee"} (ids, states and
    a staff username at most). After commit they join the change buffer beside alert changes (kind
    "case"), stamped with the time of the commit (`at`, seconds since the epoch: a case page rendered
    after it shows the change already, and does not say the case changed since); the desk's flusher
    sends one `case.changed` per changed queue, and one to the group of each changed case (for the
    specialists it is shared with)."""
    entries = [
        {"kind": "case", **{k: change.get(k) for k in ("tenant", "id", "queue", "status", "assignee")}}
        for change in changes
    ]
    if entries:
        transaction.on_commit(lambda: changes_append([{**entry, "at": time.time()} for entry in entries]))


def concern_raised(*, tenant_id: int, concern_id: int, case_id: int, kind: str) -> None:
    """Tell the tenant's supervisors, after commit, that a security concern was raised on a case.
    Rare and urgent: sent at once, not buffered."""
    group = supervisors_group(tenant_id)
    payload = {"id": concern_id, "case": case_id, "kind": kind}
    _send_on_commit([(group, {"type": CONCERN_RAISED, "group": group, "payload": payload})])


# --- the change buffer -----------------------------------------------------------------------------

# Kept at most: with no flusher running anywhere (no desk connection open) the buffer would grow
# without end; the oldest changes go first, and a page that connects refetches anyway.
CHANGES_MAX = 50_000
CHANGES_KEY = "alertdesk:live:changes"
FLUSH_TURN_KEY = "alertdesk:live:flush-turn"
FLUSH_HOLD_SECONDS = 2.0  # a flusher's hold on the turn while it flushes, at most


class MemoryBuffer:
    """One process: the producers (request and task threads) append, the flusher (event loop) takes.
    deque.extend and popleft are thread-safe."""

    def __init__(self):
        self.items: deque = deque(maxlen=CHANGES_MAX)
        self.next_turn = self.turn_started = float("-inf")

    def append(self, changes: list[dict]) -> None:
        self.items.extend(changes)

    def reader(self) -> "MemoryBuffer":
        return self

    async def turn(self, window: float) -> bool:
        """The flush turn in this process (see _RedisReader.turn)."""
        now = time.monotonic()
        if now < self.next_turn:
            return False
        self.turn_started, self.next_turn = now, now + max(window, FLUSH_HOLD_SECONDS)
        return True

    async def turn_end(self, window: float) -> None:
        self.next_turn = self.turn_started + window

    async def take(self, limit: int) -> list[dict]:
        taken = []
        while len(taken) < limit:
            try:
                taken.append(self.items.popleft())
            except IndexError:
                break
        return taken

    async def aclose(self) -> None:
        pass

    def clear(self) -> None:
        self.items.clear()


class RedisBuffer:
    """A Redis list shared by every process: RPUSH (and a trim to CHANGES_MAX) in one pipelined
    call per batch; a reader takes the head atomically (LRANGE + LTRIM in one MULTI), so several
    flushers take distinct items."""

    def __init__(self, url: str):
        import redis

        self.url = url
        self.client = redis.Redis.from_url(url)  # a pool per process, shared by the producing threads

    def append(self, changes: list[dict]) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.rpush(CHANGES_KEY, *[json.dumps(c, separators=(",", ":")) for c in changes])
        pipe.ltrim(CHANGES_KEY, -CHANGES_MAX, -1)
        pipe.execute()

    def reader(self) -> "_RedisReader":
        return _RedisReader(self.url)

    def clear(self) -> None:
        self.client.delete(CHANGES_KEY)


class _RedisReader:
    """The flusher's own asyncio client (one connection, bound to the flusher's event loop)."""

    def __init__(self, url: str):
        import redis.asyncio

        self.client = redis.asyncio.Redis.from_url(url, max_connections=1)

    async def turn(self, window: float) -> bool:
        """The flush turn, for one flusher of all the processes: the one whose SET NX makes the key.
        It holds the key while it flushes (FLUSH_HOLD_SECONDS at most, should its process die
        meanwhile); turn_end() leaves it until `window` seconds after the turn began, or frees it
        at once after a longer flush. So flushes never overlap, and every connection hears a queue's
        signals at most once per window, however many web processes flush (with a turn per
        process, each frame cost every socket of the queue once per process)."""
        hold = max(window, FLUSH_HOLD_SECONDS)
        self.turn_started = time.monotonic()
        return bool(await self.client.set(FLUSH_TURN_KEY, b"1", nx=True, px=int(hold * 1000)))

    async def turn_end(self, window: float) -> None:
        left = window - (time.monotonic() - self.turn_started)
        if left * 1000 >= 1:
            await self.client.pexpire(FLUSH_TURN_KEY, int(left * 1000))
        else:
            await self.client.delete(FLUSH_TURN_KEY)

    async def take(self, limit: int) -> list[dict]:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.lrange(CHANGES_KEY, 0, limit - 1)
            pipe.ltrim(CHANGES_KEY, limit, -1)
            items, _ = await pipe.execute()
        return [json.loads(item) for item in items]

    async def aclose(self) -> None:
        await self.client.aclose()


_buffer: MemoryBuffer | RedisBuffer | None = None


def changes_buffer() -> MemoryBuffer | RedisBuffer:
    global _buffer
    if _buffer is None:
        _buffer = RedisBuffer(settings.REDIS_URL) if settings.REDIS_URL else MemoryBuffer()
    return _buffer


def changes_append(changes: list[dict]) -> None:
    try:
        changes_buffer().append(changes)
    except Exception:  # committed all the same; pages refetch on (re)connect and on a gap
        logger.warning("live changes not buffered", extra={"push_count": len(changes)}, exc_info=True)


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

"""The coalescing flusher: alert changes to `queue.changed` signals, a few per second per queue (and
case changes to `case.changed`, the same way: see case_signals_for).

Producers (alerts' services and detection) append each committed alert change to config.push's
change buffer. Each ASGI process has a flusher (an asyncio task, started by the first desk
connection; one per process and event loop); one of them at a time, whichever takes the turn
(config.push: a Redis key shared by the processes, held while it flushes and until COALESCE_SECONDS
after the flush began), takes up to BATCH changes, places each alert in its queue
(desk.selectors.queue_for_alert, with the tenant's queues cached a few seconds)
and sends one channel-layer message per changed queue to the queue's group. So the fan-out grows
with connected agents times changed queues, not with alerts per second times agents.

A signal lists the changed alerts (id, status, severity, assignee); past MAX_LISTED alerts it says
`refetch` instead. An alert whose severity moved it out of a queue makes that queue refetch. Signals
are hints: a page refetches its slice on connect, on a `seq` gap and on `refetch`.
"""

import asyncio
import logging
import time
import weakref
from types import SimpleNamespace

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.http import Http404

from alerts.selectors import alert_get_for
from config import push
from desk.selectors import queue_for_alert, queues_of_tenants

logger = logging.getLogger(__name__)

COALESCE_SECONDS = 0.25
# How often each process's flusher asks for the turn. One flusher of all the web processes has it at
# a time, while it flushes and until COALESCE_SECONDS after it began (config.push's turn): so a queue
# hears at most one signal per window, and a change waits at most a window (or the flush before, if
# longer), a tick and its own flush.
TICK_SECONDS = 0.05
MAX_BACKOFF_SECONDS = 5.0
BATCH = 5_000  # changes taken per window at most; the rest wait for the next one
MAX_LISTED = 50  # alerts listed in one queue's signal; more and it says "refetch"
QUEUE_CACHE_SECONDS = 5.0  # a new or changed queue is seen by the flusher within this time

_queues: dict[int, tuple[float, list]] = {}  # tenant id -> (loaded at, its queues)
_flushers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = weakref.WeakKeyDictionary()


def flusher_ensure() -> None:
    """Start this event loop's flusher unless it runs (called by every desk connection; cheap)."""
    loop = asyncio.get_running_loop()
    task = _flushers.get(loop)
    if task is None or task.done():
        _flushers[loop] = loop.create_task(_flush_forever(), name="desk-live-flusher")


async def _flush_forever() -> None:
    reader = push.changes_buffer().reader()
    backoff = 0.0  # after a failure (Redis refusing, say): not a warning every tick
    try:
        while True:
            await asyncio.sleep(TICK_SECONDS + backoff)
            try:
                if await reader.turn(COALESCE_SECONDS):
                    try:
                        await flush_once(reader=reader)
                    finally:
                        await reader.turn_end(COALESCE_SECONDS)
                backoff = 0.0
            except Exception:  # flush_once told the queues concerned to refetch, as far as it could
                logger.warning("live flush failed", exc_info=True)
                backoff = min(MAX_BACKOFF_SECONDS, max(COALESCE_SECONDS, 2 * backoff))
    finally:
        await reader.aclose()


def reset() -> None:
    """Forget cached queues (tests; a process that must see queue changes at once)."""
    _queues.clear()


async def _tenant_queues(tenant_ids: set[int]) -> dict[int, list]:
    now = time.monotonic()
    stale = {t for t in tenant_ids if t not in _queues or now - _queues[t][0] > QUEUE_CACHE_SECONDS}
    if stale:
        loaded: dict[int, list] = {t: [] for t in stale}
        # Not thread-sensitive: the process's one thread-sensitive thread takes every such call made
        # outside an HTTP request (the connections' handshakes among them), and the signals would
        # wait behind them.
        load = database_sync_to_async(queues_of_tenants, thread_sensitive=False)
        for queue in await load(tenant_ids=stale):
            loaded[queue.tenant_id].append(queue)
        for tenant_id, queues in loaded.items():
            _queues[tenant_id] = (now, queues)
    return {t: _queues[t][1] for t in tenant_ids}


def _placed(change: dict, queues: list, severity) -> int | None:
    alert = SimpleNamespace(tenant_id=change["tenant"], type=change["type"], severity=severity)
    queue = queue_for_alert(alert, queues)
    return None if queue is None else queue.pk


async def signals_for(changes: list[dict]) -> dict[int, dict]:
    """{queue id: queue.changed payload} for these changes, in their order (a later change of an
    alert replaces an earlier one)."""
    queues = await _tenant_queues({c["tenant"] for c in changes})
    listed: dict[int, dict[int, dict]] = {}
    refetch: set[int] = set()
    for change in changes:
        tenant_queues = queues[change["tenant"]]
        queue_id = _placed(change, tenant_queues, change["severity"])
        if queue_id is not None:
            alerts = listed.setdefault(queue_id, {})
            alerts.pop(change["id"], None)
            alerts[change["id"]] = {k: change.get(k) for k in ("id", "status", "severity", "assignee")}
        if change.get("previous_severity") is not None:
            left = _placed(change, tenant_queues, change["previous_severity"])
            if left is not None and left != queue_id:
                refetch.add(left)  # it left that queue: its pages cannot tell from a list of ids
    signals = {}
    for queue_id in listed.keys() | refetch:
        alerts = list(listed.get(queue_id, {}).values())
        if queue_id in refetch or len(alerts) > MAX_LISTED:
            signals[queue_id] = {"alerts": [], "refetch": True}
        else:
            signals[queue_id] = {"alerts": alerts, "refetch": False}
    return signals


def case_signals_for(changes: list[dict]) -> dict[str, tuple[int | None, dict]]:
    """{group: (queue id or None, case.changed payload)} for these case changes, in their order (a
    later change of a case replaces an earlier one): one signal per changed queue, listing its
    changed cases (id, status, assignee) or saying `refetch` past MAX_LISTED, and one to the own
    group of each changed case, for the specialists it is shared with outside their queues."""
    by_queue: dict[int, dict[int, dict]] = {}
    by_case: dict[int, dict] = {}
    for change in changes:
        entry = {k: change.get(k) for k in ("id", "status", "assignee")}
        if change.get("at") is not None:
            entry["at"] = change["at"]  # when it was committed (config.push.case_events)
        cases = by_queue.setdefault(change["queue"], {})
        cases.pop(change["id"], None)
        cases[change["id"]] = by_case[change["id"]] = entry
    signals: dict[str, tuple[int | None, dict]] = {}
    for queue_id, cases in by_queue.items():
        listed = list(cases.values())
        payload = {"cases": [], "refetch": True} if len(listed) > MAX_LISTED else {"cases": listed, "refetch": False}
        signals[push.queue_group(queue_id)] = (queue_id, payload)
    for case_id, entry in by_case.items():
        signals[push.case_group(case_id)] = (None, {"cases": [entry], "refetch": False})
    return signals


async def flush_once(*, reader=None, limit: int = BATCH) -> int:
    """Take up to `limit` buffered changes and send their signals; returns how many were sent.

    Changes taken are out of the buffer: when their signals cannot be made or sent (the database or
    the channel layer failing), the queues they concern are told to refetch instead (best effort,
    from the queues already known), so that no page waits for a signal that will never come; then
    the error goes up (the flusher logs it at WARNING)."""
    if reader is None:
        reader = push.changes_buffer().reader()
        try:
            return await flush_once(reader=reader, limit=limit)
        finally:
            await reader.aclose()
    changes = await reader.take(limit)
    if not changes:
        return 0
    try:
        return await _signals_send(changes)
    except Exception:
        await _refetch_send(changes)
        raise


async def _signals_send(changes: list[dict]) -> int:
    layer = get_channel_layer()
    alert_changes = [c for c in changes if c.get("kind") != "case"]
    signals = await signals_for(alert_changes) if alert_changes else {}
    for queue_id, payload in signals.items():
        group = push.queue_group(queue_id)
        await layer.group_send(
            group, {"type": push.QUEUE_CHANGED, "group": group, "queue": queue_id, "payload": payload}
        )
    case_signals = case_signals_for([c for c in changes if c.get("kind") == "case"])
    for group, (queue_id, payload) in case_signals.items():
        await layer.group_send(
            group, {"type": push.CASE_CHANGED, "group": group, "queue": queue_id, "payload": payload}
        )
    return len(signals) + len(case_signals)


async def _refetch_send(changes: list[dict]) -> None:
    """Tell every queue these changes may concern to refetch: a case's own queue, and each queue
    already known (the flusher's cache, however old: no database read) of an alert's tenant."""
    queue_ids = {c["queue"] for c in changes if c.get("kind") == "case" and c.get("queue")}
    unknown = set()
    for change in changes:
        if change.get("kind") != "case":
            known = _queues.get(change["tenant"])
            if known is None:
                unknown.add(change["tenant"])
            else:
                queue_ids.update(queue.pk for queue in known[1])
    if unknown:
        logger.warning("live signals lost for tenants whose queues are not known here", extra={"tenants": len(unknown)})
    layer, payload = get_channel_layer(), {"alerts": [], "refetch": True}
    for queue_id in sorted(queue_ids):
        group = push.queue_group(queue_id)
        try:
            await layer.group_send(
                group, {"type": push.QUEUE_CHANGED, "group": group, "queue": queue_id, "payload": payload}
            )
        except Exception:  # the layer itself is down: its pages refetch when they reconnect
            logger.warning("live refetch signal could not be sent", exc_info=True)
            return


# --- presence: who has each alert open ------------------------------------------------------------

PRESENCE_SECONDS = 60  # a viewer not heard of for this long is gone (pages repeat it with each ping)


def presence_queue(*, user, alert_id: int, queue_ids) -> int | None:
    """The queue of `alert_id` when `user` may see the alert and it is in one of `queue_ids` (the
    connection's queues), else None: presence is told only where the alert itself may be seen."""
    try:
        alert = alert_get_for(user=user, alert_id=alert_id, with_evidence=False)
    except Http404:
        return None
    queue = queue_for_alert(alert, queues_of_tenants(tenant_ids=[alert.tenant_id]))
    return queue.pk if queue is not None and queue.pk in queue_ids else None


def presence_set(*, alert_id: int, username: str, viewing: bool) -> list[str]:
    """Note that `username` opened (or left) the alert; returns who has it open now. Kept in the
    cache (Redis with REDIS_URL): best effort, a lost update heals with the viewer's next ping."""
    key, now = f"desk:presence:{alert_id}", time.time()
    viewers = {name: until for name, until in (cache.get(key) or {}).items() if until > now}
    if viewing:
        viewers[username] = now + PRESENCE_SECONDS
    else:
        viewers.pop(username, None)
    if viewers:
        cache.set(key, viewers, PRESENCE_SECONDS)
    else:
        cache.delete(key)
    return sorted(viewers)

"""desk.live: committed alert changes become one coalesced signal per changed queue per window,
placed in the alert's most specific queue, and heard only by connections of that queue."""

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.db import transaction

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from config import push
from config.asgi import application
from desk import live
from desk.models import Queue
from desk.services import queue_create, queue_grant

pytestmark = pytest.mark.django_db(transaction=True)

_ids = iter(range(500_000, 10_000_000))


@pytest.fixture(autouse=True)
def _fresh_live():
    push.changes_buffer().clear()
    live.reset()
    yield
    push.changes_buffer().clear()
    live.reset()


@pytest.fixture
def queues(tenant_a):
    """Tenant A's default queue, a takeover queue, and a queue of anything at least critical."""
    return {
        "default": Queue.objects.get(tenant=tenant_a, is_default=True),
        "takeover": queue_create(tenant=tenant_a, slug="takeover", name="Takeover", alert_types=["account_takeover"]),
        "critical": queue_create(tenant=tenant_a, slug="critical", name="Critical", min_severity=4),
    }


def _change(tenant, *, type_="login", severity=2, status="open", assignee=None, **extra) -> dict:
    return {"id": next(_ids), "type": type_, "severity": severity, "status": status, "assignee": assignee, **extra}


def _commit(tenant, payloads) -> None:
    with transaction.atomic():
        push.tenant_events([(tenant.pk, "alert.updated", p) for p in payloads])


async def _listen(*queue_ids) -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    for queue_id in queue_ids:
        await layer.group_add(push.queue_group(queue_id), channel)
    return channel


async def _drain(channel, wait=0.3) -> list[dict]:
    layer, messages = get_channel_layer(), []
    while True:
        try:
            messages.append(await asyncio.wait_for(layer.receive(channel), wait))
        except TimeoutError:
            return messages


def _run(coro_fn):
    return async_to_sync(coro_fn)()


def test_changes_in_one_window_coalesce_into_one_signal_per_queue(tenant_a, queues):
    default = queues["default"].pk
    listed = [_change(tenant_a) for _ in range(30)]
    _commit(tenant_a, listed)

    async def scenario():
        channel = await _listen(default)
        assert await live.flush_once() == 1
        return await _drain(channel)

    (message,) = _run(scenario)
    assert message["type"] == "queue.changed" and message["queue"] == default
    assert message["payload"] == {
        "alerts": [{"id": c["id"], "status": "open", "severity": 2, "assignee": None} for c in listed],
        "refetch": False,
    }


def test_more_than_fifty_alerts_in_a_window_say_refetch(tenant_a, queues):
    default = queues["default"].pk
    _commit(tenant_a, [_change(tenant_a) for _ in range(100)])

    async def scenario():
        channel = await _listen(default)
        await live.flush_once()
        return await _drain(channel)

    (message,) = _run(scenario)
    assert message["payload"] == {"alerts": [], "refetch": True}


def test_the_latest_change_of_an_alert_wins_within_a_window(tenant_a, queues):
    first = _change(tenant_a)
    claimed = {**first, "assignee": "agent"}
    _commit(tenant_a, [first])
    _commit(tenant_a, [claimed])

    async def scenario():
        channel = await _listen(queues["default"].pk)
        await live.flush_once()
        return await _drain(channel)

    (message,) = _run(scenario)
    assert message["payload"]["alerts"] == [{"id": first["id"], "status": "open", "severity": 2, "assignee": "agent"}]


def test_changes_whose_signals_fail_make_their_queues_refetch(tenant_a, tenant_b, queues, monkeypatch):
    _commit(tenant_a, [_change(tenant_a)])
    _run(live.flush_once)  # the flusher now knows tenant A's queues
    _commit(tenant_a, [_change(tenant_a, severity=4)])
    _commit(tenant_b, [_change(tenant_b)])  # tenant B's queues were never read here
    with transaction.atomic():
        push.case_events([{"tenant": tenant_a.pk, "id": 7, "queue": queues["takeover"].pk, "status": "open"}])

    async def failing(changes):
        raise ConnectionError("the database went away")

    monkeypatch.setattr(live, "signals_for", failing)
    warned = []  # (not caplog: another test may have configured logging away from it)
    monkeypatch.setattr(live.logger, "warning", lambda message, *args, **kwargs: warned.append(message))
    b_default = Queue.objects.get(tenant=tenant_b, is_default=True).pk

    async def scenario():
        channel = await _listen(*(q.pk for q in queues.values()), b_default)
        with pytest.raises(ConnectionError):
            await live.flush_once()
        return await _drain(channel)

    heard = _run(scenario)
    assert sorted(m["queue"] for m in heard) == sorted(q.pk for q in queues.values())  # each once, B's not
    assert all(m["type"] == "queue.changed" and m["payload"] == {"alerts": [], "refetch": True} for m in heard)
    assert warned == ["live signals lost for tenants whose queues are not known here"]
    assert _run(live.flush_once) == 0  # the taken changes are not retried (forever)


def test_each_alert_goes_to_its_most_specific_queue(tenant_a, tenant_b, queues):
    takeover = _change(tenant_a, type_="account_takeover", severity=4)  # takeover beats critical: a type filter
    critical = _change(tenant_a, type_="login", severity=4)
    plain = _change(tenant_a, type_="login", severity=2)
    foreign = _change(tenant_b, type_="account_takeover", severity=4)
    _commit(tenant_a, [takeover, critical, plain])
    _commit(tenant_b, [foreign])
    queue_b = Queue.objects.get(tenant=tenant_b, is_default=True).pk

    async def scenario():
        channels = {name: await _listen(q.pk) for name, q in queues.items()}
        channels["b"] = await _listen(queue_b)
        await live.flush_once()
        return {
            name: [a["id"] for m in await _drain(c) for a in m["payload"]["alerts"]] for name, c in channels.items()
        }

    assert _run(scenario) == {
        "takeover": [takeover["id"]],
        "critical": [critical["id"]],
        "default": [plain["id"]],
        "b": [foreign["id"]],
    }


def test_an_alert_whose_severity_moved_it_makes_the_queue_it_left_refetch(tenant_a, queues):
    risen = _change(tenant_a, severity=4, previous_severity=2)  # from default to critical

    async def scenario():
        await sync_to_async(_commit)(tenant_a, [risen])
        default, critical, takeover = [await _listen(queues[n].pk) for n in ("default", "critical", "takeover")]
        await live.flush_once()
        return await _drain(default), await _drain(critical), await _drain(takeover)

    left, joined, untouched = _run(scenario)
    assert [m["payload"] for m in left] == [{"alerts": [], "refetch": True}]
    assert [m["payload"] for m in joined] == [
        {"alerts": [{"id": risen["id"], "status": "open", "severity": 4, "assignee": None}], "refetch": False}
    ]
    assert untouched == []


def test_nothing_reaches_the_buffer_before_commit_or_after_a_rollback(tenant_a, queues):
    class RolledBackError(Exception):
        pass

    with transaction.atomic():
        push.tenant_events([(tenant_a.pk, "alert.created", _change(tenant_a))])
        assert _run(live.flush_once) == 0  # not committed yet
    try:
        with transaction.atomic():
            push.tenant_events([(tenant_a.pk, "alert.created", _change(tenant_a))])
            raise RolledBackError
    except RolledBackError:
        pass
    assert _run(live.flush_once) == 1  # the committed one only

    assert _run(live.flush_once) == 0


# --- through the socket -------------------------------------------------------------------------------


def _headers(client):
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return [(b"origin", b"http://127.0.0.1"), (b"cookie", cookie.encode())]


async def _open(client):
    comm = WebsocketCommunicator(application, "/ws/desk/", headers=_headers(client))
    connected, code = await comm.connect(timeout=5)
    assert connected, code
    return comm, await comm.receive_json_from(timeout=5)


async def _frames(comm, wait=0.8) -> list[dict]:
    frames = []
    while not await comm.receive_nothing(timeout=wait):
        frames.append(await comm.receive_json_from(timeout=5))
    return frames


def _sockets_scenario(tenant_a, tenant_b, queues):
    """Three agents: one granted tenant A's takeover queue, one its default queue, one of tenant B.
    An alert of each queue; each socket hears exactly its own queue's alert."""
    takeover_agent = make_staff("takeover-agent", role=Role.AGENT, tenants=[tenant_a])
    default_agent = make_staff("default-agent", role=Role.AGENT, tenants=[tenant_a])
    foreign_agent = make_staff("foreign-agent", role=Role.AGENT, tenants=[tenant_b])
    queue_grant(queue=queues["takeover"], user=takeover_agent)
    queue_grant(queue=queues["default"], user=default_agent)
    queue_grant(queue=Queue.objects.get(tenant=tenant_b, is_default=True), user=foreign_agent)
    clients = [verified_client(u) for u in (takeover_agent, default_agent, foreign_agent)]
    takeover, plain, foreign = (
        _change(tenant_a, type_="account_takeover", severity=4),
        _change(tenant_a),
        _change(tenant_b, type_="account_takeover", severity=4),
    )

    async def scenario():
        sockets = [(await _open(c))[0] for c in clients]
        await sync_to_async(_commit)(tenant_a, [takeover, plain])
        await sync_to_async(_commit)(tenant_b, [foreign])
        heard = []
        for comm in sockets:  # the flusher started by the first connection sends them
            heard.append([a["id"] for f in await _frames(comm) for a in f["payload"]["alerts"]])
            await comm.disconnect()
        return heard

    assert async_to_sync(scenario)() == [[takeover["id"]], [plain["id"]], [foreign["id"]]]


def test_a_socket_hears_only_its_queues(tenant_a, tenant_b, queues):
    _sockets_scenario(tenant_a, tenant_b, queues)


@pytest.mark.services
def test_a_socket_hears_only_its_queues_on_the_redis_layer_and_buffer(tenant_a, tenant_b, queues):
    assert isinstance(get_channel_layer(), RedisChannelLayer)
    assert isinstance(push.changes_buffer(), push.RedisBuffer)
    _sockets_scenario(tenant_a, tenant_b, queues)


@pytest.mark.services
def test_two_flushers_on_one_redis_list_take_distinct_changes(tenant_a):
    _commit(tenant_a, [_change(tenant_a) for _ in range(10)])

    async def scenario():
        first, second = push.changes_buffer().reader(), push.changes_buffer().reader()
        try:
            return await first.take(6), await second.take(6), await first.take(6)
        finally:
            await first.aclose()
            await second.aclose()

    a, b, c = _run(scenario)
    assert (len(a), len(b), c) == (6, 4, [])
    assert not {x["id"] for x in a} & {x["id"] for x in b}


def _flushes(readers, *, window: float, seconds: float, flush: float) -> list[tuple[int, float, float]]:
    """Flushers on these readers, as desk.live runs them (a tick of 50 ms, each flush taking `flush`
    seconds), for `seconds`: (reader, start, end) of each flush, in order."""

    async def flusher(n, reader, flushes, until):
        while time.monotonic() < until:
            await asyncio.sleep(live.TICK_SECONDS)
            if await reader.turn(window):
                started = time.monotonic()
                await asyncio.sleep(flush)
                flushes.append((n, started, time.monotonic()))
                await reader.turn_end(window)

    async def scenario():
        flushes, until = [], time.monotonic() + seconds
        await asyncio.gather(*(flusher(n, r, flushes, until) for n, r in enumerate(readers)))
        for reader in readers:
            await reader.aclose()
        return sorted(flushes, key=lambda f: f[1])

    return _run(scenario)


def _assert_one_at_a_time_a_window_apart(flushes, window: float) -> None:
    for (_, started, ended), (_, next_started, _) in zip(flushes, flushes[1:], strict=False):
        assert next_started >= ended, flushes  # never two at once
        assert next_started >= started + window - 0.02, flushes  # a window from one start to the next


def test_one_flusher_at_a_time_a_window_apart(db):
    buffer = push.changes_buffer()
    flushes = _flushes([buffer.reader(), buffer.reader()], window=0.2, seconds=1.0, flush=0.1)
    _assert_one_at_a_time_a_window_apart(flushes, 0.2)
    assert 3 <= len(flushes) <= 5  # a window (0.2 s, the flush inside it) each time, over 1 s


def test_a_flush_longer_than_the_window_is_followed_by_the_next_without_overlap(db):
    buffer = push.changes_buffer()
    flushes = _flushes([buffer.reader(), buffer.reader()], window=0.1, seconds=1.0, flush=0.25)
    _assert_one_at_a_time_a_window_apart(flushes, 0.1)
    assert 3 <= len(flushes) <= 4  # back to back: 0.25 s and a tick each


@pytest.mark.services
def test_the_flushers_of_all_the_processes_take_turns_on_redis(db):
    """Two web processes' flushers (each its own reader and connection) share the turn: one flushes
    at a time, a window from one flush's start to the next; so a socket hears a queue at most once
    per window."""
    assert isinstance(push.changes_buffer(), push.RedisBuffer)
    push.RedisBuffer(settings.REDIS_URL).client.delete(push.FLUSH_TURN_KEY)
    readers = [push.RedisBuffer(settings.REDIS_URL).reader() for _ in range(2)]
    flushes = _flushes(readers, window=0.2, seconds=1.5, flush=0.1)
    _assert_one_at_a_time_a_window_apart(flushes, 0.2)
    assert 5 <= len(flushes) <= 8
    assert flushes[0][1] - min(f[1] for f in flushes) == 0


def test_a_failing_flusher_backs_off_instead_of_warning_every_tick(monkeypatch):
    calls, warnings = [], []
    # Counted on the module's logger itself: another test's logging set-up may have disabled it.
    monkeypatch.setattr(live.logger, "warning", lambda message, *args, **kwargs: warnings.append(message))

    class Refusing:
        async def turn(self, window):
            calls.append(time.monotonic())
            raise ConnectionError("refused")

        async def turn_end(self, window):
            pass

        async def aclose(self):
            pass

    class Buffer:
        def reader(self):
            return Refusing()

        def clear(self):
            pass

    monkeypatch.setattr(push, "changes_buffer", lambda: Buffer())

    async def scenario():
        task = asyncio.ensure_future(live._flush_forever())
        await asyncio.sleep(1.2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    _run(scenario)
    assert 2 <= len(calls) <= 4  # 50 ms, then 250, 500, 1000 ms apart (a tick each time: 24 without)
    assert warnings == ["live flush failed"] * len(calls)


def test_a_burst_of_a_thousand_alerts_makes_a_handful_of_frames_per_connection(tenant_a, queues):
    agent = make_staff("burst-agent", role=Role.AGENT, tenants=[tenant_a])
    for queue in queues.values():
        queue_grant(queue=queue, user=agent)
    client = verified_client(agent)
    burst = [_change(tenant_a, type_="account_takeover" if n % 2 else "login", severity=2 + n % 3) for n in range(1000)]

    async def scenario():
        comm, _ = await _open(client)
        started = time.monotonic()
        for start in range(0, 1000, 50):  # twenty commits, as a worker's chunks would come
            await sync_to_async(_commit)(tenant_a, burst[start : start + 50])
        frames = await _frames(comm)
        await comm.disconnect()
        return frames, time.monotonic() - started

    frames, elapsed = _run(scenario)
    assert 1 <= len(frames) <= 3 * (elapsed / live.COALESCE_SECONDS + 1)  # at most a signal per queue per window
    assert len(frames) <= 15
    assert [f["seq"] for f in frames] == list(range(2, 2 + len(frames)))
    # Every alert is covered: listed in its queue's signal, or its queue was told to refetch.
    listed = {a["id"] for f in frames for a in f["payload"]["alerts"]}
    refetched = {f["queue"] for f in frames if f["payload"]["refetch"]}
    expected = {
        c["id"]: queues[
            "takeover" if c["type"] == "account_takeover" else ("critical" if c["severity"] == 4 else "default")
        ].pk
        for c in burst
    }
    assert all(alert_id in listed or queue in refetched for alert_id, queue in expected.items())


# --- presence ------------------------------------------------------------------------------------------


def test_presence_is_told_to_the_alerts_queue_only_and_cleared_on_leaving(tenant_a, tenant_b, queues):
    from django.utils import timezone

    from alerts.models import Alert

    now = timezone.now()
    alert = Alert.objects.create(tenant=tenant_a, type="login", rule="new_device", severity=2, reason="r",
                                 dedupe_key="k", first_seen_at=now, last_seen_at=now, created_at=now,
                                 updated_at=now)  # fmt: skip
    takeover_alert = Alert.objects.create(tenant=tenant_a, type="account_takeover", rule="takeover", severity=4,
                                          reason="r", dedupe_key="t", first_seen_at=now, last_seen_at=now,
                                          created_at=now, updated_at=now)  # fmt: skip
    viewer, colleague, other = (
        make_staff(name, role=Role.AGENT, tenants=[tenant_a]) for name in ("viewer", "colleague", "other")
    )
    for user in (viewer, colleague):
        queue_grant(queue=queues["default"], user=user)
    queue_grant(queue=queues["takeover"], user=other)
    clients = [verified_client(u) for u in (viewer, colleague, other)]
    default = queues["default"].pk

    async def scenario():
        mine, theirs, elsewhere = [(await _open(c))[0] for c in clients]
        await mine.send_json_to({"type": "viewing", "alert": alert.pk})
        heard = await theirs.receive_json_from(timeout=5)
        assert (heard["type"], heard["queue"], heard["payload"]) == (
            "presence",
            default,
            {"alert": alert.pk, "users": ["viewer"]},
        )
        assert (await mine.receive_json_from(timeout=5))["payload"]["users"] == ["viewer"]
        assert await elsewhere.receive_nothing(timeout=0.3)  # another queue's agent hears nothing of it

        # An alert of a queue this connection does not hear: nothing is told, and the old one is left.
        await mine.send_json_to({"type": "viewing", "alert": takeover_alert.pk})
        assert (await theirs.receive_json_from(timeout=5))["payload"] == {"alert": alert.pk, "users": []}
        assert await elsewhere.receive_nothing(timeout=0.3)

        await mine.send_json_to({"type": "viewing", "alert": alert.pk})
        await theirs.receive_json_from(timeout=5)
        await mine.disconnect()  # leaving the page
        assert (await theirs.receive_json_from(timeout=5))["payload"] == {"alert": alert.pk, "users": []}
        await theirs.disconnect()
        await elsewhere.disconnect()

    async_to_sync(scenario)()

"""The desk WebSocket: the same session, MFA wall and access function as HTTP; every change that
narrows access narrows or closes an open connection at once; pushes carry ids, states and a seq."""

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY

from accounts import services
from accounts.demo import totp_now
from accounts.middleware import SESSION_PUSH_KEY, SESSION_SEEN_KEY, SESSION_STARTED_KEY
from accounts.models import Role
from accounts.testing import make_staff, verified_client
from config import push
from config.asgi import application
from desk import consumers, live
from desk.models import Queue
from desk.services import queue_grant, queue_revoke

pytestmark = pytest.mark.django_db(transaction=True)


def _headers(client: Client | None, origin: bytes = b"http://127.0.0.1"):
    headers = [(b"origin", origin)]
    if client is not None:
        cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        headers.append((b"cookie", cookie.encode()))
    return headers


def _connect_result(client, origin=b"http://127.0.0.1"):
    async def scenario():
        comm = WebsocketCommunicator(application, "/ws/desk/", headers=_headers(client, origin))
        connected, code = await comm.connect(timeout=5)
        if connected:
            await comm.disconnect()
        return connected, code

    return async_to_sync(scenario)()


async def _open(client) -> tuple[WebsocketCommunicator, dict]:
    comm = WebsocketCommunicator(application, "/ws/desk/", headers=_headers(client))
    connected, code = await comm.connect(timeout=5)
    assert connected, code
    return comm, await comm.receive_json_from(timeout=5)


_alert_ids = iter(range(1000, 100000))


@pytest.fixture(autouse=True)
def _fresh_live():
    """An empty change buffer and no cached queues: ids of an earlier test's queues may come back."""
    push.changes_buffer().clear()
    live.reset()
    yield
    push.changes_buffer().clear()
    live.reset()


def _default_queue(tenant) -> Queue:
    return Queue.objects.get(tenant=tenant, is_default=True)


def _grant_defaults(user, *tenants) -> None:
    for tenant in tenants:
        queue_grant(queue=_default_queue(tenant), user=user)


async def _announce(*tenants, severity=2) -> list[int]:
    """A committed change of a new alert in each tenant's default queue, as alerts_announce sends
    it, then one flush (the flusher would take it within COALESCE_SECONDS); returns the alert ids."""
    ids = [next(_alert_ids) for _ in tenants]
    payloads = [{"id": i, "type": "login", "severity": severity, "status": "open", "assignee": None} for i in ids]
    messages = [(t.pk, "alert.created", p) for t, p in zip(tenants, payloads, strict=True)]
    await sync_to_async(push.tenant_events)(messages)
    await live.flush_once()
    return ids


async def _ids_received(comm, count: int) -> list[int]:
    """The alert ids of the next `count` queue.changed signals (one alert each)."""
    ids = []
    for _ in range(count):
        message = await comm.receive_json_from(timeout=5)
        assert message["type"] == "queue.changed", message
        ids += [a["id"] for a in message["payload"]["alerts"]]
    return ids


async def _assert_ended(comm, reason: str) -> None:
    message = await comm.receive_json_from(timeout=5)
    assert (message["type"], message["payload"]) == ("session.ended", {"reason": reason})
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": consumers.CLOSE_SESSION}


async def _assert_hears_nothing_of(comm, *tenants) -> None:
    await _announce(*tenants)
    assert await comm.receive_nothing(timeout=0.3)


@pytest.fixture
def otp_client(agent, tenant_a):
    """The agent, granted tenant A's default queue, and a verified browser of theirs."""
    _grant_defaults(agent, tenant_a)
    return verified_client(agent)


@pytest.fixture
def both(tenant_a, tenant_b):
    """An agent of tenants A and B, and a verified browser of theirs."""
    user = make_staff("agent-both", role=Role.AGENT, tenants=[tenant_a, tenant_b])
    _grant_defaults(user, tenant_a, tenant_b)
    return user, verified_client(user)


# --- the handshake ----------------------------------------------------------------------------------


def test_verified_staff_hear_their_queues_and_no_one_elses(otp_client, tenant_a, tenant_b):
    other = make_staff("other", role=Role.AGENT, tenants=[tenant_b])
    _grant_defaults(other, tenant_b)
    other_client = verified_client(other)
    queue_a, queue_b = _default_queue(tenant_a).pk, _default_queue(tenant_b).pk

    async def scenario():
        mine, hello = await _open(otp_client)
        theirs, their_hello = await _open(other_client)
        assert hello == {"type": "hello", "seq": 1, "queue": None, "payload": {"queues": [queue_a]}}
        assert their_hello["payload"] == {"queues": [queue_b]}

        (alert_id,) = await _announce(tenant_a)
        assert await mine.receive_json_from() == {
            "type": "queue.changed",
            "seq": 2,
            "queue": queue_a,
            "payload": {
                "alerts": [{"id": alert_id, "status": "open", "severity": 2, "assignee": None}],
                "refetch": False,
            },
        }
        assert await theirs.receive_nothing(timeout=0.3)

        await mine.send_json_to({"type": "ping"})
        assert await mine.receive_json_from() == {"type": "pong", "seq": 3, "queue": None, "payload": {}}
        await mine.disconnect()
        await theirs.disconnect()

    async_to_sync(scenario)()


def test_seq_counts_up_per_connection(both, tenant_a, tenant_b):
    _, client = both

    async def scenario():
        first, hello = await _open(client)
        assert hello["seq"] == 1
        for tenant in (tenant_a, tenant_b, tenant_a):
            await _announce(tenant)
        assert [(await first.receive_json_from())["seq"] for _ in range(3)] == [2, 3, 4]
        second, hello = await _open(client)  # its own count
        assert hello["seq"] == 1
        await _announce(tenant_b)
        assert (await first.receive_json_from())["seq"] == 5
        assert (await second.receive_json_from())["seq"] == 2
        await first.disconnect()
        await second.disconnect()

    async_to_sync(scenario)()


def test_a_bpo_admin_hears_every_active_tenant(admin_user, tenant_a, tenant_b):
    services.tenant_set_active(tenant=tenant_b, is_active=False)
    client = verified_client(admin_user)

    queue_a = _default_queue(tenant_a).pk

    async def scenario():
        comm, hello = await _open(client)
        assert hello["payload"] == {"queues": [queue_a]}
        await comm.disconnect()

    async_to_sync(scenario)()


def test_password_only_session_is_refused(password_only_client):
    assert _connect_result(password_only_client) == (False, 4401)


def test_anonymous_is_refused(db):
    assert _connect_result(None) == (False, 4401)


def test_deactivated_user_is_refused(otp_client, agent):
    services.user_deactivate(user=agent)
    assert _connect_result(otp_client)[0] is False


def test_foreign_origin_is_refused(otp_client):
    assert _connect_result(otp_client, origin=b"https://evil.example")[0] is False


def test_an_expired_session_is_refused_at_the_handshake(otp_client):
    session = otp_client.session
    session[SESSION_SEEN_KEY] = int(time.time() - settings.SESSION_IDLE_TIMEOUT.total_seconds() - 5)
    session.save()
    assert _connect_result(otp_client) == (False, 4401)


def test_a_session_without_a_push_id_is_refused(otp_client):
    session = otp_client.session
    del session[SESSION_PUSH_KEY]
    session.save()
    assert _connect_result(otp_client) == (False, 4401)


def test_a_user_with_no_tenant_is_refused(tenant_a):
    lonely = make_staff("lonely", role=Role.AGENT, tenants=[])
    assert _connect_result(verified_client(lonely)) == (False, consumers.CLOSE_NO_ACCESS)


def test_an_agent_granted_no_queue_is_refused(tenant_a):
    idle = make_staff("idle", role=Role.AGENT, tenants=[tenant_a])  # a membership, no queue granted
    assert _connect_result(verified_client(idle)) == (False, consumers.CLOSE_NO_ACCESS)


# --- every path that narrows access narrows the open connection ------------------------------------


def test_removing_a_membership_narrows_the_connection(both, tenant_a, tenant_b):
    user, client = both

    queue_a = _default_queue(tenant_a).pk

    async def scenario():
        comm, _ = await _open(client)
        await sync_to_async(services.membership_remove)(user=user, tenant=tenant_b)
        message = await comm.receive_json_from(timeout=5)
        assert (message["type"], message["payload"]) == ("access.changed", {"queues": [queue_a]})
        await _assert_hears_nothing_of(comm, tenant_b)
        ids = await _announce(tenant_b, tenant_a)
        assert await _ids_received(comm, 1) == ids[1:]  # A still arrives, B does not

        # The last membership: nothing left to hear, so the connection closes.
        await sync_to_async(services.membership_remove)(user=user, tenant=tenant_a)
        assert (await comm.receive_json_from(timeout=5))["payload"] == {"queues": []}
        assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": consumers.CLOSE_NO_ACCESS}

    async_to_sync(scenario)()


def test_a_new_supervisor_membership_widens_the_connection(agent, otp_client, tenant_a, tenant_b):
    queues = sorted([_default_queue(tenant_a).pk, _default_queue(tenant_b).pk])

    async def scenario():
        comm, _ = await _open(otp_client)
        await sync_to_async(services.membership_set)(user=agent, tenant=tenant_b, role=Role.SUPERVISOR)
        assert (await comm.receive_json_from(timeout=5))["payload"] == {"queues": queues}
        ids = await _announce(tenant_b)
        assert await _ids_received(comm, 1) == ids
        await comm.disconnect()

    async_to_sync(scenario)()


def test_granting_and_revoking_a_queue_widens_and_narrows_the_connection(agent, otp_client, tenant_a):
    from desk.services import queue_create

    takeover = queue_create(tenant=tenant_a, slug="takeover", name="Takeover", alert_types=["account_takeover"])
    default = _default_queue(tenant_a)

    async def hears_takeover(comm) -> bool:
        change = {"id": next(_alert_ids), "type": "account_takeover", "severity": 4, "status": "open", "assignee": None}
        await sync_to_async(push.tenant_events)([(tenant_a.pk, "alert.created", change)])
        await live.flush_once()
        return not await comm.receive_nothing(timeout=0.3)

    async def scenario():
        comm, hello = await _open(otp_client)
        assert hello["payload"] == {"queues": [default.pk]}
        assert not await hears_takeover(comm)  # an alert of the ungranted queue reaches nobody here

        await sync_to_async(queue_grant)(queue=takeover, user=agent)
        message = await comm.receive_json_from(timeout=5)
        assert (message["type"], message["payload"]) == (
            "access.changed",
            {"queues": sorted([default.pk, takeover.pk])},
        )
        assert await hears_takeover(comm)
        message = await comm.receive_json_from(timeout=5)
        assert (message["type"], message["queue"]) == ("queue.changed", takeover.pk)

        await sync_to_async(queue_revoke)(queue=takeover, user=agent)
        assert (await comm.receive_json_from(timeout=5))["payload"] == {"queues": [default.pk]}
        assert not await hears_takeover(comm)
        await _assert_hears(comm, tenant_a)  # the default queue still arrives

        await sync_to_async(queue_revoke)(queue=default, user=agent)  # nothing left: closed
        assert (await comm.receive_json_from(timeout=5))["payload"] == {"queues": []}
        assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": consumers.CLOSE_NO_ACCESS}

    async_to_sync(scenario)()


def test_the_grant_hook_rescopes_through_the_access_function(both, tenant_a, tenant_b):
    """push.user_access_changed is the hook a revoked grant calls: the connection takes its scope
    from the access function, whatever changed underneath."""
    from accounts.models import Membership

    user, client = both

    queue_a = _default_queue(tenant_a).pk

    async def scenario():
        comm, _ = await _open(client)
        # Changed behind the services' back (as a grant store would be), then the hook alone.
        await sync_to_async(Membership.objects.filter(user=user, tenant=tenant_b).delete)()
        await _announce(tenant_b)
        assert (await comm.receive_json_from(timeout=5))["type"] == "queue.changed"  # not told yet
        await sync_to_async(push.user_access_changed)(user.pk)
        assert (await comm.receive_json_from(timeout=5))["payload"] == {"queues": [queue_a]}
        await _assert_hears_nothing_of(comm, tenant_b)
        await comm.disconnect()

    async_to_sync(scenario)()


def test_deactivating_a_tenant_narrows_members_and_bpo_admins(both, admin_user, tenant_a, tenant_b):
    _, client = both
    admin_client = verified_client(admin_user)

    queue_a = _default_queue(tenant_a).pk

    async def scenario():
        member, _ = await _open(client)
        admin, _ = await _open(admin_client)
        await sync_to_async(services.tenant_set_active)(tenant=tenant_b, is_active=False)
        for comm in (member, admin):
            assert (await comm.receive_json_from(timeout=5))["payload"] == {"queues": [queue_a]}
            await _assert_hears_nothing_of(comm, tenant_b)
            await comm.disconnect()

    async_to_sync(scenario)()


def test_signing_out_closes_that_sessions_connections_only(both, tenant_a):
    user, client = both
    other_session = verified_client(user)

    async def scenario():
        signed_out, _ = await _open(client)
        stays, _ = await _open(other_session)
        response = await sync_to_async(client.post)(reverse("accounts:logout"))
        assert response.status_code == 302
        await _assert_ended(signed_out, push.SIGNED_OUT)
        ids = await _announce(tenant_a)
        assert await signed_out.receive_nothing(timeout=0.3)
        assert await _ids_received(stays, 1) == ids
        await stays.disconnect()

    async_to_sync(scenario)()


def _session_set(client, **values):
    session = client.session
    session.update(values)
    session.save()


def _rotate_session(client):
    """What re-authentication and the OTP step do: the same session data under a new key."""
    session = client.session
    session.cycle_key()
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key


async def _assert_hears(comm, tenant) -> None:
    (alert_id,) = await _announce(tenant)
    assert await _ids_received(comm, 1) == [alert_id]


def _shorten(settings, **limits):
    for name, seconds in limits.items():
        setattr(settings, name, timedelta(seconds=seconds))


def test_idle_expiry_closes_a_silent_connection(otp_client, tenant_a, settings):
    _shorten(settings, SESSION_IDLE_TIMEOUT=3)

    async def scenario():
        comm, _ = await _open(otp_client)
        ids = await _announce(tenant_a)
        assert await _ids_received(comm, 1) == ids
        started = time.monotonic()
        await _assert_ended(comm, push.EXPIRED)  # no push, no request: the connection's own clock
        assert time.monotonic() - started < 5
        await _assert_hears_nothing_of(comm, tenant_a)

    async_to_sync(scenario)()


def test_absolute_expiry_closes_a_connection_even_while_the_session_is_in_use(otp_client, tenant_a, settings):
    _shorten(settings, SESSION_ABSOLUTE_LIFETIME=3)

    async def scenario():
        comm, _ = await _open(otp_client)
        # Seen "later": idle time cannot be what ends it.
        await sync_to_async(_session_set)(otp_client, **{SESSION_SEEN_KEY: int(time.time()) + 60})
        await _assert_ended(comm, push.EXPIRED)
        await _assert_hears_nothing_of(comm, tenant_a)

    async_to_sync(scenario)()


def test_a_request_that_finds_the_session_expired_closes_its_connections_at_once(otp_client, tenant_a):
    async def scenario():
        comm, _ = await _open(otp_client)
        started = int(time.time() - settings.SESSION_ABSOLUTE_LIFETIME.total_seconds() - 5)
        await sync_to_async(_session_set)(otp_client, **{SESSION_STARTED_KEY: started})
        await sync_to_async(otp_client.get)("/")  # SessionLifetimeMiddleware signs it out
        await _assert_ended(comm, push.EXPIRED)
        await _assert_hears_nothing_of(comm, tenant_a)

    async_to_sync(scenario)()


def test_replacing_the_mfa_device_closes_connections_verified_with_the_old_one(agent, otp_client, tenant_a):
    async def scenario():
        comm, _ = await _open(otp_client)

        def replace():
            device = services.mfa_enrolment_start(user=agent)
            services.mfa_enrolment_confirm(user=agent, device=device, token=totp_now(device))
            return device

        device = await sync_to_async(replace)()
        await _assert_ended(comm, push.REVOKED)
        await _assert_hears_nothing_of(comm, tenant_a)
        return device

    device = async_to_sync(scenario)()

    # The session that confirmed the new device (the view puts it in the session) opens again.
    session = otp_client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    assert _connect_result(otp_client) == (True, None)


def test_deactivating_the_user_closes_an_open_connection_at_once(otp_client, agent, tenant_a):
    async def scenario():
        comm, _ = await _open(otp_client)
        await sync_to_async(services.user_deactivate)(user=agent)
        await _assert_ended(comm, push.REVOKED)
        await _assert_hears_nothing_of(comm, tenant_a)

    async_to_sync(scenario)()


def test_a_new_password_closes_the_connections_of_sessions_made_with_the_old_one(otp_client, agent, tenant_a):
    async def scenario():
        comm, _ = await _open(otp_client)
        await sync_to_async(services.user_set_password)(user=agent, password="another-long-passphrase-17")
        await _assert_ended(comm, push.SIGNED_OUT)
        await _assert_hears_nothing_of(comm, tenant_a)

    async_to_sync(scenario)()


def test_the_periodic_recheck_notices_a_session_deleted_out_of_band(otp_client, tenant_a, monkeypatch):
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.5)

    async def scenario():
        comm, _ = await _open(otp_client)
        await sync_to_async(lambda: otp_client.session.delete())()
        await _assert_ended(comm, push.REPLACED)  # gone without a sign-out: the client tries again
        await _assert_hears_nothing_of(comm, tenant_a)
        refused = WebsocketCommunicator(application, "/ws/desk/", headers=_headers(otp_client))
        connected, code = await refused.connect()
        assert (connected, code) == (False, 4401)  # ... and its handshake is refused: signed out

    async_to_sync(scenario)()


def test_a_long_connection_renews_its_group_memberships_at_each_recheck(otp_client, tenant_a, monkeypatch):
    """The layer forgets a membership after its group_expiry (so a dead process's channels leave the
    queue groups); a live connection renews its own at every re-check and keeps hearing."""
    from channels.layers import get_channel_layer

    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.5)
    monkeypatch.setattr(get_channel_layer(), "group_expiry", 2)

    async def scenario():
        comm, _ = await _open(otp_client)
        await asyncio.sleep(3)  # past the expiry of the memberships made at connect
        await _assert_hears(comm, tenant_a)
        await comm.disconnect()

    async_to_sync(scenario)()


def test_re_authentication_rotates_the_session_and_the_client_reconnects(agent, tenant_a, monkeypatch):
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.5)
    _grant_defaults(agent, tenant_a)
    client = verified_client(agent)

    async def scenario():
        comm, _ = await _open(client)
        await sync_to_async(_rotate_session)(client)  # what re-authentication does (cycle_key)
        await _assert_ended(comm, push.REPLACED)  # not "signed_out": the user still is signed in
        again, _ = await _open(client)  # the new cookie
        await _assert_hears(again, tenant_a)

    async_to_sync(scenario)()


# --- what a push carries, and when ---------------------------------------------------------------------


def test_nothing_is_pushed_before_commit_or_after_a_rollback(otp_client, tenant_a):
    class RolledBackError(Exception):
        pass

    def announce_then_roll_back():
        try:
            with transaction.atomic():
                change = {"id": 1, "type": "login", "severity": 2, "status": "open", "assignee": None}
                push.tenant_events([(tenant_a.pk, "alert.created", change)])
                raise RolledBackError
        except RolledBackError:
            pass

    async def scenario():
        comm, _ = await _open(otp_client)
        await sync_to_async(announce_then_roll_back)()
        assert await live.flush_once() == 0  # nothing reached the buffer
        assert await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()

    async_to_sync(scenario)()


def test_alert_pushes_carry_ids_and_states_never_personal_data(otp_client, agent, tenant_a):
    from alerts.detection import events_process
    from alerts.models import Alert
    from alerts.services import alert_acknowledge, events_ingest
    from alerts.validation import validate_event

    now = datetime.now(UTC)
    account = {"external_id": "cust-4711", "email": "alice@example.com", "phone": "+14155550100",
               "display_name": "Alice Example"}  # fmt: skip
    raw = {"id": "ev-1", "type": "mfa.disabled", "occurred_at": now.isoformat(), "account": account, "context": {}}

    def raise_():
        _, _, ids = events_ingest(tenant=tenant_a, events=[validate_event(raw, now=now)])
        events_process(event_ids=ids)
        return Alert.objects.get()

    async def scenario():
        comm, _ = await _open(otp_client)
        alert = await sync_to_async(raise_)()
        await live.flush_once()
        created = await comm.receive_json_from(timeout=5)
        await sync_to_async(alert_acknowledge)(alert=alert, actor=agent)
        await live.flush_once()
        updated = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return created, updated, alert

    created, updated, alert = async_to_sync(scenario)()
    queue = _default_queue(tenant_a).pk
    assert (created["type"], created["queue"], created["payload"]) == (
        "queue.changed",
        queue,
        {"alerts": [{"id": alert.pk, "status": "open", "severity": 3, "assignee": None}], "refetch": False},
    )
    # Acknowledging an alert nobody holds claims it: the signal carries the new holder's username.
    assert updated["payload"]["alerts"] == [
        {"id": alert.pk, "status": "acknowledged", "severity": 3, "assignee": agent.username}
    ]
    for message in (created, updated):
        text = json.dumps(message)
        for personal in ("cust-4711", "alice", "example.com", "4155550100", "Alice Example"):
            assert personal not in text
    assert "agent" not in json.dumps(created)  # staff usernames travel only as the holder, once there is one


def test_signals_reach_the_socket_without_a_hop_to_the_thread_sensitive_thread(otp_client, tenant_a, monkeypatch):
    """channels' dispatch would close old connections on that thread before each message; this
    consumer's database calls close their own, so signals are handed over on the event loop."""
    import channels.consumer

    hops = []

    async def counted():
        hops.append(1)

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)

    async def scenario():
        comm, hello = await _open(otp_client)
        ids = await _announce(tenant_a, tenant_a)
        received = await _ids_received(comm, 1)
        await comm.send_json_to({"type": "ping"})
        pong = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return hello, ids, received, pong

    hello, ids, received, pong = async_to_sync(scenario)()
    assert hello["type"] == "hello"
    assert sorted(received) == sorted(ids)
    assert pong["type"] == "pong"
    assert hops == []

"""The desk WebSocket: same session, same MFA wall, tenant-scoped groups."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from accounts.testing import make_staff, verified_client
from config.asgi import application
from desk.realtime import tenant_announce

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


def test_verified_staff_get_their_tenants_events_and_no_one_elses(otp_client, tenant_a, tenant_b):
    other_client = verified_client(make_staff("other", role="agent", tenants=[tenant_b]))

    async def scenario():
        mine = WebsocketCommunicator(application, "/ws/desk/", headers=_headers(otp_client))
        theirs = WebsocketCommunicator(application, "/ws/desk/", headers=_headers(other_client))
        assert (await mine.connect(timeout=5))[0]
        assert (await theirs.connect(timeout=5))[0]
        assert await mine.receive_json_from() == {"type": "hello", "tenants": 1}
        assert await theirs.receive_json_from() == {"type": "hello", "tenants": 1}

        await sync_to_async(tenant_announce)(tenant_id=tenant_a.pk, event="alert.created", payload={"id": 1})
        assert await mine.receive_json_from() == {"type": "alert.created", "payload": {"id": 1}}
        assert await theirs.receive_nothing(timeout=0.3)

        await mine.send_json_to({"type": "ping"})
        assert await mine.receive_json_from() == {"type": "pong"}
        await mine.disconnect()
        await theirs.disconnect()

    async_to_sync(scenario)()


def test_password_only_session_is_refused(password_only_client):
    assert _connect_result(password_only_client) == (False, 4401)


def test_anonymous_is_refused(db):
    assert _connect_result(None) == (False, 4401)


def test_deactivated_user_is_refused(otp_client, agent):
    from accounts.services import user_deactivate

    user_deactivate(user=agent)
    assert _connect_result(otp_client)[0] is False


def test_deactivation_closes_an_open_connection_at_once(otp_client, agent):
    from accounts.services import user_deactivate

    async def scenario():
        comm = WebsocketCommunicator(application, "/ws/desk/", headers=_headers(otp_client))
        assert (await comm.connect(timeout=5))[0]
        await comm.receive_json_from()
        await sync_to_async(user_deactivate)(user=agent)
        assert await comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}

    async_to_sync(scenario)()


def test_foreign_origin_is_refused(otp_client):
    assert _connect_result(otp_client, origin=b"https://evil.example")[0] is False

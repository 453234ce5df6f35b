"""Case changes reach, live, the connections that may see the case: its queue's (coalesced like
queue.changed), and a specialist it is shared with through the case's own group; security
concerns reach the tenant's supervisors. Ids and states only."""

import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from accounts.testing import verified_client
from config import push
from config.asgi import application
from desk import live
from desk.services import case_note_add, case_share, case_unshare, concern_raise

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_live():
    push.changes_buffer().clear()
    live.reset()
    yield
    push.changes_buffer().clear()
    live.reset()


async def _open(client) -> WebsocketCommunicator:
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    comm = WebsocketCommunicator(
        application, "/ws/desk/", headers=[(b"origin", b"http://127.0.0.1"), (b"cookie", cookie.encode())]
    )
    connected, code = await comm.connect(timeout=5)
    assert connected, code
    assert (await comm.receive_json_from(timeout=5))["type"] == "hello"
    return comm


async def _types_heard(comm, wait=0.6) -> list[str]:
    types = []
    while not await comm.receive_nothing(timeout=wait):
        types.append((await comm.receive_json_from())["type"])
    return types


async def _settle():
    """Drop what earlier steps (the case's opening) left in the buffer."""
    await sync_to_async(push.changes_buffer().clear)()


def test_changes_of_many_cases_coalesce_per_queue_and_go_to_each_cases_own_group():
    changes = [
        {"kind": "case", "tenant": 1, "id": 7, "queue": 3, "status": "open", "assignee": None},
        {"kind": "case", "tenant": 1, "id": 8, "queue": 3, "status": "open", "assignee": None},
        {"kind": "case", "tenant": 1, "id": 7, "queue": 3, "status": "resolved", "assignee": "ann"},
    ]
    signals = live.case_signals_for(changes)
    assert signals == {
        "queue.3": (3, {"cases": [{"id": 8, "status": "open", "assignee": None},
                                  {"id": 7, "status": "resolved", "assignee": "ann"}], "refetch": False}),
        "case.7": (None, {"cases": [{"id": 7, "status": "resolved", "assignee": "ann"}], "refetch": False}),
        "case.8": (None, {"cases": [{"id": 8, "status": "open", "assignee": None}], "refetch": False}),
    }  # fmt: skip
    many = [{"kind": "case", "tenant": 1, "id": i, "queue": 3, "status": "open"} for i in range(live.MAX_LISTED + 1)]
    assert live.case_signals_for(many)["queue.3"] == (3, {"cases": [], "refetch": True})


def test_the_cases_queue_hears_it_change_and_other_queues_do_not(case_a, agent, specialist):
    agent_client, specialist_client = verified_client(agent), verified_client(specialist)

    async def scenario():
        mine, theirs = await _open(agent_client), await _open(specialist_client)
        await _settle()
        before = time.time()
        await sync_to_async(case_note_add)(actor=agent, case=case_a, body="Called the number on file.")
        after = time.time()
        await live.flush_once()  # (or the connection's own flusher, within COALESCE_SECONDS)
        message = await mine.receive_json_from(timeout=5)
        at = message["payload"]["cases"][0].pop("at")  # when it was committed: a page rendered later has it
        assert before <= at <= after
        assert message == {
            "type": "case.changed",
            "seq": 2,
            "queue": case_a.queue_id,
            "payload": {"cases": [{"id": case_a.pk, "status": "open", "assignee": None}], "refetch": False},
        }
        assert await theirs.receive_nothing(timeout=0.3)
        await mine.disconnect()
        await theirs.disconnect()

    async_to_sync(scenario)()


def test_a_specialist_hears_a_case_shared_with_them_until_it_is_taken_back(case_a, agent, specialist, supervisor):
    client = verified_client(specialist)

    async def note_and_flush(body):
        await sync_to_async(case_note_add)(actor=agent, case=case_a, body=body)
        await live.flush_once()

    async def scenario():
        comm = await _open(client)
        await _settle()
        await note_and_flush("before the share")
        assert await comm.receive_nothing(timeout=0.3)

        await sync_to_async(case_share)(actor=supervisor, case=case_a, user=specialist)
        assert (await comm.receive_json_from(timeout=5))["type"] == "access.changed"
        await note_and_flush("after the share")
        message = await comm.receive_json_from(timeout=5)
        assert (message["type"], message["queue"], message["payload"]["cases"][0]["id"]) == (
            "case.changed", None, case_a.pk,
        )  # fmt: skip

        await sync_to_async(case_unshare)(actor=supervisor, case=case_a, user=specialist)
        assert (await comm.receive_json_from(timeout=5))["type"] == "access.changed"
        await note_and_flush("taken back")
        assert await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()

    async_to_sync(scenario)()


def test_a_concern_reaches_the_tenants_supervisors_at_once_and_no_agent(case_a, agent, supervisor, agent_b):
    supervisor_client, agent_client, foreign_client = (verified_client(u) for u in (supervisor, agent, agent_b))

    async def scenario():
        boss, mine, foreign = await _open(supervisor_client), await _open(agent_client), await _open(foreign_client)
        concern = await sync_to_async(concern_raise)(actor=agent, case=case_a, kind="social_engineering", note="")
        assert await boss.receive_json_from(timeout=5) == {
            "type": "concern.raised",
            "seq": 2,
            "queue": None,
            "payload": {"id": concern.pk, "case": case_a.pk, "kind": "social_engineering"},
        }
        assert "concern.raised" not in await _types_heard(mine)  # the case's change, at most
        assert await foreign.receive_nothing(timeout=0.1)
        for comm in (boss, mine, foreign):
            await comm.disconnect()

    async_to_sync(scenario)()

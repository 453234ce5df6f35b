"""config.asgi_handler: under ASGI a request crosses to a thread of its own once, through the whole
(sync) middleware chain, on a thread kept for the next requests; concurrent requests still get
threads of their own, and a thread goes back only once it has finished its request's work."""

import asyncio
import contextlib
import json
import threading

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator

from config.asgi_handler import SyncChainASGIHandler
from config.tests import urls_threads

pytestmark = [pytest.mark.urls("config.tests.urls_threads"), pytest.mark.django_db]


def _scope(path: str) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80),
    }  # fmt: skip


async def _get(app, path: str) -> tuple[int, dict, dict]:
    comm = ApplicationCommunicator(app, _scope(path))
    await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await comm.receive_output(10)
    body = await comm.receive_output(10)
    await comm.wait(10)
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, json.loads(body["body"] or b"{}")


async def _settled(app, executors: int) -> None:
    """Wait until `executors` executors are idle again (they go back from their own thread)."""
    for _ in range(200):
        if app.idle_count() >= executors:
            return
        await asyncio.sleep(0.01)


def test_sequential_requests_share_one_kept_thread_not_the_event_loops():
    app = SyncChainASGIHandler()

    async def scenario():
        threads = []
        for _ in range(5):
            status, _, body = await _get(app, "/where/")
            assert status == 200
            threads.append(body["thread"])
            await _settled(app, 1)
        return threads, threading.get_ident()

    before = threading.active_count()
    threads, loop_thread = async_to_sync(scenario)()
    assert len(set(threads)) == 1  # Django's own handler: a new thread each time
    assert loop_thread not in threads
    assert threading.active_count() <= before + 2  # the kept thread (and async_to_sync's loop)


def test_the_whole_middleware_chain_runs_in_sync_mode_with_its_headers():
    app = SyncChainASGIHandler()
    assert not app._middleware_chain.__code__.co_flags & 0x80  # not a coroutine function

    status, headers, _ = async_to_sync(_get)(app, "/where/")
    assert status == 200
    assert "content-security-policy" in headers
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"


def test_concurrent_requests_get_threads_of_their_own():
    app = SyncChainASGIHandler()
    urls_threads.release.clear()

    async def scenario():
        slow = asyncio.ensure_future(_get(app, "/slow/"))
        await asyncio.sleep(0.2)
        fast = await asyncio.wait_for(_get(app, "/where/"), 5)  # not queued behind the slow view
        urls_threads.release.set()
        return (await slow)[2]["thread"], fast[2]["thread"]

    slow_thread, fast_thread = async_to_sync(scenario)()
    assert slow_thread != fast_thread


def test_a_thread_goes_back_only_after_the_work_its_request_left_on_it():
    app = SyncChainASGIHandler()
    executor = app._executor_take()
    gate = threading.Event()
    executor.submit(gate.wait, 5)  # say, a view still running after its request was answered
    app._executor_return(executor)
    assert app.idle_count() == 0
    assert app._executor_take() is not executor  # the next request gets another thread
    gate.set()
    async_to_sync(_settled)(app, 1)
    assert app._idle == [executor]


def test_a_request_daphne_cancels_keeps_its_thread_until_its_view_returns():
    """daphne cancels a request whose client is gone for good (or at shutdown); the view runs on,
    and its thread serves no other request before it is done."""
    app = SyncChainASGIHandler()
    urls_threads.release.clear()
    urls_threads.slow_threads.clear()

    async def scenario():
        comm = ApplicationCommunicator(app, _scope("/slow/"))
        await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
        await asyncio.sleep(0.2)
        comm.future.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await comm.future
        held = app.idle_count()
        status, _, body = await _get(app, "/where/")
        urls_threads.release.set()
        await _settled(app, 2)
        return held, status, body["thread"], app.idle_count()

    held, status, other_thread, idle = async_to_sync(scenario)()
    assert held == 0  # the cancelled request's thread is still running its view
    assert status == 200 and other_thread not in urls_threads.slow_threads
    assert idle == 2  # both threads back once the view returned


def test_only_so_many_idle_threads_are_kept():
    app = SyncChainASGIHandler(idle_threads=2)
    urls_threads.release.clear()

    async def scenario():
        slow = [asyncio.ensure_future(_get(app, "/slow/")) for _ in range(4)]
        await asyncio.sleep(0.2)
        urls_threads.release.set()
        await asyncio.gather(*slow)
        await _settled(app, 2)
        await asyncio.sleep(0.2)  # the other two finish their work and end
        return app.idle_count()

    assert async_to_sync(scenario)() == 2


def test_an_async_view_is_served_too():
    status, _, body = async_to_sync(_get)(SyncChainASGIHandler(), "/async/")
    assert (status, body["async"]) == (200, True)


def test_anything_but_http_is_refused():
    app = SyncChainASGIHandler()

    async def scenario():
        with pytest.raises(ValueError, match="only handle ASGI/HTTP"):
            await app({"type": "websocket"}, None, None)

    async_to_sync(scenario)()


def test_the_projects_asgi_application_serves_http_with_it():
    from config.asgi import application, django_asgi_app

    assert isinstance(django_asgi_app, SyncChainASGIHandler)
    assert application.application_mapping["http"] is django_asgi_app

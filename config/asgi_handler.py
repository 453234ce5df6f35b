"""Django's ASGI handler for a project of synchronous views: the middleware chain and the view run in
one call to the request's thread, and the threads are kept.

Django's own handler (5.2, with asgiref 3.13) costs a request about as much CPU as the view itself
(bench/event_post.py: an event POST of 12 events took 9-13 ms of daphne's CPU, against 4.8 ms through
Django's test client in one process):
- it builds the middleware chain for async mode, so that a chain of sync middleware hops between
  the event loop and the request's thread several times (to the thread for the sync middleware,
  back to the loop for the async-capable ones, and again to the thread for each MiddlewareMixin's
  process_request and process_response, and for the view);
- asgiref's ThreadSensitiveContext makes a new thread for every request, and another one to join it
  at the end (asgiref#306, asgiref#563), and the event loop waits for each to start.

This handler builds the chain for sync mode, as under WSGI, and runs it in one call to the request's
thread (Django's request_started and response.close still take a call each, as with its own
handler). The thread comes from a small set of single-thread executors kept for reuse
(ThreadSensitiveContext(executor=...), asgiref's way of giving a request a thread the caller owns):
a request still has a thread of its own while it runs, so a slow view holds up no other request.

An executor goes back to the set only once its thread has finished everything the request sent it:
a view that daphne's cancellation (a client gone for good, a shutdown) left running keeps its
executor until it returns. That job also closes the thread's database connections the way
request_finished would (returning a pooled one to the pool), since a cancelled request never sends
request_finished; an executor beyond the set closes them before it ends.

Async views still work: Django's sync path calls them through async_to_sync. WebSockets are not
served here (channels' consumers, config.asgi). The class leans on ASGIHandler's handle() and
get_response_async(): check it again at each Django upgrade.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.db import close_old_connections, connections

IDLE_THREADS = 16  # threads kept for the next requests; a burst beyond it makes (then ends) more


class SyncChainASGIHandler(ASGIHandler):
    """ASGIHandler with the middleware chain and the view run in one hop to a reused thread."""

    def __init__(self, idle_threads: int = IDLE_THREADS):
        BaseHandler.__init__(self)  # not ASGIHandler's: it builds the chain for async mode
        self.load_middleware(is_async=False)
        self.idle_threads = idle_threads
        self._idle: list[ThreadPoolExecutor] = []
        self._idle_lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self._executor_take()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self._executor_return(executor)

    async def get_response_async(self, request):
        # The whole sync chain (middleware, view, response middleware) in one call to the thread.
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)

    def _executor_take(self) -> ThreadPoolExecutor:
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="http")

    def _executor_return(self, executor: ThreadPoolExecutor) -> None:
        """Back to the idle set after whatever the request left queued on its thread has run."""

        def idle(_future) -> None:  # on the executor's thread, or the loop's if it was already done
            with self._idle_lock:
                if len(self._idle) < self.idle_threads:
                    self._idle.append(executor)
                    return
            executor.submit(connections.close_all)  # its connections, on its thread
            executor.shutdown(wait=False)  # its thread ends by itself once that has run

        executor.submit(close_old_connections).add_done_callback(idle)

    def idle_count(self) -> int:
        return len(self._idle)

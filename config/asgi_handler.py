"""Django's ASGI handler for a project of synchronous views: each request crosses to a thread once,
and the threads are kept.

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
thread. The thread comes from a small set of single-thread executors kept for reuse
(ThreadSensitiveContext(executor=...), asgiref's way of giving a request a thread the caller owns):
a request still has a thread of its own while it runs, so a slow view holds up no other request.
An executor goes back to the set only once its thread has finished everything the request sent it
(a view still running after the client went away keeps its executor until it returns).

Async views still work: Django's sync path calls them through async_to_sync. WebSockets are not
served here (channels' consumers, config.asgi).
"""

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler

IDLE_THREADS = 16  # threads kept for the next requests; a burst beyond it makes (then ends) more


def _nothing() -> None:
    return None


class SyncChainASGIHandler(ASGIHandler):
    """ASGIHandler with the middleware chain and the view run in one hop to a reused thread."""

    def __init__(self, idle_threads: int = IDLE_THREADS):
        BaseHandler.__init__(self)  # not ASGIHandler's: it builds the chain for async mode
        self.load_middleware(is_async=False)
        self.idle_threads = idle_threads
        self._idle: list[ThreadPoolExecutor] = []

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
        try:
            return self._idle.pop()  # atomic: the loop's thread and the executors' threads share it
        except IndexError:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="http")

    def _executor_return(self, executor: ThreadPoolExecutor) -> None:
        """Back to the idle set after whatever the request left queued on its thread has run."""

        def idle(_future) -> None:
            if len(self._idle) < self.idle_threads:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)  # its thread ends by itself; nobody waits for it

        executor.submit(_nothing).add_done_callback(idle)

    def idle_count(self) -> int:
        return len(self._idle)

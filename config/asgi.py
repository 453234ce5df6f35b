"""One ASGI application for HTTP and WebSocket (served by daphne)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Under ASGI every HTTP request runs its view on a thread of its own while it lasts. With Django's own
# handler that was a new thread per request, so a persistent connection was never reused by the next
# request: each one stayed open, held by a dead thread, until the garbage collector found it (40 per
# daphne process under bench/live.py's load, and "too many clients" for everyone on the server). The
# threads are kept now (config.asgi_handler), but a burst makes more of them than are kept, and a
# connection per thread is more than the database needs. So on PostgreSQL the process keeps a pool (see
# DATABASE_POOL_MAX in config.settings) and each request borrows a connection and hands it back;
# DATABASE_POOL_MAX=0 turns it off (a pooler such as PgBouncer in front), and then each request's
# connection is closed at its end.
os.environ.setdefault("DATABASE_POOL_MAX", "10")
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application, with our handler

from config.asgi_handler import SyncChainASGIHandler  # noqa: E402 (after setup)

django_asgi_app = SyncChainASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from accounts.realtime import VerifiedStaffMiddleware  # noqa: E402
from desk.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(VerifiedStaffMiddleware(URLRouter(websocket_urlpatterns))),
    }
)

from config.memory import startup_objects_freeze  # noqa: E402 (after Django is set up)

startup_objects_freeze()  # what is alive now lives as long as the process: no collection walks it

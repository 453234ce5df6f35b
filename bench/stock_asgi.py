"""The project's settings and set-up (config.asgi) served by Django's own ASGI handler, for HTTP only:
what bench/event_post.py compares config.asgi_handler with. Not for serving anything else."""

from django.core.asgi import get_asgi_application

import config.asgi  # noqa: F401 (the environment defaults and the set-up the project's processes have)

application = get_asgi_application()

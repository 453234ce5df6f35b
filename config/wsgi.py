import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

from config.memory import startup_objects_freeze  # noqa: E402 (after Django is set up)

startup_objects_freeze()  # what is alive now lives as long as the process: no collection walks it

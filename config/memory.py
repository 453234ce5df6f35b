"""The garbage collector and a long-running server process.

Once the application is loaded (settings, apps, models, URL patterns and the views they import),
some 150,000 objects live for as long as the process does. CPython's full collection walks every
tracked object each time it runs; on the desk's pages it ran every hundred-odd requests and took
100-160 ms on a loaded machine, the p99 of the queue page. `startup_objects_freeze` moves what is
alive at start-up into the collector's permanent generation, which no collection walks: each
collection then costs what the requests themselves left behind. Objects made later are collected
as before; the frozen ones are never freed, which they would not be anyway (Instagram's
`gc.freeze()`, Python 3.7+).

Called by config.wsgi and config.asgi once the application is built, and by bench/ scripts that
serve requests in-process, so that they measure what a server does.
"""

import gc


def startup_objects_freeze() -> int:
    """Load what the first request would (the URLconf and the views it imports), collect what
    loading left behind, and freeze the rest. Returns how many objects were frozen."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (imports every view module now, not at the first request)
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()

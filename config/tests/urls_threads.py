"""Views for config/tests/test_asgi_handler.py: which thread serves a request, a slow view, an
async view."""

import threading
import time

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.urls import path

from accounts.decorators import mfa_not_required

release = threading.Event()  # the slow view waits for it
slow_threads: list[int] = []  # where the slow view ran


@login_not_required
@mfa_not_required
def where(request):
    return JsonResponse({"thread": threading.get_ident()})


@login_not_required
@mfa_not_required
def slow(request):
    slow_threads.append(threading.get_ident())
    release.wait(10)
    time.sleep(0.05)
    return JsonResponse({"thread": threading.get_ident()})


@login_not_required
@mfa_not_required
async def asynchronous(request):
    return JsonResponse({"thread": threading.get_ident(), "async": True})


urlpatterns = [
    path("where/", where),
    path("slow/", slow),
    path("async/", asynchronous),
]

"""The site's URLconf plus a view that fails, for the 500 page's test."""

from django.urls import path

from config.urls import handler500, urlpatterns  # noqa: F401 (handler500: Django reads it from here)


def fails(request):
    raise RuntimeError("boom")


urlpatterns = [path("fails/", fails), *urlpatterns]

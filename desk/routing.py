from django.urls import path

from desk import consumers

websocket_urlpatterns = [
    path("ws/desk/", consumers.DeskConsumer.as_asgi()),
]

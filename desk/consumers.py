from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.selectors import tenant_list_for
from desk.realtime import tenant_group, user_group


class DeskConsumer(AsyncJsonWebsocketConsumer):
    """Live updates for the desk: one connection joins the groups of every tenant the user may see.

    Reached only through VerifiedStaffMiddleware (logged in, active, past the OTP step).
    """

    async def connect(self):
        user_id = self.scope["user"].pk
        self.groups_joined = [user_group(user_id), *(tenant_group(pk) for pk in await self._tenant_ids())]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "tenants": len(self.groups_joined) - 1})

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def desk_event(self, message):
        await self.send_json({"type": message["event"], "payload": message["payload"]})

    async def session_end(self, message):
        await self.close(code=4401)

    @database_sync_to_async
    def _tenant_ids(self) -> list[int]:
        return list(tenant_list_for(user=self.scope["user"]).values_list("pk", flat=True))

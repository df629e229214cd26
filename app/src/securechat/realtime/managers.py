"""Socket.IO client managers: who is in which room, and how emits reach them.

`LocalManager` keeps the rooms of one process. `RedisManager` is python-socketio's
`AsyncRedisManager`: every emit to a room is also published on a Redis channel, and every
process delivers it to its own sockets in that room, so rooms span the processes.

Both understand one more thing than python-socketio does: an emit of `DISCONNECT_ROOM`
disconnects the sockets in the room instead of sending them an event. Through Redis the request
travels on the same channel, and is handled in the same order, as the emits before it, so a
`session:revoked` emitted first still reaches its sockets before they are disconnected.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio

log = logging.getLogger(__name__)
# An internal event name: never sent to a client (clients cannot emit server events anyway).
DISCONNECT_ROOM = "securechat:disconnect-room"
SUBSCRIBE_TIMEOUT_SECONDS = 10


async def _disconnect_local(manager: Any, namespace: str, room: str) -> None:
    for sid, _ in list(manager.get_participants(namespace, room)):
        try:
            await manager.server.disconnect(sid, namespace=namespace, ignore_queue=True)
        except Exception:
            # python-socketio's own logger is off; one failure must not spare the others.
            log.exception("disconnecting a socket of a closed room failed")


class LocalManager(socketio.AsyncManager):  # type: ignore[misc]
    async def emit(
        self, event: str, data: Any, namespace: str, room: Any = None, **kwargs: Any
    ) -> None:
        if event == DISCONNECT_ROOM:
            await _disconnect_local(self, namespace, kwargs.get("to") or room)
            return
        await super().emit(event, data, namespace, room=room, **kwargs)


class RedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    async def _handle_emit(self, message: dict[str, Any]) -> None:
        # Called for this process's own emits and for those of the others, in channel order.
        if message.get("event") == DISCONNECT_ROOM:
            await _disconnect_local(self, message.get("namespace") or "/", message["room"])
            return
        await super()._handle_emit(message)

    async def subscribe(self) -> None:
        """Start listening at once (python-socketio waits for the first connection otherwise),
        and return when the channel is subscribed, so no emit of another process is missed."""
        server = self.server
        if not server.manager_initialized:
            server.manager_initialized = True
            self.initialize()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SUBSCRIBE_TIMEOUT_SECONDS
        while self.pubsub is None or not self.pubsub.subscribed:
            if loop.time() > deadline:
                raise RuntimeError(
                    f"could not subscribe to the Redis channel {self.channel!r} "
                    f"within {SUBSCRIBE_TIMEOUT_SECONDS} seconds"
                )
            await asyncio.sleep(0.05)

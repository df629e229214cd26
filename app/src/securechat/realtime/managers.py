"""Socket.IO client managers: who is in which room, and how emits reach them.

Both deliver an emit to this process's sockets through `DeliveringManager` (`delivery.py`),
without an asyncio task per recipient, and check the sockets' pings in one pass
(`MonitoringManager`, `liveness.py`). `LocalManager` keeps the rooms of one process.
`RedisManager` is python-socketio's `AsyncRedisManager`: every emit to a room is also published
on a Redis channel, and every process delivers it to its own sockets in that room, so rooms span
the processes. It publishes differently, though: python-socketio sends each emit on a connection
of its own from a pool of 100, and fails (then leaks the pool) when more emits are in flight;
`RedisManager` queues them and sends whatever is waiting in one pipeline on one connection, in
order.

Both understand one more thing than python-socketio does: an emit of `DISCONNECT_ROOM`
disconnects the sockets in the room instead of sending them an event. Through Redis the request
travels on the same channel, and is handled in the same order, as the emits before it, so a
`session:revoked` emitted first still reaches its sockets before they are disconnected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import socketio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from securechat.realtime.delivery import DeliveringManager
from securechat.realtime.liveness import MonitoringManager

log = logging.getLogger(__name__)
# An internal event name: never sent to a client (clients cannot emit server events anyway).
DISCONNECT_ROOM = "securechat:disconnect-room"
SUBSCRIBE_TIMEOUT_SECONDS = 10
PUBLISH_BATCH = 500  # emits per pipeline at most
PUBLISH_TIMEOUT_SECONDS = 5  # the listener has no timeout (it waits for messages by design)


async def _disconnect_local(manager: Any, namespace: str, room: str) -> None:
    for sid, _ in list(manager.get_participants(namespace, room)):
        try:
            await manager.server.disconnect(sid, namespace=namespace, ignore_queue=True)
        except Exception:
            # python-socketio's own logger is off; one failure must not spare the others.
            log.exception("disconnecting a socket of a closed room failed")


class LocalManager(DeliveringManager, MonitoringManager):
    async def emit(
        self, event: str, data: Any, namespace: str, room: Any = None, **kwargs: Any
    ) -> None:
        if event == DISCONNECT_ROOM:
            await _disconnect_local(self, namespace, kwargs.get("to") or room)
            return
        await super().emit(event, data, namespace, room=room, **kwargs)


# python-socketio's pub/sub manager delivers every emit, its own and the other processes', with
# `super().emit`: DeliveringManager comes right after it in this class's method order.
class RedisManager(socketio.AsyncRedisManager, DeliveringManager, MonitoringManager):  # type: ignore[misc]
    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._publisher: Redis | None = None
        self._outbox: list[tuple[str, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def _publish(self, data: Any) -> None:
        """Queue one message for the channel; return once Redis took it (or it was given up)."""
        done = asyncio.get_running_loop().create_future()
        self._outbox.append((self.json.dumps(data), done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="redis-publisher")
        await done

    async def _flush(self) -> None:
        while self._outbox:
            batch = self._outbox[:PUBLISH_BATCH]
            del self._outbox[:PUBLISH_BATCH]
            try:
                await self._send(message for message, _ in batch)
            except Exception as error:
                # As python-socketio does: the event is lost for the other processes (the
                # messages themselves are stored); this process's own sockets have it.
                log.error("publishing %d event(s) to Redis failed: %s", len(batch), error)
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _send(self, messages: Iterable[str]) -> None:
        if self._publisher is None:
            options = {**self.redis_options, "socket_timeout": PUBLISH_TIMEOUT_SECONDS}
            self._publisher = Redis.from_url(self.redis_url, **options)
        pending = list(messages)
        for attempt in (1, 2):  # a dropped connection is reopened once
            try:
                async with self._publisher.pipeline(transaction=False) as pipe:
                    for message in pending:
                        pipe.publish(self.channel, message)
                    await pipe.execute()
                return
            except (RedisError, OSError):
                if attempt == 2:
                    raise

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._publisher is not None:
            await self._publisher.aclose()

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

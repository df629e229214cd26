"""Delivering one emit to many sockets without an asyncio task per recipient.

python-socketio's `AsyncManager.emit` encodes the packet once, then starts one task per
recipient socket, each of which checks the socket's ping deadline and puts the packet on the
socket's Engine.IO queue, and waits for all of them. The socket's own writer task then sends
what its queue holds. Creating, scheduling and collecting those tasks was most of the cost of a
group fan-out (docs/benchmarks.md, S4).

`DeliveringManager.emit` does the same work in the emitting task: the same encoded Engine.IO
packet objects (their encoding is cached) go straight onto each recipient's queue. Nothing else
changes: every packet still goes through the socket's queue and writer, in order, whatever the
transport (WebSocket or long-polling); the sender's socket is still skipped; rooms are still
python-socketio's. A socket that needs more than a queue append, one that has missed its ping
deadline (sending to it closes it, which runs the disconnect handler) or is gone, takes
python-socketio's own path, in a task of its own as before, so it cannot hold up the others.
Emits with a callback (an ack id per recipient) are python-socketio's as well; we use none.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet


class DeliveringManager(socketio.AsyncManager):  # type: ignore[misc]
    # python-socketio's signature: (event, data, namespace, room, skip_sid, callback, to).
    async def emit(
        self, event: str, data: Any, namespace: str, room: Any = None, **kwargs: Any
    ) -> None:
        if kwargs.get("callback") is not None:
            await super().emit(event, data, namespace, room=room, **kwargs)
            return
        room = kwargs.get("to") or room
        skip_sid = kwargs.get("skip_sid")
        if namespace not in self.rooms:
            return
        # As python-socketio: a tuple is several arguments, None is none, anything else one.
        if isinstance(data, tuple):
            arguments = list(data)
        elif data is not None:
            arguments = [data]
        else:
            arguments = []
        skipped = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        packets = self._encode(event, arguments, namespace)
        server = self.server
        sockets = server.eio.sockets
        ping_timeout = server.eio.ping_timeout
        now = time.time()
        others: list[str] = []
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skipped:
                continue
            socket = sockets.get(eio_sid)
            # engineio's `AsyncSocket.send` is this queue append when the socket is open and
            # within its ping deadline; anything else is left to it.
            if (
                socket is None
                or socket.closed
                or (socket.last_ping and now - socket.last_ping > ping_timeout)
            ):
                others.append(eio_sid)
                continue
            for pkt in packets:
                socket.queue.put_nowait(pkt)
        if others:
            await asyncio.wait(
                [
                    asyncio.create_task(server._send_eio_packet(eio_sid, pkt))
                    for eio_sid in others
                    for pkt in packets
                ]
            )

    def _encode(self, event: str, arguments: list[Any], namespace: str) -> list[Any]:
        """The Engine.IO packets of one event, shared by every recipient."""
        pkt = self.server.packet_class(
            sio_packet.EVENT, namespace=namespace, data=[event, *arguments]
        )
        encoded = pkt.encode()
        parts = encoded if isinstance(encoded, list) else [encoded]
        return [eio_packet.Packet(eio_packet.MESSAGE, part) for part in parts]

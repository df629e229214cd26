"""Closing sockets whose client stopped answering pings: Engine.IO's monitor, done cheaper.

Engine.IO pings every socket (every 25 s) and closes one whose pong has not come within the
ping timeout (20 s). Its monitor task visits the sockets one at a time, spread over the timeout:
with 10,000 sockets it wakes every 2 ms, each time through `asyncio.wait_for` on an event, which
was most of the CPU an idle server spent (docs/benchmarks.md, S1). `MonitoringManager` switches
that task off and checks every socket in one pass, twice per ping timeout: a pass is a deadline
comparison per socket, and only an overdue socket is closed, by Engine.IO's own check, as before
(which runs the disconnect handler). A closed socket is forgotten, as Engine.IO's monitor does.

WebSocket clients are also dropped by Engine.IO's reader when nothing arrives for the ping
interval plus the timeout; the monitor is what catches a long-polling client that went away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import socketio

log = logging.getLogger(__name__)
CHECKS_PER_TIMEOUT = 2


class MonitoringManager(socketio.AsyncManager):  # type: ignore[misc]
    def set_server(self, server: Any) -> None:
        super().set_server(server)
        server.eio.start_service_task = False  # before the first connection would start it

    def initialize(self) -> None:
        super().initialize()
        self.monitor_task = self.server.start_background_task(watch_sockets, self.server.eio)


async def watch_sockets(eio: Any) -> None:
    while True:
        await asyncio.sleep(eio.ping_timeout / CHECKS_PER_TIMEOUT)
        try:
            await check_sockets(eio)
        except Exception:
            log.exception("checking the sockets' pings failed; checking again later")


async def check_sockets(eio: Any) -> None:
    """One pass: forget closed sockets, close those whose client missed its ping deadline."""
    now = time.time()
    timeout = eio.ping_timeout
    for socket in list(eio.sockets.values()):
        if socket.closed:
            eio.sockets.pop(socket.sid, None)
        elif not socket.closing and socket.last_ping and now - socket.last_ping > timeout:
            await socket.check_ping_timeout()  # closes it

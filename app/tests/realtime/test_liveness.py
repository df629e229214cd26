"""Our ping deadline check (`liveness.py`) in place of Engine.IO's monitor, in process against
python-socketio's server with short ping settings."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import socketio

from securechat.realtime.liveness import check_sockets
from securechat.realtime.managers import LocalManager
from tests.conftest import free_port
from tests.realtime.conftest import serving

PING_SECONDS = 0.3


class App:
    def __init__(self, sio: socketio.AsyncServer, url: str) -> None:
        self.sio = sio
        self.url = url
        self.connected: list[str] = []
        self.disconnected: list[str] = []


@pytest.fixture
async def app() -> AsyncIterator[App]:
    sio = socketio.AsyncServer(
        client_manager=LocalManager(),
        async_mode="asgi",
        ping_interval=PING_SECONDS,
        ping_timeout=PING_SECONDS,
    )
    port = free_port()
    running = App(sio, f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling")

    @sio.event
    async def connect(sid: str, _environ: dict[str, Any], _auth: Any = None) -> None:
        running.connected.append(sid)

    @sio.event
    async def disconnect(sid: str, _reason: Any = None) -> None:
        running.disconnected.append(sid)

    async with serving(sio, port):
        yield running


async def wait_for(condition: Any, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_polling_client_that_went_away_is_disconnected(app: App) -> None:
    async with aiohttp.ClientSession() as http:
        # Engine.IO's open packet, then the Socket.IO connect, then silence: no more polls, so
        # the server's pings are never answered.
        async with http.get(app.url) as response:
            opened = json.loads((await response.text())[1:])
        url = f"{app.url}&sid={opened['sid']}"
        async with http.post(url, data="40") as response:
            assert response.status == 200
        async with http.get(url) as response:
            assert (await response.text()).startswith("40")
        await wait_for(lambda: len(app.connected) == 1)
        await wait_for(lambda: app.disconnected == app.connected, seconds=8 * PING_SECONDS)
    assert app.sio.eio.start_service_task is False  # Engine.IO's own monitor never started
    assert getattr(app.sio.eio, "service_task_handle", None) is None
    await wait_for(lambda: app.sio.eio.sockets == {})  # closed sockets are forgotten


async def test_a_client_that_answers_its_pings_stays(app: App) -> None:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(app.url.split("/socket.io")[0], transports=["polling"], wait_timeout=5)
    try:
        await asyncio.sleep(6 * PING_SECONDS)  # several ping rounds
        assert client.connected
        assert app.disconnected == []
        await check_sockets(app.sio.eio)
        assert len(app.sio.eio.sockets) == 1
    finally:
        await client.disconnect()

"""Shared fixtures for tests against a real server: three connected users."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import socketio
import uvicorn

from securechat.client.chat import ChatClient
from tests.conftest import RunningServer
from tests.helpers import new_user


@pytest.fixture
async def trio(server: RunningServer) -> AsyncIterator[tuple[ChatClient, ChatClient, ChatClient]]:
    users = await asyncio.gather(
        *(new_user(server.url, name) for name in ("alice", "bob", "carol"))
    )
    try:
        yield users[0], users[1], users[2]
    finally:
        await asyncio.gather(*(user.close() for user in users))


def in_conversation(cid: str) -> Any:
    return lambda data: data.get("conversation_id") == cid


@asynccontextmanager
async def serving(sio: socketio.AsyncServer, port: int) -> AsyncIterator[None]:
    """A python-socketio server alone (no app) in this event loop, on 127.0.0.1:<port>."""
    config = uvicorn.Config(
        socketio.ASGIApp(sio), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task

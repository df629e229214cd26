"""Shared fixtures for tests against a real server: three connected users."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

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

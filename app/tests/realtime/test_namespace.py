"""The connect path (`namespace.py`): who is told that a user came online or went offline,
end to end through a real server (SQLite and MariaDB)."""

from __future__ import annotations

import asyncio

import pytest

from securechat.client.chat import ChatClient
from tests.conftest import TEST_KDF_ITERATIONS, RunningServer
from tests.helpers import PASSWORD

pytestmark = pytest.mark.slow


def announced(client: ChatClient, event: str, user_id: str) -> list[object]:
    return [e for e in client.events.pending(event) if e["user_id"] == user_id]


async def another_socket(server: RunningServer, client: ChatClient) -> ChatClient:
    other = ChatClient(server.url, min_kdf_iterations=TEST_KDF_ITERATIONS)
    await other.login(client.user["username"], PASSWORD)
    await other.connect()
    return other


async def test_online_is_announced_once_per_user_and_offline_after_the_last_socket(
    server: RunningServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    alice, bob, _ = trio
    await alice.create_direct(bob.user_id)
    await bob.disconnect()
    await alice.events.wait("user:offline", lambda e: e["user_id"] == bob.user_id)
    await bob.connect()
    await alice.events.wait("user:online", lambda e: e["user_id"] == bob.user_id)
    bob_again = await another_socket(server, bob)  # bob is already online: no announcement
    try:
        await bob_again.disconnect()  # bob still has a socket: no announcement either
        await asyncio.sleep(0.3)
        assert announced(alice, "user:online", bob.user_id) == []
        assert announced(alice, "user:offline", bob.user_id) == []
        await bob.disconnect()
        await alice.events.wait("user:offline", lambda e: e["user_id"] == bob.user_id)
        await bob.connect()  # the first socket again: announced again
        await alice.events.wait("user:online", lambda e: e["user_id"] == bob.user_id)
    finally:
        await bob_again.close()


async def test_a_blocked_contact_is_not_told_either_way(
    trio: tuple[ChatClient, ChatClient, ChatClient],
) -> None:
    alice, bob, carol = trio
    await alice.create_group("three", [bob.user_id, carol.user_id])
    await bob.block(alice.user_id)  # the block goes one way; presence is hidden both ways
    # Blocking itself tells each that the other went offline; nothing is said after that.
    await alice.events.wait("user:offline", lambda e: e["user_id"] == bob.user_id)
    await bob.events.wait("user:offline", lambda e: e["user_id"] == alice.user_id)
    await bob.disconnect()
    await carol.events.wait("user:offline", lambda e: e["user_id"] == bob.user_id)
    await bob.connect()
    await carol.events.wait("user:online", lambda e: e["user_id"] == bob.user_id)
    await alice.disconnect()
    await carol.events.wait("user:offline", lambda e: e["user_id"] == alice.user_id)
    await alice.connect()
    await carol.events.wait("user:online", lambda e: e["user_id"] == alice.user_id)
    await asyncio.sleep(0.3)
    assert announced(alice, "user:online", bob.user_id) == []
    assert announced(alice, "user:offline", bob.user_id) == []
    assert announced(bob, "user:online", alice.user_id) == []
    assert announced(bob, "user:offline", alice.user_id) == []

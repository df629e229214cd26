"""Nothing acknowledged is lost across a server restart; clients catch up after reconnecting."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from securechat.client.chat import ChatClient
from tests.conftest import TEST_KDF_ITERATIONS, server_environment, start_server, stop_server
from tests.helpers import PASSWORD, new_user

pytestmark = pytest.mark.slow


async def test_acknowledged_messages_survive_a_restart(migrated_url: str, tmp_path: Path) -> None:
    env = server_environment(migrated_url)
    first = start_server(env, tmp_path / "first.log")
    alice = await new_user(first.url, "alice")
    bob = await new_user(first.url, "bob", connect=False)
    try:
        cid = (await alice.create_direct(bob.user_id))["id"]
        acks = await asyncio.gather(*(alice.send_text(cid, f"m{i}") for i in range(50)))
        assert all(ack["ok"] for ack in acks)
    finally:
        await alice.close()
        stop_server(first)

    second = start_server(env, tmp_path / "second.log")
    again = ChatClient(second.url, min_kdf_iterations=TEST_KDF_ITERATIONS)
    try:
        await again.login(bob.user["username"], PASSWORD)
        await again.connect()
        missed = await again.catch_up({cid: 0})
        assert sorted(m.text for m in missed[cid]) == sorted(f"m{i}" for i in range(50))
        assert [m.seq for m in missed[cid]] == list(range(1, 51))
    finally:
        await asyncio.gather(again.close(), bob.close())
        stop_server(second)

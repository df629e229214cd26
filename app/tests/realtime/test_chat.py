"""End to end through a real uvicorn server with the reference client."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import RunningServer
from tests.helpers import new_user


async def test_two_users_talk_both_ways(server: RunningServer) -> None:
    alice = await new_user(server.url, "alice")
    bob = await new_user(server.url, "bob")
    try:
        conversation = await alice.create_direct(bob.user_id)
        cid = conversation["id"]
        ack = await alice.send_text(cid, "hello bob")
        assert ack["ok"] is True
        assert ack["seq"] == 1
        new = await bob.events.wait("message:new", lambda m: m["conversation_id"] == cid)
        received = await bob.decrypt(new)
        assert received.text == "hello bob"
        assert received.sender_id == alice.user_id
        ack = await bob.send_text(cid, "hi alice")
        new = await alice.events.wait("message:new")
        assert (await alice.decrypt(new)).text == "hi alice"
        assert ack["seq"] == 2
        assert await alice.safety_number(bob.user_id) == await bob.safety_number(alice.user_id)
    finally:
        await asyncio.gather(alice.close(), bob.close())

"""Files, reactions and blocking end to end through a real server (SQLite and MariaDB)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from securechat.client.chat import ChatClient
from securechat.client.files import parse_file_content
from securechat.client.http import ApiError
from securechat.client.reactions import aggregate_reactions
from tests.conftest import RunningServer
from tests.helpers import new_user
from tests.realtime.conftest import in_conversation

pytestmark = pytest.mark.slow


async def test_encrypted_file_round_trip(
    trio: tuple[ChatClient, ChatClient, ChatClient], tmp_path: Path, server: RunningServer
) -> None:
    alice, bob, carol = trio
    cid = (await alice.create_direct(bob.user_id))["id"]
    original = tmp_path / "report.pdf"
    data = os.urandom(3 * 65536 + 1234)
    original.write_bytes(data)
    sent = await alice.upload_file(cid, original, mime="application/pdf", caption="the report")
    assert sent["ack"]["ok"] is True
    assert sent["file"]["size"] == len(data) + 4 * 28

    message = await bob.events.wait("message:new", in_conversation(cid))
    received = await bob.decrypt(message)
    assert received.content is not None
    ref = parse_file_content(received.content)
    assert (ref.name, ref.mime, ref.size, ref.text) == (
        "report.pdf",
        "application/pdf",
        len(data),
        "the report",
    )
    target = tmp_path / "downloaded"
    await bob.download_file(ref, target)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()

    # The server holds ciphertext only: the blob on disk is not the file.
    blobs = [p for p in Path(server.env["SECURECHAT_UPLOAD_DIR"]).iterdir() if p.is_file()]
    assert blobs
    assert all(data[:4096] not in blob.read_bytes() for blob in blobs)
    # A stranger cannot fetch it, even knowing its id.
    with pytest.raises(ApiError) as error:
        await carol.download_file(ref, tmp_path / "stolen")
    assert error.value.status == 404


async def test_reactions_aggregate_idempotently(
    trio: tuple[ChatClient, ChatClient, ChatClient],
) -> None:
    alice, bob, carol = trio
    group = await alice.create_group("reactions", [bob.user_id, carol.user_id])
    cid = group["id"]
    ack = await alice.send_text(cid, "lunch?")
    target = ack["message_id"]
    await bob.react(cid, target, "👍")
    await bob.react(cid, target, "👍")  # twice: still one
    await carol.react(cid, target, "👍")
    await carol.react(cid, target, "🎉")
    await carol.react(cid, target, "🎉", "remove")
    await carol.react(cid, target, "🍕", "remove")  # removing what is absent: nothing
    history, _ = await alice.history(cid)
    events = [(m.seq, m.sender_id, m.content or {}) for m in history]
    assert aggregate_reactions(events) == {target: {"👍": {bob.user_id, carol.user_id}}}


async def test_blocking(trio: tuple[ChatClient, ChatClient, ChatClient]) -> None:
    alice, bob, carol = trio
    direct = (await alice.create_direct(bob.user_id))["id"]
    group = (await alice.create_group("shared", [bob.user_id, carol.user_id]))["id"]
    await alice.block(bob.user_id)
    await alice.block(bob.user_id)  # idempotent
    assert [b["user_id"] for b in await alice.blocks()] == [bob.user_id]

    # Bob cannot send into the direct conversation, nor start another one.
    ack = await bob.send_text(direct, "hello?")
    assert ack["ok"] is False
    assert ack["error"]["code"] == "blocked"
    ack = await alice.send_text(direct, "I blocked you")
    assert ack["error"]["code"] == "blocked"
    assert "unblock" in ack["error"]["message"]

    # In the group, alice receives nothing from bob; carol still does.
    ack = await bob.send_text(group, "from bob")
    assert ack["ok"] is True
    message = await carol.events.wait("message:new", in_conversation(group))
    assert (await carol.decrypt(message)).text == "from bob"
    await bob.emit("typing:start", {"conversation_id": group})
    await alice.send_text(group, "from alice")
    await bob.events.wait("message:new", in_conversation(group))  # groups stay shared
    await asyncio.sleep(0.3)
    assert [m for m in alice.events.pending("message:new") if m["sender_id"] == bob.user_id] == []
    assert alice.events.pending("typing:start") == []
    history, _ = await alice.history(group)
    assert bob.user_id not in {m.sender_id for m in history}
    # Presence: neither sees the other.
    assert bob.user_id not in (await alice.emit("presence:list", {}))["online"]
    assert alice.user_id not in (await bob.emit("presence:list", {}))["online"]

    await alice.unblock(bob.user_id)
    ack = await bob.send_text(direct, "friends again")
    assert ack["ok"] is True
    message = await alice.events.wait("message:new", in_conversation(direct))
    assert (await alice.decrypt(message)).text == "friends again"


async def test_blocked_user_cannot_start_a_direct_conversation(
    trio: tuple[ChatClient, ChatClient, ChatClient],
) -> None:
    alice, bob, _ = trio
    await alice.block(bob.user_id)
    with pytest.raises(ApiError) as error:
        await bob.create_direct(alice.user_id)
    assert error.value.status == 403
    assert error.value.code == "blocked"
    with pytest.raises(ApiError) as error:
        await alice.block(alice.user_id)
    assert error.value.status == 422


async def test_admin_disable_ends_sockets_at_once(server: RunningServer) -> None:
    from securechat.admin import create_admin
    from securechat.settings import Settings
    from tests.conftest import TEST_KDF_ITERATIONS
    from tests.helpers import unique_name

    name = unique_name("admin")
    create_admin(Settings.from_env(server.env), name, "admin password for tests")
    admin = ChatClient(server.url, min_kdf_iterations=TEST_KDF_ITERATIONS)
    await admin.login(name, "admin password for tests")
    victim = await new_user(server.url, "victim")
    try:
        await admin.http.call("POST", f"/admin/users/{victim.user_id}/disable")
        revoked = await victim.events.wait("session:revoked", timeout=2)
        assert revoked == {"reason": "disabled"}
        for _ in range(40):
            if not victim.connected:
                break
            await asyncio.sleep(0.05)
        assert not victim.connected
        stats = await admin.http.call("GET", "/admin/stats")
        assert stats["online_now"] == 0
    finally:
        await asyncio.gather(admin.close(), victim.close())

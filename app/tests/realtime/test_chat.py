"""End to end through a real uvicorn server with the reference client (SQLite and MariaDB)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import socketio

from securechat.client.chat import ChatClient
from securechat.client.crypto import CryptoError
from securechat.client.http import ApiError
from tests.conftest import RunningServer
from tests.helpers import new_user
from tests.realtime.conftest import in_conversation

pytestmark = pytest.mark.slow


async def test_two_users_talk_both_ways(trio: tuple[ChatClient, ChatClient, ChatClient]) -> None:
    alice, bob, _ = trio
    conversation = await alice.create_direct(bob.user_id)
    cid = conversation["id"]
    ack = await alice.send_text(cid, "hello bob")
    assert ack["ok"] is True
    assert ack["seq"] == 1
    assert ack["duplicate"] is False
    received = await bob.decrypt(await bob.events.wait("message:new", in_conversation(cid)))
    assert received.text == "hello bob"
    assert received.sender_id == alice.user_id
    ack = await bob.send_text(cid, "hi alice")
    assert ack["seq"] == 2
    assert (await alice.decrypt(await alice.events.wait("message:new"))).text == "hi alice"
    assert await alice.safety_number(bob.user_id) == await bob.safety_number(alice.user_id)
    history, has_more = await bob.history(cid)
    assert [m.text for m in history] == ["hello bob", "hi alice"]
    assert has_more is False


async def test_second_direct_conversation_is_refused(
    trio: tuple[ChatClient, ChatClient, ChatClient],
) -> None:
    alice, bob, _ = trio
    first = await alice.create_direct(bob.user_id)
    with pytest.raises(ApiError) as error:
        await bob.create_direct(alice.user_id)
    assert error.value.status == 409
    assert error.value.body["error"]["existing_id"] == first["id"]


async def test_group_of_three_and_a_removed_member_cannot_read_the_next_epoch(
    trio: tuple[ChatClient, ChatClient, ChatClient],
) -> None:
    alice, bob, carol = trio
    group = await alice.create_group("night shift", [bob.user_id, carol.user_id])
    cid = group["id"]
    assert {m["role"] for m in group["members"] if m["user_id"] == alice.user_id} == {"admin"}
    await alice.send_text(cid, "epoch one")
    for member in (bob, carol):
        message = await member.events.wait("message:new", in_conversation(cid))
        assert (await member.decrypt(message)).text == "epoch one"

    updated = await alice.set_members(cid, [alice.user_id, bob.user_id])
    assert updated["epoch"] == 2
    removed = await carol.events.wait("conversation:updated", lambda c: c.get("removed") is True)
    assert removed == {"id": cid, "removed": True}

    await alice.send_text(cid, "epoch two, without carol")
    message = await bob.events.wait("message:new", in_conversation(cid))
    assert (await bob.decrypt(message)).text == "epoch two, without carol"
    # Carol got nothing, cannot read the history any more, and holds no key for epoch 2.
    await asyncio.sleep(0.3)
    assert carol.events.pending("message:new") == []
    with pytest.raises(ApiError) as error:
        await carol.history(cid)
    assert error.value.status == 404
    with pytest.raises((ApiError, CryptoError)):
        await carol.epoch_key(cid, 2)
    # Even given the ciphertext, her epoch-1 key does not open it.
    stored = (await bob.http.call("GET", f"/conversations/{cid}/messages"))["messages"][-1]
    assert stored["epoch"] == 2
    carol_view = await carol.decrypt(stored)
    assert carol_view.content is None


async def test_only_admins_change_members_and_direct_members_are_fixed(
    trio: tuple[ChatClient, ChatClient, ChatClient],
) -> None:
    alice, bob, carol = trio
    group = await alice.create_group("admins only", [bob.user_id])
    with pytest.raises(ApiError) as error:
        await bob.set_members(group["id"], [alice.user_id, bob.user_id, carol.user_id])
    assert error.value.status == 403
    rotated = await bob.rotate(group["id"])  # same members: any member may rotate
    assert rotated["epoch"] == 2
    direct = await alice.create_direct(carol.user_id)
    with pytest.raises(ApiError) as error:
        await alice.set_members(direct["id"], [alice.user_id, carol.user_id, bob.user_id])
    assert error.value.status == 403


async def test_leave_forces_a_rotation_before_the_next_send(
    trio: tuple[ChatClient, ChatClient, ChatClient],
) -> None:
    alice, bob, carol = trio
    group = await alice.create_group("leavers", [bob.user_id, carol.user_id])
    cid = group["id"]
    await carol.leave(cid)
    conversation = await alice.conversation(cid)
    assert conversation["rotation_required"] is True
    # A raw send at the old epoch is refused...
    key = await alice.epoch_key(cid, 1)
    from securechat.client.crypto import encrypt_envelope

    envelope = encrypt_envelope({"type": "text", "text": "x"}, cid, 1, key, alice.signer)
    ack = await alice.send_envelope(envelope)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "epoch_stale"
    # ...and the client's send rotates first, then delivers.
    ack = await alice.send_text(cid, "after carol left")
    assert ack["ok"] is True
    assert (await alice.conversation(cid))["epoch"] == 2
    message = await bob.events.wait("message:new", in_conversation(cid))
    assert (await bob.decrypt(message)).text == "after carol left"


async def test_retry_is_idempotent(trio: tuple[ChatClient, ChatClient, ChatClient]) -> None:
    alice, bob, _ = trio
    cid = (await alice.create_direct(bob.user_id))["id"]
    envelope = await alice.encrypt_text(cid, "only once")
    first = await alice.send_envelope(envelope)
    again = await alice.send_envelope(envelope)
    assert again["seq"] == first["seq"]
    assert again["duplicate"] is True
    assert again["server_time"] == first["server_time"]
    history, _ = await bob.history(cid)
    assert [m.text for m in history] == ["only once"]
    # Someone else re-using the id is refused, not stored.
    theirs = await bob.encrypt_text(cid, "same id", message_id=str(envelope["message_id"]))
    refused = await bob.send_envelope(theirs)
    assert refused["ok"] is False
    assert refused["error"]["code"] == "conflict"


async def test_concurrent_sends_get_contiguous_sequence_numbers(
    trio: tuple[ChatClient, ChatClient, ChatClient],
) -> None:
    alice, bob, carol = trio
    group = await alice.create_group("burst", [bob.user_id, carol.user_id])
    cid = group["id"]
    envelopes = [
        await sender.encrypt_text(cid, f"m{i}") for i in range(30) for sender in (alice, bob, carol)
    ]
    owners = [sender for _ in range(30) for sender in (alice, bob, carol)]
    acks = await asyncio.gather(
        *(o.send_envelope(e) for o, e in zip(owners, envelopes, strict=True))
    )
    assert sorted(ack["seq"] for ack in acks) == list(range(1, 91))
    history, _ = await carol.history(cid, limit=200)
    assert [m.seq for m in history] == list(range(1, 91))


async def test_reconnect_catch_up(trio: tuple[ChatClient, ChatClient, ChatClient]) -> None:
    alice, bob, _ = trio
    cid = (await alice.create_direct(bob.user_id))["id"]
    await alice.send_text(cid, "before")
    seen = await bob.events.wait("message:new", in_conversation(cid))
    await bob.disconnect()
    for index in range(5):
        await alice.send_text(cid, f"while away {index}")
    await bob.connect()
    missed = await bob.catch_up({cid: seen["seq"]})
    assert [m.text for m in missed[cid]] == [f"while away {i}" for i in range(5)]


async def test_catch_up_pages_through_has_more(
    trio: tuple[ChatClient, ChatClient, ChatClient],
) -> None:
    alice, bob, _ = trio
    cid = (await alice.create_direct(bob.user_id))["id"]
    for index in range(7):
        await alice.send_text(cid, str(index))
    answer = await bob.http.call("POST", "/sync", {"since": {cid: 0}, "limit": 3})
    assert [m["seq"] for m in answer["conversations"][cid]["messages"]] == [1, 2, 3]
    assert answer["conversations"][cid]["has_more"] is True
    everything = await bob.catch_up({cid: 0})
    assert [m.text for m in everything[cid]] == [str(i) for i in range(7)]
    older, has_more = await bob.history(cid, before=4, limit=2)
    assert [m.seq for m in older] == [2, 3]
    assert has_more is True


async def test_typing_read_receipts_and_presence(
    trio: tuple[ChatClient, ChatClient, ChatClient],
) -> None:
    alice, bob, carol = trio
    cid = (await alice.create_direct(bob.user_id))["id"]
    assert (await alice.emit("typing:start", {"conversation_id": cid}))["ok"] is True
    typing = await bob.events.wait("typing:start", in_conversation(cid))
    assert typing["user_id"] == alice.user_id
    await alice.emit("typing:stop", {"conversation_id": cid})
    await bob.events.wait("typing:stop", in_conversation(cid))
    ack = await alice.send_text(cid, "read me")
    read = await bob.emit("message:read", {"conversation_id": cid, "seq": ack["seq"]})
    assert read == {"ok": True, "seq": ack["seq"]}
    receipt = await alice.events.wait("message:read", in_conversation(cid))
    assert receipt["user_id"] == bob.user_id
    # Read positions never move backwards, and cannot pass the last message.
    assert (await bob.emit("message:read", {"conversation_id": cid, "seq": 0}))["seq"] == ack["seq"]
    assert (await bob.emit("message:read", {"conversation_id": cid, "seq": 10**9}))["seq"] == ack[
        "seq"
    ]
    online = await alice.emit("presence:list", {})
    assert bob.user_id in online["online"]
    assert carol.user_id not in online["online"]  # carol shares no conversation with alice
    await bob.disconnect()
    offline = await alice.events.wait("user:offline", lambda e: e["user_id"] == bob.user_id)
    assert offline == {"user_id": bob.user_id}
    await bob.connect()
    await alice.events.wait("user:online", lambda e: e["user_id"] == bob.user_id)
    # Carol, a stranger, heard none of it.
    assert [e for e in carol.events.pending("user:online") if e["user_id"] == bob.user_id] == []
    assert carol.events.pending("typing:start") == []


async def test_key_change_is_announced_and_old_messages_still_verify(
    trio: tuple[ChatClient, ChatClient, ChatClient],
) -> None:
    alice, bob, _ = trio
    cid = (await alice.create_direct(bob.user_id))["id"]
    await alice.send_text(cid, "signed with key 1")
    await bob.events.wait("message:new", in_conversation(cid))
    before = await bob.safety_number(alice.user_id)
    from tests.helpers import PASSWORD

    await alice.rotate_identity(PASSWORD)
    changed = await bob.events.wait("key:changed", lambda e: e["user_id"] == alice.user_id)
    assert changed["key_version"] == 2
    assert await bob.safety_number(alice.user_id) != before
    history, _ = await bob.history(cid)
    assert history[0].text == "signed with key 1"
    await alice.rotate(cid)  # new wraps for her new key
    ack = await alice.send_text(cid, "signed with key 2")
    assert ack["ok"] is True
    message = await bob.events.wait("message:new", in_conversation(cid))
    assert (await bob.decrypt(message)).text == "signed with key 2"


async def test_logout_closes_the_socket_at_once(server: RunningServer) -> None:
    alice = await new_user(server.url, "alice")
    try:
        await alice.logout()
        revoked = await alice.events.wait("session:revoked", timeout=5)
        assert revoked == {"reason": "logout"}
        for _ in range(50):
            if not alice.connected:
                break
            await asyncio.sleep(0.05)
        assert not alice.connected
    finally:
        await alice.close()


async def test_disabling_an_account_from_the_cli_ends_its_sockets(server: RunningServer) -> None:
    alice = await new_user(server.url, "alice")
    try:
        from securechat.admin import set_disabled
        from securechat.settings import Settings

        ended = set_disabled(Settings.from_env(server.env), alice.user["username"], disabled=True)
        assert ended == 1
        revoked = await alice.events.wait("session:revoked", timeout=5)
        assert revoked["reason"] == "expired"
        with pytest.raises(ApiError) as error:
            await alice.conversations()
        assert error.value.status == 401
    finally:
        await alice.close()


# -- hostile input over the socket ----------------------------------------------------------


def valid_envelope(cid: str, sender: str) -> dict[str, Any]:
    return {
        "v": 1,
        "suite": "p256-v1",
        "conversation_id": cid,
        "epoch": 1,
        "message_id": str(uuid.uuid4()),
        "sender_id": sender,
        "sender_key_version": 1,
        "nonce": base64.b64encode(os.urandom(12)).decode(),
        "ciphertext": base64.b64encode(os.urandom(40)).decode(),
        "signature": base64.b64encode(os.urandom(64)).decode(),
    }


HOSTILE_ENVELOPES: list[tuple[str, Any, str]] = [
    ("v", 2, "validation_error"),
    ("v", "1", "validation_error"),
    ("suite", "rsa-oaep", "validation_error"),
    ("epoch", 0, "validation_error"),
    ("epoch", "1", "validation_error"),
    ("epoch", 1.5, "validation_error"),
    ("epoch", True, "validation_error"),
    ("message_id", "x", "validation_error"),
    ("conversation_id", "../../etc/passwd", "validation_error"),
    ("nonce", base64.b64encode(bytes(11)).decode(), "validation_error"),
    ("signature", "not base64!", "validation_error"),
    ("ciphertext", "", "validation_error"),
    ("ciphertext", base64.b64encode(bytes(15)).decode(), "validation_error"),
    ("ciphertext", None, "validation_error"),
    ("plaintext", "hello server", "validation_error"),
    ("sender_id", str(uuid.uuid4()), "validation_error"),
    ("sender_key_version", 7, "validation_error"),
    ("epoch", 9, "epoch_stale"),
    ("v", None, "validation_error"),
    ("suite", None, "validation_error"),
]


async def test_hostile_envelopes_get_error_acks(
    trio: tuple[ChatClient, ChatClient, ChatClient],
) -> None:
    alice, bob, _ = trio
    cid = (await alice.create_direct(bob.user_id))["id"]
    for field, value, code in HOSTILE_ENVELOPES:
        envelope = valid_envelope(cid, alice.user_id)
        if value is None and field in ("v", "suite"):
            del envelope[field]  # a missing member is as bad as a wrong one
        else:
            envelope[field] = value
        ack = await alice.emit("message:send", envelope)
        assert ack["ok"] is False, (field, value)
        assert ack["error"]["code"] == code, (field, value, ack)
    for payload in (None, "text", 42, [], [valid_envelope(cid, alice.user_id)]):
        ack = await alice.emit("message:send", payload)
        assert ack["error"]["code"] == "validation_error"
    history, _ = await bob.history(cid)
    assert history == []  # nothing hostile was stored


async def test_other_peoples_conversations_are_not_found(
    trio: tuple[ChatClient, ChatClient, ChatClient],
) -> None:
    alice, bob, carol = trio
    cid = (await alice.create_direct(bob.user_id))["id"]
    await alice.send_text(cid, "private")
    unknown = str(uuid.uuid4())
    for target in (cid, unknown):
        ack = await carol.emit("message:send", valid_envelope(target, carol.user_id))
        assert ack["error"]["code"] == "not_found"
        for event in ("typing:start", "message:read"):
            body = (
                {"conversation_id": target, "seq": 1}
                if event == "message:read"
                else {"conversation_id": target}
            )
            assert (await carol.emit(event, body))["error"]["code"] == "not_found"
        for path in ("", "/messages", "/keys"):
            with pytest.raises(ApiError) as error:
                await carol.http.call("GET", f"/conversations/{target}{path}")
            assert error.value.status == 404
    answer = await carol.http.call("POST", "/sync", {"since": {cid: 0}})
    assert answer == {"conversations": {}}


async def test_oversized_ciphertext_is_refused(
    trio: tuple[ChatClient, ChatClient, ChatClient],
) -> None:
    alice, bob, _ = trio
    cid = (await alice.create_direct(bob.user_id))["id"]
    envelope = await alice.encrypt_text(cid, "x" * 70_000)
    ack = await alice.send_envelope(envelope)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "payload_too_large"


# -- handshake ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def raw_socket() -> AsyncIterator[socketio.AsyncClient]:
    async with aiohttp.ClientSession() as session:
        sio = socketio.AsyncClient(reconnection=False, http_session=session)
        try:
            yield sio
        finally:
            await sio.disconnect()


async def test_foreign_origin_is_refused(server: RunningServer) -> None:
    alice = await new_user(server.url, "alice", connect=False)
    try:
        alice._origin = "http://evil.example"
        with pytest.raises(socketio.exceptions.ConnectionError):
            await alice.connect(transports=["websocket"])
        alice._origin = server.url
        await alice.connect(transports=["websocket"])
        assert alice.connected
    finally:
        await alice.close()


async def test_token_in_the_url_is_refused(server: RunningServer) -> None:
    alice = await new_user(server.url, "alice", connect=False)
    try:
        async with raw_socket() as sio:
            with pytest.raises(socketio.exceptions.ConnectionError):
                await sio.connect(
                    f"{server.url}?token={alice.token}", transports=["polling"], wait_timeout=5
                )
    finally:
        await alice.close()


@pytest.mark.parametrize(
    "auth", [None, {}, {"token": ""}, {"token": 5}, {"token": "forged"}, "token"]
)
async def test_bad_socket_auth_is_refused(server: RunningServer, auth: Any) -> None:
    async with raw_socket() as sio:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sio.connect(server.url, auth=auth, transports=["websocket"], wait_timeout=5)


async def test_a_token_in_a_url_never_reaches_the_log(server: RunningServer) -> None:
    alice = await new_user(server.url, "alice", connect=False)
    try:
        token = str(alice.token)
        url = f"{server.url}/api/v1/accounts/me?token={token}"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 400
        await asyncio.sleep(0.3)
        assert token not in server.log()
        assert "[query removed]" in server.log()
    finally:
        await alice.close()

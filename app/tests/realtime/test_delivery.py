"""Emits to rooms without a task per recipient (`delivery.py`): what python-socketio guaranteed.

End to end through a real server (SQLite and MariaDB), and in process against python-socketio's
own server and client for the cases a real client cannot set up (a socket past its ping
deadline)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio

from securechat.client.chat import ChatClient
from securechat.realtime.managers import LocalManager
from tests.conftest import TEST_KDF_ITERATIONS, RunningServer, free_port
from tests.helpers import PASSWORD
from tests.realtime.conftest import in_conversation, serving

pytestmark = pytest.mark.slow
MESSAGES = 12


async def login(url: str, client: ChatClient, transports: list[str] | None = None) -> ChatClient:
    """Another login (own session, own socket) of `client`'s account."""
    other = ChatClient(url, min_kdf_iterations=TEST_KDF_ITERATIONS)
    await other.login(client.user["username"], PASSWORD)
    await other.connect(transports=transports)
    return other


async def test_a_group_message_reaches_every_socket_once_in_order_except_the_senders(
    server: RunningServer, trio: tuple[ChatClient, ChatClient, ChatClient]
) -> None:
    alice, bob, carol = trio
    cid = (await alice.create_group("fan-out", [bob.user_id, carol.user_id]))["id"]
    alice_again = await login(server.url, alice)
    bob_polling = await login(server.url, bob, transports=["polling"])
    try:
        acks = [await alice.send_text(cid, f"message {n}") for n in range(MESSAGES)]
        seqs = [ack["seq"] for ack in acks]
        for client in (bob, carol, alice_again, bob_polling):
            received = [
                (await client.events.wait("message:new", in_conversation(cid)))["seq"]
                for _ in range(MESSAGES)
            ]
            assert received == seqs
        await asyncio.sleep(0.3)
        for client in (bob, carol, alice_again, bob_polling):
            assert client.events.pending("message:new") == []  # no copies
        # The sending socket is skipped; the same user's other socket is not.
        assert alice.events.pending("message:new") == []
    finally:
        await asyncio.gather(alice_again.close(), bob_polling.close())


async def test_a_recipient_gone_mid_conversation_does_not_stop_the_others(
    trio: tuple[ChatClient, ChatClient, ChatClient],
) -> None:
    alice, bob, carol = trio
    cid = (await alice.create_group("leavers", [bob.user_id, carol.user_id]))["id"]
    await bob.disconnect()
    ack = await alice.send_text(cid, "bob is away")
    assert ack["ok"] is True
    message = await carol.events.wait("message:new", in_conversation(cid))
    assert message["seq"] == ack["seq"]


# -- in process: python-socketio's server with our manager --------------------------------


class App:
    def __init__(self, sio: socketio.AsyncServer, url: str) -> None:
        self.sio = sio
        self.url = url
        self.sids: list[str] = []


@pytest.fixture
async def app() -> AsyncIterator[App]:
    sio = socketio.AsyncServer(client_manager=LocalManager(), async_mode="asgi")
    port = free_port()
    running = App(sio, f"http://127.0.0.1:{port}")

    @sio.event
    async def connect(sid: str, _environ: dict[str, Any], _auth: Any = None) -> None:
        running.sids.append(sid)
        await sio.enter_room(sid, "everyone")

    async with serving(sio, port):
        yield running


async def connected_client(url: str, inbox: list[Any]) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)

    @client.on("note")
    async def note(data: Any) -> None:
        inbox.append(data)

    await client.connect(url, transports=["websocket"], wait_timeout=5)
    return client


async def wait_for(condition: Any) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_socket_past_its_ping_deadline_is_closed_and_the_others_still_get_the_emit(
    app: App,
) -> None:
    inboxes: list[list[Any]] = [[], [], []]
    clients = [await connected_client(app.url, inbox) for inbox in inboxes]
    try:
        await wait_for(lambda: len(app.sids) == len(clients))
        stale_sid = app.sids[0]
        stale = app.sio.eio.sockets[app.sio.manager.eio_sid_from_sid(stale_sid, "/")]
        stale.last_ping = time.time() - 2 * app.sio.eio.ping_timeout  # its pong never came
        await app.sio.emit("note", {"n": 1}, to="everyone", skip_sid=app.sids[1])
        # python-socketio's own path closed it, as it would have: the disconnect handler ran.
        assert stale.closed
        assert not app.sio.manager.is_connected(stale_sid, "/")
        await wait_for(lambda: inboxes[2] == [{"n": 1}])
        assert inboxes[0] == []
        assert inboxes[1] == []  # skipped
    finally:
        for client in clients:
            await client.disconnect()


async def test_an_emit_with_a_callback_is_python_socketios(app: App) -> None:
    inbox: list[Any] = []
    client = socketio.AsyncClient(reconnection=False)

    @client.on("question")
    async def question(data: Any) -> str:
        inbox.append(data)
        return "answer"

    await client.connect(app.url, transports=["websocket"], wait_timeout=5)
    try:
        await wait_for(lambda: len(app.sids) == 1)
        answered = asyncio.get_running_loop().create_future()
        await app.sio.emit("question", "?", to=app.sids[0], callback=answered.set_result)
        assert await asyncio.wait_for(answered, 5) == "answer"
        assert inbox == ["?"]
    finally:
        await client.disconnect()

"""Scale-out: server processes sharing one database and the real Redis behave as one server.

Each test talks to two real uvicorn processes (node A and node B) on different ports; the
session sweeper is slowed down to a minute, so whatever reaches a socket on the other node at
once came through Redis, not through the sweeper's database poll.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from securechat.admin import create_admin
from securechat.client.chat import ChatClient
from securechat.client.files import parse_file_content
from securechat.settings import Settings
from tests.conftest import (
    REDIS_URL,
    TEST_KDF_ITERATIONS,
    RunningServer,
    free_port,
    server_environment,
    start_server,
    stop_server,
)
from tests.helpers import PASSWORD, new_user, unique_name
from tests.realtime.conftest import in_conversation

pytestmark = pytest.mark.slow
PRESENCE_TTL_SECONDS = 3


@dataclass(frozen=True)
class Cluster:
    a: RunningServer
    b: RunningServer
    env: dict[str, str]
    directory: Path

    def start_node(self, name: str) -> RunningServer:
        return start_server(self.env, self.directory / f"{name}.log")


@pytest.fixture(scope="module")
def cluster(
    migrated_url: str, redis_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("cluster")
    env = server_environment(
        migrated_url,
        SECURECHAT_UPLOAD_DIR=str(directory / "uploads"),  # shared, as the nodes' must be
        SECURECHAT_REDIS_URL=REDIS_URL,
        SECURECHAT_REDIS_PREFIX=redis_prefix,
        SECURECHAT_PRESENCE_TTL_SECONDS=str(PRESENCE_TTL_SECONDS),
        SECURECHAT_SESSION_SWEEP_SECONDS="60",
    )
    a = start_server(env, directory / "a.log")
    try:
        b = start_server(env, directory / "b.log")
    except BaseException:
        stop_server(a)
        raise
    try:
        yield Cluster(a, b, env, directory)
    finally:
        stop_server(a)
        stop_server(b)


async def login_at(url: str, client: ChatClient) -> ChatClient:
    """Another login (own session, own socket) of `client`'s account, at `url`."""
    other = ChatClient(url, min_kdf_iterations=TEST_KDF_ITERATIONS)
    await other.login(client.user["username"], PASSWORD)
    await other.connect()
    return other


async def wait_disconnected(client: ChatClient) -> None:
    for _ in range(100):
        if not client.connected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the socket is still connected")


def online_events(client: ChatClient, event: str, user_id: str) -> list[object]:
    return [e for e in client.events.pending(event) if e["user_id"] == user_id]


async def test_messages_typing_and_receipts_cross_nodes(cluster: Cluster) -> None:
    alice = await new_user(cluster.a.url, "alice")
    bob = await new_user(cluster.b.url, "bob")
    try:
        cid = (await alice.create_direct(bob.user_id))["id"]
        ack = await alice.send_text(cid, "from node A")
        assert ack["ok"] is True
        message = await bob.events.wait("message:new", in_conversation(cid))
        assert (await bob.decrypt(message)).text == "from node A"
        await bob.send_text(cid, "from node B")
        reply = await alice.events.wait("message:new", in_conversation(cid))
        assert (await alice.decrypt(reply)).text == "from node B"
        await alice.emit("typing:start", {"conversation_id": cid})
        typing = await bob.events.wait("typing:start", in_conversation(cid))
        assert typing["user_id"] == alice.user_id
        await bob.emit("message:read", {"conversation_id": cid, "seq": ack["seq"]})
        receipt = await alice.events.wait("message:read", in_conversation(cid))
        assert receipt["user_id"] == bob.user_id
        # The sender's other socket, on the other node, gets its own message too.
        alice_on_b = await login_at(cluster.b.url, alice)
        try:
            await alice.send_text(cid, "to both of my sockets")
            copy = await alice_on_b.events.wait("message:new", in_conversation(cid))
            assert (await alice_on_b.decrypt(copy)).text == "to both of my sockets"
        finally:
            await alice_on_b.close()
    finally:
        await asyncio.gather(alice.close(), bob.close())


async def test_a_burst_of_sends_crosses_nodes_completely(cluster: Cluster) -> None:
    """More concurrent emits than a Redis connection pool holds (100): none may be lost."""
    senders = await asyncio.gather(*(new_user(cluster.a.url, "s") for _ in range(3)))
    bob = await new_user(cluster.b.url, "bob")
    try:
        cids = [(await s.create_direct(bob.user_id))["id"] for s in senders]
        envelopes = [
            (sender, await sender.encrypt_text(cid, f"burst {n}"))
            for sender, cid in zip(senders, cids, strict=True)
            for n in range(100)
        ]
        acks = await asyncio.gather(*(s.send_envelope(e) for s, e in envelopes))
        assert all(ack["ok"] for ack in acks)
        for _ in range(len(envelopes)):
            await bob.events.wait("message:new", timeout=10)
        assert "Cannot publish" not in cluster.a.log()
    finally:
        await asyncio.gather(bob.close(), *(s.close() for s in senders))


async def test_a_file_uploaded_through_a_downloads_through_b(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Blobs are files in SECURECHAT_UPLOAD_DIR: the nodes must share that directory."""
    alice = await new_user(cluster.a.url, "alice")
    bob = await new_user(cluster.b.url, "bob")
    try:
        cid = (await alice.create_direct(bob.user_id))["id"]
        original = tmp_path / "notes.bin"
        original.write_bytes(os.urandom(100_000))
        assert (await alice.upload_file(cid, original))["ack"]["ok"] is True
        message = await bob.decrypt(await bob.events.wait("message:new", in_conversation(cid)))
        assert message.content is not None
        target = await bob.download_file(parse_file_content(message.content), tmp_path / "got")
        assert target.read_bytes() == original.read_bytes()
    finally:
        await asyncio.gather(alice.close(), bob.close())


async def test_presence_is_one_across_nodes(cluster: Cluster) -> None:
    alice = await new_user(cluster.a.url, "alice")
    alice_on_b = await login_at(cluster.b.url, alice)
    bob = await new_user(cluster.b.url, "bob", connect=False)
    bob_on_a: ChatClient | None = None
    try:
        await alice.create_direct(bob.user_id)
        await bob.connect()  # online through node B
        for watcher in (alice, alice_on_b):
            await watcher.events.wait("user:online", lambda e: e["user_id"] == bob.user_id)
        assert bob.user_id in (await alice.emit("presence:list", {}))["online"]
        assert alice.user_id in (await bob.emit("presence:list", {}))["online"]

        bob_on_a = await login_at(cluster.a.url, bob)  # a second socket, on node A
        await bob.disconnect()  # the first one closes: bob is still online, through A
        await asyncio.sleep(1)
        assert bob.user_id in (await alice_on_b.emit("presence:list", {}))["online"]
        await bob_on_a.disconnect()  # the last one: offline, announced once to each socket
        for watcher in (alice, alice_on_b):
            await watcher.events.wait("user:offline", lambda e: e["user_id"] == bob.user_id)
        assert bob.user_id not in (await alice.emit("presence:list", {}))["online"]
        await asyncio.sleep(1)
        for watcher in (alice, alice_on_b):
            assert online_events(watcher, "user:online", bob.user_id) == []
            assert online_events(watcher, "user:offline", bob.user_id) == []
    finally:
        clients = [alice, alice_on_b, bob] + ([bob_on_a] if bob_on_a else [])
        await asyncio.gather(*(client.close() for client in clients))


async def test_admin_disable_on_a_ends_the_sockets_on_b(cluster: Cluster) -> None:
    name = unique_name("admin")
    create_admin(Settings.from_env(cluster.env), name, "admin password for tests")
    admin = ChatClient(cluster.a.url, min_kdf_iterations=TEST_KDF_ITERATIONS)
    await admin.login(name, "admin password for tests")
    victim = await new_user(cluster.b.url, "victim")
    try:
        before = (await admin.http.call("GET", "/admin/stats"))["online_now"]
        assert before >= 1  # the victim, counted on node A although connected to B
        await admin.http.call("POST", f"/admin/users/{victim.user_id}/disable")
        # "disabled", not the sweeper's "expired": the revocation itself crossed the nodes.
        revoked = await victim.events.wait("session:revoked", timeout=5)
        assert revoked == {"reason": "disabled"}
        await wait_disconnected(victim)
        stats = await admin.http.call("GET", "/admin/stats")
        assert stats["online_now"] == before - 1
    finally:
        await asyncio.gather(admin.close(), victim.close())


async def test_logout_through_a_closes_the_socket_on_b(cluster: Cluster) -> None:
    carol = await new_user(cluster.b.url, "carol")
    try:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{cluster.a.url}/api/v1/auth/logout",
                headers={"Authorization": f"Bearer {carol.token}"},
            )
        assert response.status_code == 204
        assert await carol.events.wait("session:revoked", timeout=5) == {"reason": "logout"}
        await wait_disconnected(carol)
    finally:
        await carol.close()


async def test_a_crashed_nodes_users_go_offline_within_the_ttl(cluster: Cluster) -> None:
    node_c = cluster.start_node("c")
    alice = await new_user(cluster.a.url, "alice")
    dave = await new_user(node_c.url, "dave", connect=False)
    try:
        await alice.create_direct(dave.user_id)
        await dave.connect()
        await alice.events.wait("user:online", lambda e: e["user_id"] == dave.user_id)
        os.kill(node_c.process.pid, signal.SIGKILL)  # no disconnect handler runs
        node_c.process.wait()
        # The lease (3 s) runs out; A or B notices at its next beat (every second).
        offline = await alice.events.wait(
            "user:offline",
            lambda e: e["user_id"] == dave.user_id,
            timeout=PRESENCE_TTL_SECONDS + 5,
        )
        assert offline == {"user_id": dave.user_id}
        await asyncio.sleep(1.5)  # one more beat of every node: still announced only once
        assert online_events(alice, "user:offline", dave.user_id) == []
        assert dave.user_id not in (await alice.emit("presence:list", {}))["online"]
    finally:
        await asyncio.gather(alice.close(), dave.close())
        stop_server(node_c)


def test_a_node_refuses_to_start_without_its_redis(cluster: Cluster, tmp_path: Path) -> None:
    url = f"redis://:hunter2-not-shown@127.0.0.1:{free_port()}/0"  # nothing listens there
    env = {**cluster.env, "SECURECHAT_REDIS_URL": url}
    with pytest.raises(RuntimeError):
        start_server(env, tmp_path / "no-redis.log")
    log = (tmp_path / "no-redis.log").read_text()
    assert "cannot use Redis at redis://:***@127.0.0.1:" in log
    assert "hunter2" not in log

"""Presence: one contract for both implementations; the Redis one across several processes
(here: several `RedisPresence` objects, each one process's view, on the real Redis)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from securechat.realtime.presence import Changes, LocalPresence, Presence, PresenceUnavailable
from securechat.realtime.redis_presence import RedisPresence
from tests.conftest import REDIS_URL, free_port

NodeFactory = Callable[..., RedisPresence]


@pytest.fixture
async def nodes(redis_prefix: str) -> AsyncIterator[NodeFactory]:
    """Make presence objects that share one fresh prefix, as the processes of a cluster do."""
    prefix = f"{redis_prefix}:{secrets.token_hex(4)}"
    made: list[RedisPresence] = []

    def make(name: str | None = None, ttl: float = 15) -> RedisPresence:
        client = Redis.from_url(REDIS_URL, decode_responses=True)
        presence = RedisPresence(client, prefix, ttl, name or secrets.token_hex(4))
        made.append(presence)
        return presence

    yield make
    await asyncio.gather(*(presence.close() for presence in made))


@pytest.fixture(params=["local", "redis"])
async def presence(request: pytest.FixtureRequest, nodes: NodeFactory) -> Presence:
    chosen: Presence = LocalPresence() if request.param == "local" else nodes()
    await chosen.start()
    return chosen


async def test_first_socket_comes_online_and_last_goes_offline(presence: Presence) -> None:
    assert await presence.connected("u1", "s1") is True
    assert await presence.connected("u1", "s2") is False
    assert await presence.connected("u2", "s3") is True
    assert await presence.online(["u1", "u2", "u3", "u1"]) == ["u1", "u2"]
    assert await presence.count() == 2
    assert await presence.disconnected("u1", "s1") is False
    assert await presence.disconnected("u1", "s2") is True
    assert await presence.disconnected("u1", "s2") is False  # reported once, not twice
    assert await presence.disconnected("u9", "s9") is False  # never connected
    assert await presence.online(["u1", "u2"]) == ["u2"]
    assert await presence.online([]) == []
    assert await presence.count() == 1
    assert await presence.heartbeat() == Changes()


async def test_sockets_on_two_processes_make_one_user(nodes: NodeFactory) -> None:
    a, b = nodes("a"), nodes("b")
    await asyncio.gather(a.start(), b.start())
    assert await a.connected("alice", "s1") is True
    assert await b.connected("alice", "s2") is False  # already online through a
    assert await b.online(["alice"]) == ["alice"]
    assert await a.disconnected("alice", "s1") is False  # still on b
    assert await a.online(["alice"]) == ["alice"]
    assert await b.disconnected("alice", "s2") is True
    assert await a.online(["alice"]) == []
    assert await a.count() == 0


async def test_concurrent_connections_report_each_transition_exactly_once(
    nodes: NodeFactory,
) -> None:
    processes = [nodes(f"n{index}") for index in range(3)]
    await asyncio.gather(*(p.start() for p in processes))
    sockets = [(processes[i % 3], f"s{i}") for i in range(60)]
    came = await asyncio.gather(*(p.connected("bob", sid) for p, sid in sockets))
    assert came.count(True) == 1
    went = await asyncio.gather(*(p.disconnected("bob", sid) for p, sid in sockets))
    assert went.count(True) == 1


async def test_a_dead_process_expires_and_exactly_one_survivor_reports_it(
    nodes: NodeFactory,
) -> None:
    dead = nodes("dead", ttl=0.3)
    survivors = [nodes(f"alive{index}") for index in range(3)]
    await asyncio.gather(dead.start(), *(s.start() for s in survivors))
    await dead.connected("carol", "s1")
    await dead.connected("dave", "s2")
    await survivors[0].connected("dave", "s3")  # dave is also connected elsewhere
    await asyncio.sleep(0.5)  # the dead process does not beat: its lease runs out
    assert await survivors[1].online(["carol"]) == ["carol"]  # until someone notices
    found = await asyncio.gather(*(s.heartbeat() for s in survivors))
    assert sorted(user for changes in found for user in changes.offline) == ["carol"]
    assert all(changes.online == [] for changes in found)
    assert await survivors[0].online(["carol", "dave"]) == ["dave"]


async def test_a_process_that_was_given_up_comes_back_with_its_sockets(
    nodes: NodeFactory,
) -> None:
    stalled, other = nodes("stalled", ttl=0.3), nodes("other")
    await asyncio.gather(stalled.start(), other.start())
    await stalled.connected("erin", "s1")
    await asyncio.sleep(0.5)
    assert (await other.heartbeat()).offline == ["erin"]
    # The stalled process beats again: its sockets are registered again and announced once.
    assert await stalled.heartbeat() == Changes(online=["erin"])
    assert await stalled.heartbeat() == Changes()
    assert await other.online(["erin"]) == ["erin"]


async def test_a_beat_repairs_what_redis_lost_or_missed(nodes: NodeFactory) -> None:
    node = nodes("n")
    await node.start()
    await node.connected("frank", "s1")
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        # Redis restarted empty (keys gone): the next beat puts the process's sockets back.
        async for key in client.scan_iter(match=f"{node._prefix}:*"):
            await client.delete(key)
        assert await node.online(["frank"]) == []
        assert await node.heartbeat() == Changes(online=["frank"])
        # A socket Redis holds for this process but the process does not know: removed.
        await client.hset(f"{node._prefix}:presence:node:n", "ghost", "grace")
        await client.sadd(f"{node._prefix}:presence:user:grace", "n/ghost")
        await client.sadd(f"{node._prefix}:presence:online", "grace")
        assert await node.heartbeat() == Changes(offline=["grace"])
        assert await node.online(["frank", "grace"]) == ["frank"]
    finally:
        await client.aclose()


async def test_a_process_that_stops_cleanly_leaves_nothing_behind(nodes: NodeFactory) -> None:
    node = nodes("n")
    await node.start()
    await node.connected("gina", "s1")
    await node.disconnected("gina", "s1")
    prefix = node._prefix
    await node.close()
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        assert [key async for key in client.scan_iter(match=f"{prefix}:*")] == []
    finally:
        await client.aclose()


async def test_an_unreachable_redis_is_one_kind_of_error_and_the_socket_is_kept() -> None:
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    node = RedisPresence(client, "unreachable", 15, "n")
    with pytest.raises(PresenceUnavailable):
        await node.connected("hank", "s1")
    for call in (node.heartbeat(), node.online(["hank"]), node.count()):
        with pytest.raises(PresenceUnavailable):
            await call
    assert node._local == {"s1": "hank"}  # registered by the first beat that reaches Redis
    await node.close()  # gives up quietly: the lease runs out by itself

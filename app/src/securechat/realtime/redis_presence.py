"""Presence shared by every server process through Redis.

Keys, all under `<prefix>:presence:`:

- `nodes`: sorted set, process id -> the Redis time until which the process counts as alive;
- `node:<process>`: hash, socket id -> user id, the sockets of one process;
- `user:<user>`: set of `<process>/<socket id>`, the sockets of one user anywhere;
- `online`: set of the user ids with at least one socket.

Every change is one Lua script, so it is atomic across processes: the script that adds a user's
first socket, or removes the last, is the one (and only one) that reports the transition.
Each process beats every third of the TTL. A beat renews the process's lease, makes Redis agree
with the process's own list of sockets (which repairs what a Redis outage or a missed update
left behind), and expires the processes whose lease ran out: their sockets are removed, and the
users left without a socket are reported offline by the one process whose script removed them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from securechat.realtime.presence import Changes, PresenceUnavailable

log = logging.getLogger(__name__)

# Shared by the scripts: add or remove one socket, recording transitions in `came` and `went`.
_LIB = """
local base = ARGV[1] .. ':presence:'
local online = base .. 'online'
local came, went = {}, {}
local function add(node, sid, uid)
  redis.call('HSET', base .. 'node:' .. node, sid, uid)
  redis.call('SADD', base .. 'user:' .. uid, node .. '/' .. sid)
  if redis.call('SADD', online, uid) == 1 then table.insert(came, uid) end
end
local function remove(node, sid, uid)
  local user = base .. 'user:' .. uid
  redis.call('HDEL', base .. 'node:' .. node, sid)
  if redis.call('SREM', user, node .. '/' .. sid) == 1 and redis.call('SCARD', user) == 0
      and redis.call('SREM', online, uid) == 1 then
    table.insert(went, uid)
  end
end
"""

# ARGV: prefix, node, sid, uid
_CONNECT = _LIB + "add(ARGV[2], ARGV[3], ARGV[4]) return #came"
_DISCONNECT = _LIB + "remove(ARGV[2], ARGV[3], ARGV[4]) return #went"

# ARGV: prefix, node, ttl, then sid, uid pairs: every socket of this node.
_HEARTBEAT = (
    _LIB
    + """
local node, ttl = ARGV[2], tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local nodes = base .. 'nodes'
redis.call('ZADD', nodes, now + ttl, node)
local mine = {}
for i = 4, #ARGV, 2 do mine[ARGV[i]] = ARGV[i + 1] end
local stored = redis.call('HGETALL', base .. 'node:' .. node)
local known = {}
for i = 1, #stored, 2 do
  local sid, uid = stored[i], stored[i + 1]
  if mine[sid] == uid then known[sid] = true else remove(node, sid, uid) end
end
for sid, uid in pairs(mine) do
  if not known[sid] then add(node, sid, uid) end
end
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', nodes, '-inf', now)) do
  if redis.call('ZREM', nodes, dead) == 1 then
    local sockets = redis.call('HGETALL', base .. 'node:' .. dead)
    for i = 1, #sockets, 2 do remove(dead, sockets[i], sockets[i + 1]) end
    redis.call('DEL', base .. 'node:' .. dead)
  end
end
return {came, went}
"""
)


# ARGV: prefix, node. A process that stops with no socket left gives up its lease; one with
# sockets left keeps it, and they expire with it.
_LEAVE = (
    _LIB
    + """
if redis.call('HLEN', base .. 'node:' .. ARGV[2]) == 0 then
  redis.call('ZREM', base .. 'nodes', ARGV[2])
end
"""
)


def node_id() -> str:
    """A name for this process in Redis: readable in `redis-cli`, unique across restarts."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


class RedisPresence:
    def __init__(self, redis: Redis, prefix: str, ttl_seconds: float, node: str) -> None:
        self.heartbeat_seconds: float | None = ttl_seconds / 3
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_seconds
        self.node = node
        # The truth about this process's sockets; Redis is made to agree with it at every beat.
        self._local: dict[str, str] = {}
        # One change at a time, so that a beat never sees a socket in one place and not the other.
        self._lock = asyncio.Lock()
        self._connect = redis.register_script(_CONNECT)
        self._disconnect = redis.register_script(_DISCONNECT)
        self._heartbeat = redis.register_script(_HEARTBEAT)
        self._leave = redis.register_script(_LEAVE)
        self._online_key = f"{prefix}:presence:online"

    async def start(self) -> None:
        await self.heartbeat()  # fails here, at start, if Redis cannot be reached

    async def close(self) -> None:
        try:
            async with self._lock:
                await self._leave(args=[self._prefix, self.node])
        except (RedisError, OSError) as error:
            log.warning("presence: the lease was not given up (%s); it runs out by itself", error)
        finally:
            await self._redis.aclose()

    async def connected(self, user_id: str, sid: str) -> bool:
        async with self._lock, _unavailable_on_error():
            self._local[sid] = user_id  # first: the next beat registers it if Redis fails now
            return bool(await self._connect(args=[self._prefix, self.node, sid, user_id]))

    async def disconnected(self, user_id: str, sid: str) -> bool:
        async with self._lock, _unavailable_on_error():
            if self._local.pop(sid, None) is None:
                return False
            return bool(await self._disconnect(args=[self._prefix, self.node, sid, user_id]))

    async def heartbeat(self) -> Changes:
        async with self._lock, _unavailable_on_error():
            sockets = [item for pair in self._local.items() for item in pair]
            came, went = await self._heartbeat(
                args=[self._prefix, self.node, str(self._ttl), *sockets]
            )
        return Changes(online=_strings(came), offline=_strings(went))

    async def online(self, user_ids: Iterable[str]) -> list[str]:
        wanted = sorted(set(user_ids))
        if not wanted:
            return []
        async with _unavailable_on_error():
            found = await self._redis.smismember(self._online_key, wanted)
        return [user_id for user_id, here in zip(wanted, found, strict=True) if here]

    async def count(self) -> int:
        async with _unavailable_on_error():
            return await self._redis.scard(self._online_key)


@asynccontextmanager
async def _unavailable_on_error() -> AsyncIterator[None]:
    try:
        yield
    except (RedisError, OSError) as error:
        raise PresenceUnavailable(f"Redis: {error}") from error


def _strings(values: Any) -> list[str]:
    return [value.decode() if isinstance(value, bytes) else str(value) for value in values]

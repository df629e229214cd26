"""Who is online: a user is online while at least one of their sockets is connected.

One interface, two implementations, chosen in the composition root: `LocalPresence` counts the
sockets of this process (one server process), `RedisPresence` (`redis_presence.py`) the sockets
of every process that shares a Redis server. Each method that reports a transition reports it
to exactly one caller, so `user:online` and `user:offline` are announced once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol


class PresenceUnavailable(RuntimeError):
    """The store behind presence (Redis) cannot be reached; the next heartbeat repairs it."""


@dataclass(frozen=True)
class Changes:
    """Users who came online and users who went offline, found by a heartbeat."""

    online: list[str] = field(default_factory=list)
    offline: list[str] = field(default_factory=list)


class Presence(Protocol):
    # How often `heartbeat` must run; None when there is nothing to do between events.
    heartbeat_seconds: float | None

    async def start(self) -> None:
        """Get ready before the first socket connects (may check the backing store)."""

    async def close(self) -> None:
        """Release what `start` acquired."""

    async def connected(self, user_id: str, sid: str) -> bool:
        """Count a socket; True when the user came online with it."""

    async def disconnected(self, user_id: str, sid: str) -> bool:
        """Uncount a socket; True when it was the user's last one anywhere."""

    async def heartbeat(self) -> Changes:
        """Keep this process's sockets alive and expire those of processes that are gone."""

    async def online(self, user_ids: Iterable[str]) -> list[str]:
        """Which of these users are online, sorted."""

    async def count(self) -> int:
        """How many users are online."""


class LocalPresence:
    """The sockets of this process only: for a single server process."""

    heartbeat_seconds: float | None = None

    def __init__(self) -> None:
        self._sockets: dict[str, set[str]] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def connected(self, user_id: str, sid: str) -> bool:
        sockets = self._sockets.setdefault(user_id, set())
        first = not sockets
        sockets.add(sid)
        return first

    async def disconnected(self, user_id: str, sid: str) -> bool:
        sockets = self._sockets.get(user_id)
        if sockets is None or sid not in sockets:
            return False
        sockets.discard(sid)
        if sockets:
            return False
        del self._sockets[user_id]
        return True

    async def heartbeat(self) -> Changes:
        return Changes()

    async def online(self, user_ids: Iterable[str]) -> list[str]:
        return sorted(user_id for user_id in set(user_ids) if user_id in self._sockets)

    async def count(self) -> int:
        return len(self._sockets)

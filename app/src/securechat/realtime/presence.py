"""Who is online in this process: a user is online while at least one socket is connected."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


class Presence:
    def __init__(self) -> None:
        self._sockets: Counter[str] = Counter()

    def connected(self, user_id: str) -> bool:
        """Count a socket; True when it is the user's first (the user came online)."""
        self._sockets[user_id] += 1
        return self._sockets[user_id] == 1

    def disconnected(self, user_id: str) -> bool:
        """Uncount a socket; True when it was the user's last (the user went offline)."""
        self._sockets[user_id] -= 1
        if self._sockets[user_id] <= 0:
            del self._sockets[user_id]
            return True
        return False

    def count(self) -> int:
        return len(self._sockets)

    def online(self, user_ids: Iterable[str]) -> list[str]:
        return sorted(user_id for user_id in set(user_ids) if user_id in self._sockets)

"""In-process sliding-window limits for the authentication endpoints."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

# Above this many tracked keys, expired ones are swept, so memory stays bounded under a flood.
SWEEP_THRESHOLD = 10_000


class SlidingWindowLimiter:
    """At most `limit` events per `window` seconds per key."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}

    def retry_after(self, key: str) -> int | None:
        """Seconds to wait if `key` is over its limit now, else None. Does not count."""
        events = self._prune(key)
        if events is None or len(events) < self.limit:
            return None
        return max(1, math.ceil(events[0] + self.window - self._clock()))

    def hit(self, key: str) -> int | None:
        """Count one event for `key`; return seconds to wait if that was over the limit."""
        wait = self.retry_after(key)
        if wait is not None:
            return wait
        if len(self._events) > SWEEP_THRESHOLD:
            self._sweep()
        self._events.setdefault(key, deque()).append(self._clock())
        return None

    def reset(self, key: str) -> None:
        self._events.pop(key, None)

    def _prune(self, key: str) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        horizon = self._clock() - self.window
        while events and events[0] <= horizon:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        return events

    def _sweep(self) -> None:
        for key in list(self._events):
            self._prune(key)

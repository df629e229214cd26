"""An inbox of server events that tests and tools can wait on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

Predicate = Callable[[Any], bool]


class EventInbox:
    def __init__(self) -> None:
        self._events: list[tuple[str, Any]] = []
        self._changed = asyncio.Condition()

    async def put(self, name: str, data: Any) -> None:
        async with self._changed:
            self._events.append((name, data))
            self._changed.notify_all()

    async def wait(
        self, name: str, predicate: Predicate | None = None, timeout: float = 10.0
    ) -> Any:
        """Remove and return the first `name` event matching `predicate`, waiting for it."""

        def take() -> tuple[bool, Any]:
            for index, (event, data) in enumerate(self._events):
                if event == name and (predicate is None or predicate(data)):
                    del self._events[index]
                    return True, data
            return False, None

        async with asyncio.timeout(timeout), self._changed:
            while True:
                found, data = take()
                if found:
                    return data
                await self._changed.wait()

    def pending(self, name: str) -> list[Any]:
        return [data for event, data in self._events if event == name]

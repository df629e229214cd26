"""Group commit: concurrent writes queue up and commit together, one transaction per batch.

The writer knows nothing about what it writes: it is given a function that applies a batch
inside an open session and returns one result (or exception) per item. Callers await their
own item's result, which is only set after the commit succeeded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")
ApplyBatch = Callable[[Session, Sequence[Item]], list[Result | Exception]]

# A batch that lost a race (unique key, deadlock) is re-run: the re-read sees the winner.
RETRIES = 3


class WriterClosedError(RuntimeError):
    pass


class BatchingWriter(Generic[Item, Result]):
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        apply_batch: ApplyBatch[Item, Result],
        *,
        max_batch: int = 256,
    ) -> None:
        self._session_factory = session_factory
        self._apply_batch = apply_batch
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[Result]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batching-writer")

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.put(None)
        await self._task
        self._task = None

    async def submit(self, item: Item) -> Result:
        if self._task is None:
            raise WriterClosedError("the writer is not running")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                entry = self._queue.get_nowait()
                if entry is None:
                    stopping = True
                    break
                batch.append(entry)
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = await asyncio.to_thread(self._commit_with_retries, items)
        except Exception as error:
            log.exception("batch of %d writes failed", len(items))
            results = [error] * len(items)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # the caller went away (cancelled)
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _commit_with_retries(self, items: list[Item]) -> list[Result | Exception]:
        for attempt in range(1, RETRIES + 1):
            with self._session_factory() as session:
                try:
                    results = self._apply_batch(session, items)
                    session.commit()
                    return results
                except (IntegrityError, DBAPIError) as error:
                    session.rollback()
                    if attempt == RETRIES or not _retryable(error):
                        raise
                    log.warning("batch commit lost a race (attempt %d), retrying", attempt)
        raise AssertionError("unreachable")


def _retryable(error: DBAPIError) -> bool:
    if isinstance(error, IntegrityError):
        return True
    # MySQL/MariaDB: 1213 deadlock, 1205 lock wait timeout; SQLite: database is locked.
    code = getattr(error.orig, "args", (None,))[0]
    return code in (1213, 1205) or "database is locked" in str(error.orig)

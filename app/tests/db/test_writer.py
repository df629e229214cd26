"""The batching writer: group commit, results per item, failures reach every waiter."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from securechat.db.engine import make_engine, make_session_factory
from securechat.db.writer import BatchingWriter, WriterClosedError


@pytest.fixture
def session_factory(migrated_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(migrated_url)
    yield make_session_factory(engine)
    engine.dispose()


async def test_concurrent_submits_share_transactions(session_factory) -> None:  # type: ignore[no-untyped-def]
    batches: list[list[int]] = []
    gate = threading.Event()

    def apply(session: Session, items: Sequence[int]) -> list[int | Exception]:
        session.execute(text("SELECT 1"))
        if not batches:
            gate.wait(5)  # hold the first batch so that the others queue up behind it
        batches.append(list(items))
        return [item * 2 for item in items]

    writer: BatchingWriter[int, int] = BatchingWriter(session_factory, apply, max_batch=64)
    writer.start()
    first = asyncio.create_task(writer.submit(0))
    await asyncio.sleep(0.05)
    rest = [asyncio.create_task(writer.submit(i)) for i in range(1, 101)]
    await asyncio.sleep(0.05)
    gate.set()
    results = await asyncio.gather(first, *rest)
    await writer.stop()
    assert results == [i * 2 for i in range(101)]
    assert batches[0] == [0]
    assert len(batches) <= 3  # 100 queued writes committed in at most two more transactions
    assert max(len(b) for b in batches) == 64


async def test_per_item_errors_and_batch_failures(session_factory) -> None:  # type: ignore[no-untyped-def]
    def apply(session: Session, items: Sequence[int]) -> list[int | Exception]:
        if 13 in items:
            raise RuntimeError("database went away")
        return [ValueError("odd") if item % 2 else item for item in items]

    writer: BatchingWriter[int, int] = BatchingWriter(session_factory, apply)
    writer.start()
    assert await writer.submit(2) == 2
    with pytest.raises(ValueError, match="odd"):
        await writer.submit(3)
    with pytest.raises(RuntimeError, match="went away"):
        await writer.submit(13)
    assert await writer.submit(4) == 4  # the writer survives a failed batch
    await writer.stop()
    with pytest.raises(WriterClosedError):
        await writer.submit(5)


async def test_stop_commits_what_is_queued(session_factory) -> None:  # type: ignore[no-untyped-def]
    committed: list[int] = []

    def apply(session: Session, items: Sequence[int]) -> list[int | Exception]:
        committed.extend(items)
        return list(items)

    writer: BatchingWriter[int, int] = BatchingWriter(session_factory, apply)
    writer.start()
    pending = [asyncio.create_task(writer.submit(i)) for i in range(10)]
    await asyncio.sleep(0)
    await writer.stop()
    assert await asyncio.gather(*pending) == list(range(10))
    assert committed == list(range(10))

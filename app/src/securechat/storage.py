"""Ciphertext blobs on disk: streamed in under a random name, never held whole in memory."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

FLUSH_BYTES = 1 << 20  # write to disk in 1 MiB steps, off the event loop


class BlobTooLargeError(Exception):
    pass


@dataclass(frozen=True)
class Blob:
    name: str
    size: int
    sha256: str


class BlobStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def ensure(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, name: str) -> Path:
        # Names are ours (hex), never a client's: no traversal is possible.
        if not name.isalnum():
            raise ValueError("invalid blob name")
        return self.directory / name

    async def write(self, chunks: AsyncIterator[bytes], max_bytes: int) -> Blob:
        """Stream `chunks` to a new blob; raise BlobTooLargeError past `max_bytes`."""
        name = secrets.token_hex(16)
        final = self.path(name)
        partial = self.directory / f".partial-{name}"
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        handle = await asyncio.to_thread(partial.open, "xb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise BlobTooLargeError
                digest.update(chunk)
                buffer += chunk
                if len(buffer) >= FLUSH_BYTES:
                    await asyncio.to_thread(handle.write, bytes(buffer))
                    buffer.clear()
            await asyncio.to_thread(_finish, handle, bytes(buffer))
            await asyncio.to_thread(os.replace, partial, final)
        except BaseException:
            handle.close()
            partial.unlink(missing_ok=True)
            raise
        return Blob(name, size, digest.hexdigest())

    def sweep(self, known: set[str], older_than_seconds: float) -> list[str]:
        """Remove partial uploads and blobs without a database row, once old enough to be
        sure no upload in progress owns them. Returns the names removed."""
        if not self.directory.is_dir():
            return []
        horizon = time.time() - older_than_seconds
        removed = []
        for entry in self.directory.iterdir():
            name = entry.name
            orphan = name.isalnum() and name not in known
            if (orphan or name.startswith(".partial-")) and entry.stat().st_mtime < horizon:
                entry.unlink(missing_ok=True)
                removed.append(name)
        return removed

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)


def _finish(handle: BinaryIO, rest: bytes) -> None:
    handle.write(rest)
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()

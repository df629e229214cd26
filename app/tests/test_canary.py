"""Canary: plaintext never reaches the server, its database or its log, in any encoding."""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.conftest import RunningServer
from tests.helpers import new_user

MESSAGES = 1000
pytestmark = pytest.mark.slow


def encodings(marker: str) -> Iterator[bytes]:
    raw = marker.encode()
    yield raw
    yield raw.hex().encode()
    yield raw.hex().upper().encode()
    yield base64.b64encode(raw).rstrip(b"=")
    yield base64.urlsafe_b64encode(raw).rstrip(b"=")
    yield marker.encode("utf-16-le")
    yield urllib.parse.quote(marker).encode()
    yield binascii.b2a_uu(raw).strip()


def table_dump(database_url: str) -> bytes:
    """Every row of every table, as bytes, with binary columns both raw and as text."""
    engine = create_engine(database_url)
    chunks: list[bytes] = []
    with engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f"SELECT * FROM {table}")):
                for value in row:
                    chunks.append(value if isinstance(value, bytes) else str(value).encode())
                    if isinstance(value, bytes):
                        chunks.append(base64.b64encode(value))
    engine.dispose()
    return b"\n".join(chunks)


async def test_no_marker_reaches_the_database_or_the_log(server: RunningServer) -> None:
    alice = await new_user(server.url, "alice")
    bob = await new_user(server.url, "bob")
    tokens = [str(alice.token), str(bob.token)]
    markers = [f"CANARY-{secrets.token_hex(8)}" for _ in range(MESSAGES)]
    try:
        cid = (await alice.create_direct(bob.user_id))["id"]
        # Encrypt first (the client's work), then send them all concurrently.
        envelopes = [await alice.encrypt_text(cid, f"the marker is {m}!") for m in markers]
        acks = await asyncio.gather(*(alice.send_envelope(e) for e in envelopes))
        assert all(ack["ok"] for ack in acks)
        everything = await bob.catch_up({cid: 0})
        assert sorted(m.text for m in everything[cid]) == sorted(
            f"the marker is {m}!" for m in markers
        )
    finally:
        await asyncio.gather(alice.close(), bob.close())

    haystacks = {
        "database": table_dump(server.env["SECURECHAT_DATABASE_URL"]),
        "log": server.log().encode(),
    }
    if server.env["SECURECHAT_DATABASE_URL"].startswith("sqlite:///"):
        path = Path(server.env["SECURECHAT_DATABASE_URL"].removeprefix("sqlite:///"))
        files = (path, path.with_name(path.name + "-wal"))
        haystacks["database files"] = b"".join(f.read_bytes() for f in files if f.exists())
    assert len(haystacks["database"]) > MESSAGES * 40  # the ciphertext is there
    for name, haystack in haystacks.items():
        for marker in markers:
            for needle in encodings(marker):
                assert needle not in haystack, f"{marker} found in the {name}"
        assert b"the marker is" not in haystack
        for token in tokens:
            assert token.encode() not in haystack, f"a session token is in the {name}"

"""Small helpers shared by tests: users through the reference client."""

from __future__ import annotations

import secrets

from securechat.client.chat import ChatClient
from tests.conftest import TEST_KDF_ITERATIONS

PASSWORD = "correct horse battery staple"


def unique_name(prefix: str = "u") -> str:
    return f"{prefix}{secrets.token_hex(5)}"


async def new_user(url: str, prefix: str = "u", *, connect: bool = True) -> ChatClient:
    client = ChatClient(url, min_kdf_iterations=TEST_KDF_ITERATIONS)
    name = unique_name(prefix)
    await client.register(name, PASSWORD)
    await client.login(name, PASSWORD)
    if connect:
        await client.connect()
    return client

"""argon2id over the client's auth_key; the password itself never reaches the server."""

from __future__ import annotations

import hmac
from hashlib import sha256

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from securechat.settings import Argon2Params


class AuthKeyHasher:
    def __init__(self, params: Argon2Params) -> None:
        self._hasher = PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
        )
        # Verified against for unknown usernames, so that they cost the same time.
        self._dummy_hash = self._hasher.hash(b"\x00" * 32)

    def hash(self, auth_key: bytes) -> str:
        return self._hasher.hash(auth_key)

    def verify(self, stored_hash: str | None, auth_key: bytes) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy_hash, auth_key) and (
                stored_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False


def fake_salt(secret_key: str, username: str, length: int) -> bytes:
    """Deterministic salt for unknown usernames, so prelogin does not reveal who exists."""
    mac = hmac.new(secret_key.encode(), b"prelogin-salt|" + username.encode(), sha256)
    return mac.digest()[:length]

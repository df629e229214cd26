"""Building a registration: keys and password derivation done where the password is."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

from securechat.client.crypto import DerivedKeys, IdentityKeys, derive_keys, seal_key_blob
from securechat.client.encoding import b64encode
from securechat.protocol import KDF_ITERATIONS, KDF_NAME, KDF_SALT_BYTES


@dataclass(frozen=True)
class Registration:
    user_id: str
    request: dict[str, Any]  # the body of POST /api/v1/auth/register
    identity: IdentityKeys
    derived: DerivedKeys


def build_registration(
    username: str,
    password: str,
    *,
    iterations: int = KDF_ITERATIONS,
    min_iterations: int = KDF_ITERATIONS,
) -> Registration:
    user_id = str(uuid.uuid4())
    salt = os.urandom(KDF_SALT_BYTES)
    derived = derive_keys(password, salt, iterations, min_iterations=min_iterations)
    identity = IdentityKeys.generate()
    request = {
        "user_id": user_id,
        "username": username,
        "auth_key": b64encode(derived.auth_key),
        "kdf": {"name": KDF_NAME, "iterations": iterations, "salt": b64encode(salt)},
        "keys": identity.public(user_id, 1).to_json(),
        "key_blob": seal_key_blob(derived.wrap_key, user_id, 1, identity),
    }
    return Registration(user_id, request, identity, derived)

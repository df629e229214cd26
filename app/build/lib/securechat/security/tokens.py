"""Session tokens: random bearer strings, stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32  # 43 characters of base64url


def new_token() -> tuple[str, str]:
    """Return (token for the client, session id to store)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, session_id_for(token)


def session_id_for(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

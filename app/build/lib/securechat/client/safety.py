"""Safety numbers (docs/protocol.md section 9): libsignal's numeric fingerprint.

Two users who read each other the same 60 digits know that the server gave each of them the
other's real public keys, not keys of a man in the middle.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from securechat.protocol import SAFETY_ITERATIONS, SAFETY_VERSION

if TYPE_CHECKING:
    from securechat.client.crypto import PublicKeys

# libsignal encodes the fingerprint version as a 2-byte big-endian short.
_VERSION_BYTES = 2
# Each party contributes 6 chunks of 5 hash bytes, each shown as 5 decimal digits.
_CHUNKS = 6
_CHUNK_BYTES = 5
_CHUNK_MODULUS = 100_000
_CHUNK_DIGITS = 5
PARTY_DIGITS = _CHUNKS * _CHUNK_DIGITS  # 30
SAFETY_DIGITS = 2 * PARTY_DIGITS  # 60


def fingerprint_digits(identity: bytes, stable_id: str, iterations: int = SAFETY_ITERATIONS) -> str:
    """One party's 30 digits, exactly libsignal's ``NumericFingerprintGenerator`` (version 0).

    ``hash = version || identity || stable_id``, then ``iterations`` rounds of
    ``hash = SHA-512(hash || identity)``. The iterations make it expensive for an attacker
    to search for a key of their own whose digits match the victim's.
    """
    if iterations < 1:
        raise ValueError("iterations must be positive")
    digest = SAFETY_VERSION.to_bytes(_VERSION_BYTES, "big") + identity + stable_id.encode("utf-8")
    for _ in range(iterations):
        digest = hashlib.sha512(digest + identity).digest()
    chunks = (
        int.from_bytes(digest[i * _CHUNK_BYTES : (i + 1) * _CHUNK_BYTES], "big") % _CHUNK_MODULUS
        for i in range(_CHUNKS)
    )
    return "".join(f"{chunk:0{_CHUNK_DIGITS}d}" for chunk in chunks)


def combine_fingerprints(first: str, second: str) -> str:
    """Concatenate two parties' digits, the smaller first, so both sides see the same."""
    return first + second if first <= second else second + first


def safety_number(a: PublicKeys, b: PublicKeys) -> str:
    """The 60-digit safety number of two users' current keys (order of a, b is irrelevant)."""
    return combine_fingerprints(
        fingerprint_digits(a.identity_bytes, a.user_id),
        fingerprint_digits(b.identity_bytes, b.user_id),
    )


def format_safety_number(digits: str) -> str:
    """Show 60 digits as 12 groups of 5 separated by spaces, for reading aloud."""
    if len(digits) != SAFETY_DIGITS or not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"a safety number is {SAFETY_DIGITS} digits")
    return " ".join(digits[i : i + _CHUNK_DIGITS] for i in range(0, SAFETY_DIGITS, _CHUNK_DIGITS))

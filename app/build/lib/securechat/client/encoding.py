"""Wire encodings of docs/protocol.md section 2: strict base64 and length-prefixed bytes."""

from __future__ import annotations

import base64
import binascii

# LP() prefixes every part with a 4-byte unsigned length.
_LP_LENGTH_BYTES = 4
_LP_MAX_PART = 2 ** (8 * _LP_LENGTH_BYTES) - 1


def b64encode(data: bytes) -> str:
    """Encode bytes as standard base64 (RFC 4648 section 4) with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, *, field: str = "value", length: int | None = None) -> bytes:
    """Decode strict standard base64 with padding, optionally of an exact decoded length.

    Raises ValueError naming ``field`` for anything else: a non-str, whitespace, the URL-safe
    alphabet, missing padding, non-canonical trailing bits or the wrong decoded length.
    """
    if not isinstance(text, str):
        raise ValueError(f"{field}: expected a base64 string")
    try:
        # validate=True refuses characters outside the standard alphabet (whitespace included)
        # instead of silently dropping them, and refuses missing or misplaced padding.
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{field}: invalid base64") from None
    # A canonical encoding round-trips; this refuses non-zero trailing bits ("AB==") so that
    # every value has exactly one accepted spelling.
    if b64encode(data) != text:
        raise ValueError(f"{field}: non-canonical base64")
    if length is not None and len(data) != length:
        raise ValueError(f"{field}: expected {length} bytes, got {len(data)}")
    return data


def _lp_part(part: bytes | str | int) -> bytes:
    """Return the raw bytes of one LP part (before the length prefix)."""
    # bool is a subclass of int; "True" in associated data is always a bug.
    if isinstance(part, bool):
        raise TypeError("LP part must not be a bool")
    if isinstance(part, int):
        if part < 0:
            raise ValueError("LP integer must not be negative")
        return str(part).encode("ascii")
    if isinstance(part, str):
        return part.encode("utf-8")
    if isinstance(part, bytes | bytearray):
        return bytes(part)
    raise TypeError(f"LP part must be bytes, str or int, not {type(part).__name__}")


def lp(*parts: bytes | str | int) -> bytes:
    """Concatenate the LP encodings of ``parts``: 4-byte big-endian length, then the bytes.

    Strings are UTF-8, integers their decimal ASCII form (``LP("7")``).
    """
    out = bytearray()
    for part in parts:
        raw = _lp_part(part)
        if len(raw) > _LP_MAX_PART:
            raise ValueError("LP part too long")
        out += len(raw).to_bytes(_LP_LENGTH_BYTES, "big")
        out += raw
    return bytes(out)

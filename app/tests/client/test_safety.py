"""Safety numbers (docs/protocol.md section 9) against libsignal's published vector."""

from __future__ import annotations

import uuid

import pytest

from securechat.client.crypto import IdentityKeys, PublicKeys
from securechat.client.safety import (
    combine_fingerprints,
    fingerprint_digits,
    format_safety_number,
    safety_number,
)

# libsignal-protocol-c, tests/test_fingerprint.c (test_vectors_v0/v1): Curve25519 identity
# keys with their 0x05 type byte, phone numbers as stable ids, 5200 iterations.
ALICE_IDENTITY = bytes.fromhex("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868")
BOB_IDENTITY = bytes.fromhex("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
ALICE_STABLE_ID = "+14152222222"
BOB_STABLE_ID = "+14153333333"
DISPLAYABLE_FINGERPRINT = "300354477692869396892869876765458257569162576843440918079131"


def test_reproduces_libsignal_vector() -> None:
    alice = fingerprint_digits(ALICE_IDENTITY, ALICE_STABLE_ID)
    bob = fingerprint_digits(BOB_IDENTITY, BOB_STABLE_ID)
    assert len(alice) == len(bob) == 30
    assert combine_fingerprints(alice, bob) == DISPLAYABLE_FINGERPRINT
    assert combine_fingerprints(bob, alice) == DISPLAYABLE_FINGERPRINT


def test_iterations_matter() -> None:
    assert fingerprint_digits(ALICE_IDENTITY, ALICE_STABLE_ID, 1) != fingerprint_digits(
        ALICE_IDENTITY, ALICE_STABLE_ID
    )
    with pytest.raises(ValueError, match="iterations"):
        fingerprint_digits(ALICE_IDENTITY, ALICE_STABLE_ID, 0)


def _user() -> PublicKeys:
    return IdentityKeys.generate().public(str(uuid.uuid4()), 1)


def test_safety_number_is_symmetric() -> None:
    a, b = _user(), _user()
    number = safety_number(a, b)
    assert number == safety_number(b, a)
    assert len(number) == 60
    assert number.isdigit()
    own = fingerprint_digits(a.identity_bytes, a.user_id)
    other = fingerprint_digits(b.identity_bytes, b.user_id)
    assert number == min(own, other) + max(own, other)


def test_safety_number_changes_with_any_key_or_id() -> None:
    a, b = _user(), _user()
    number = safety_number(a, b)
    replacement = IdentityKeys.generate()
    variants = [
        PublicKeys(a.user_id, 1, replacement.ecdh_public_bytes, a.ecdsa_public),
        PublicKeys(a.user_id, 1, a.ecdh_public, replacement.ecdsa_public_bytes),
        PublicKeys(str(uuid.uuid4()), 1, a.ecdh_public, a.ecdsa_public),
        # The keys' order inside the identity matters (ecdsa || ecdh).
        PublicKeys(a.user_id, 1, a.ecdsa_public, a.ecdh_public),
    ]
    for variant in variants:
        assert safety_number(variant, b) != number
    # The key version is not part of the number: only the keys themselves are.
    assert safety_number(PublicKeys(a.user_id, 2, a.ecdh_public, a.ecdsa_public), b) == number


def test_format_safety_number() -> None:
    formatted = format_safety_number(DISPLAYABLE_FINGERPRINT)
    assert formatted == "30035 44776 92869 39689 28698 76765 45825 75691 62576 84344 09180 79131"
    assert formatted.replace(" ", "") == DISPLAYABLE_FINGERPRINT
    for bad in (
        "",
        DISPLAYABLE_FINGERPRINT[:-1],
        DISPLAYABLE_FINGERPRINT + "1",
        "x" * 60,
        "٣" * 60,
    ):
        with pytest.raises(ValueError, match="60 digits"):
            format_safety_number(bad)

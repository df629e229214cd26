"""Generator of docs/protocol-vectors.json (docs/protocol.md section 10).

Every input is fixed here (private scalars, salts, nonces, the ephemeral key, UUIDs), so
AES-GCM and the derivations give the same bytes on every run. The stored signatures use
RFC 6979 deterministic ECDSA so that the whole file regenerates byte for byte; clients sign
with random nonces, and verifiers accept both because they are the same ECDSA.

Run ``python -m securechat.client.vectors docs/protocol-vectors.json`` from the repository
root (``make vectors``).
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from securechat.client.crypto import (
    IdentityKeys,
    Signer,
    derive_keys,
    derive_wrap_kek,
    ecdh_shared_secret,
    encode_json,
    encrypt_envelope,
    envelope_signed_data,
    epoch_wrap_aad,
    key_blob_aad,
    key_blob_plaintext,
    message_aad,
    private_key_pkcs8,
    public_key_bytes,
    seal_key_blob,
    sign,
    wrap_epoch_key,
    wrap_signed_data,
)
from securechat.client.encoding import b64decode, b64encode
from securechat.client.safety import fingerprint_digits, format_safety_number, safety_number
from securechat.protocol import KDF_ITERATIONS, PROTOCOL_VERSION, SUITE

DEFAULT_PATH = "docs/protocol-vectors.json"

# A published test password, not a credential.
PASSWORD = "correct horse battery staple"  # noqa: S105
# Typed in decomposed form (NFD); clients must NFC-normalise before PBKDF2 (section 4.1).
PASSWORD_NFD = unicodedata.normalize("NFD", "Crème brûlée für Ødegård")
KDF_SALT_HEX = "807da1a9a587c47da7fb04737caf148c"

CONVERSATION_ID = "5dbbe420-217b-42de-a946-989b588d55dc"
MESSAGE_ID = "6c31819a-003a-4ead-a995-78abf65862fe"
EPOCH = 3
EPOCH_KEY_HEX = "b46ba44d9ea50cdfca71e0ff66e7c426fe5109205517d3c9577fb585c9765160"
EPHEMERAL_SCALAR_HEX = "acd62d1e378e522add52f9080e9bf866d7dadf6f7a5fed93f475f82cd1c35bd7"
KEY_BLOB_NONCE_HEX = "e5bc80f72a4a55fffac9a347"
WRAP_NONCE_HEX = "155af5343c1c09fe1b831e51"
ENVELOPE_NONCE_HEX = "896cea591f0b5a37c3061592"
# Members in sorted order: the file is written with sorted keys, so this is the order a
# reader sees, and JSON-encoding the content as read reproduces ``plaintext_hex`` exactly.
CONTENT: dict[str, object] = {"text": 'Hi Bob! Ünïcödé, emoji 👋 and "quotes".', "type": "text"}


@dataclass(frozen=True)
class FixedUser:
    """A test user whose private keys are fixed P-256 scalars."""

    name: str
    user_id: str
    key_version: int
    ecdh_scalar_hex: str
    ecdsa_scalar_hex: str

    @property
    def signer(self) -> Signer:
        """The user as a local party, keys rebuilt from the scalars."""
        identity = IdentityKeys(
            ecdh_private=private_key_from_hex(self.ecdh_scalar_hex),
            ecdsa_private=private_key_from_hex(self.ecdsa_scalar_hex),
        )
        return Signer(user_id=self.user_id, key_version=self.key_version, identity=identity)


ALICE = FixedUser(
    name="alice",
    user_id="396434e8-b6bc-4167-8568-73288b662063",
    key_version=1,
    ecdh_scalar_hex="7989ede11e5a8a032287f4523a33754a2bb584f75e4b6738bc679c4d87d03637",
    ecdsa_scalar_hex="d64f97da4e6154739ab69f44856d9f40e846bd952fe388306008bca706e93bba",
)
BOB = FixedUser(
    name="bob",
    user_id="a966cb41-6e74-437c-bb6a-e21eb88c7089",
    key_version=1,
    ecdh_scalar_hex="152fe0e1ac15c05a11a471885071500969caaeaec097ee05edadf36c4f33bf0e",
    ecdsa_scalar_hex="45fffcc96fdc912caa69a0b0dc17aa99378534dd286fb9c88a7d3754e287027c",
)


def private_key_from_hex(scalar_hex: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from its big-endian hex scalar."""
    return ec.derive_private_key(int(scalar_hex, 16), ec.SECP256R1())


def _derivation(password: str) -> dict[str, object]:
    """Section 4.1 with the fixed salt and the default (minimum) iteration count."""
    keys = derive_keys(password, bytes.fromhex(KDF_SALT_HEX), KDF_ITERATIONS)
    return {
        "password": password,
        "password_nfc_utf8_hex": unicodedata.normalize("NFC", password).encode().hex(),
        "salt_hex": KDF_SALT_HEX,
        "iterations": KDF_ITERATIONS,
        "master_key_hex": keys.master_key.hex(),
        "auth_key_hex": keys.auth_key.hex(),
        "auth_key_b64": b64encode(keys.auth_key),
        "wrap_key_hex": keys.wrap_key.hex(),
    }


def _user(user: FixedUser) -> dict[str, object]:
    """A user's fixed private keys and the public keys the directory would publish."""
    signer = user.signer
    identity = signer.identity
    public = signer.public
    return {
        "user_id": user.user_id,
        "key_version": user.key_version,
        "ecdh_private_scalar_hex": user.ecdh_scalar_hex,
        "ecdsa_private_scalar_hex": user.ecdsa_scalar_hex,
        "ecdh_private_pkcs8_b64": b64encode(private_key_pkcs8(identity.ecdh_private)),
        "ecdsa_private_pkcs8_b64": b64encode(private_key_pkcs8(identity.ecdsa_private)),
        "keys": public.to_json(),
        "identity_hex": public.identity_bytes.hex(),
        "fingerprint_digits": fingerprint_digits(public.identity_bytes, public.user_id),
    }


def _key_blob(user: FixedUser, wrap_key: bytes) -> dict[str, object]:
    """Section 4.2: ``user``'s private keys sealed under the derivation's wrap_key."""
    signer = user.signer
    blob = seal_key_blob(
        wrap_key,
        user.user_id,
        user.key_version,
        signer.identity,
        nonce=bytes.fromhex(KEY_BLOB_NONCE_HEX),
    )
    # The plaintext is pinned too: section 4.2 lets readers ignore member order and
    # whitespace, but reproducing the ciphertext needs the writer's exact bytes.
    plaintext = key_blob_plaintext(signer.identity).decode("utf-8")
    return {
        "user": user.name,
        "user_id": user.user_id,
        "key_version": user.key_version,
        "wrap_key_hex": wrap_key.hex(),
        "nonce_hex": KEY_BLOB_NONCE_HEX,
        "plaintext": plaintext,
        "aad_hex": key_blob_aad(user.user_id, user.key_version).hex(),
        "blob": blob,
    }


def _epoch_wrap(wrapper: FixedUser, recipient: FixedUser) -> dict[str, object]:
    """Section 5.1: the epoch key wrapped by ``wrapper`` for ``recipient``."""
    signer = wrapper.signer
    recipient_public = recipient.signer.public
    ephemeral = private_key_from_hex(EPHEMERAL_SCALAR_HEX)
    ephemeral_public = public_key_bytes(ephemeral.public_key())
    nonce = bytes.fromhex(WRAP_NONCE_HEX)
    wrap = wrap_epoch_key(
        bytes.fromhex(EPOCH_KEY_HEX),
        CONVERSATION_ID,
        EPOCH,
        signer,
        recipient_public,
        ephemeral=ephemeral,
        nonce=nonce,
    )
    shared = ecdh_shared_secret(ephemeral, recipient_public.ecdh_public)
    aad = epoch_wrap_aad(
        CONVERSATION_ID,
        EPOCH,
        wrapper_id=wrapper.user_id,
        wrapper_key_version=wrapper.key_version,
        recipient_id=recipient.user_id,
        recipient_key_version=recipient.key_version,
    )
    ciphertext = b64decode(str(wrap["ciphertext"]))
    signed = wrap_signed_data(aad, ephemeral_public, nonce, ciphertext)
    # Replace the randomised signature with a deterministic one (see the module docstring).
    wrap["signature"] = b64encode(sign(signer.identity.ecdsa_private, signed, deterministic=True))
    return {
        "conversation_id": CONVERSATION_ID,
        "epoch": EPOCH,
        "wrapper": wrapper.name,
        "wrapper_id": wrapper.user_id,
        "wrapper_key_version": wrapper.key_version,
        "recipient": recipient.name,
        "epoch_key_hex": EPOCH_KEY_HEX,
        "ephemeral_private_scalar_hex": EPHEMERAL_SCALAR_HEX,
        "ephemeral_public_hex": ephemeral_public.hex(),
        "nonce_hex": WRAP_NONCE_HEX,
        "shared_hex": shared.hex(),
        "kek_hex": derive_wrap_kek(shared, ephemeral_public, recipient_public.ecdh_public).hex(),
        "aad_hex": aad.hex(),
        "ciphertext_hex": ciphertext.hex(),
        "signed_data_hex": signed.hex(),
        "wrap": wrap,
    }


def _envelope(sender: FixedUser) -> dict[str, object]:
    """Section 5.2: a text message from ``sender`` under the epoch key."""
    signer = sender.signer
    nonce = bytes.fromhex(ENVELOPE_NONCE_HEX)
    envelope = encrypt_envelope(
        CONTENT,
        CONVERSATION_ID,
        EPOCH,
        bytes.fromhex(EPOCH_KEY_HEX),
        signer,
        message_id=MESSAGE_ID,
        nonce=nonce,
    )
    aad = message_aad(CONVERSATION_ID, EPOCH, MESSAGE_ID, sender.user_id, sender.key_version)
    ciphertext = b64decode(str(envelope["ciphertext"]))
    signed = envelope_signed_data(aad, nonce, ciphertext)
    envelope["signature"] = b64encode(
        sign(signer.identity.ecdsa_private, signed, deterministic=True)
    )
    plaintext = encode_json(CONTENT)
    return {
        "sender": sender.name,
        "epoch_key_hex": EPOCH_KEY_HEX,
        "content": CONTENT,
        "plaintext_hex": plaintext.hex(),
        "nonce_hex": ENVELOPE_NONCE_HEX,
        "aad_hex": aad.hex(),
        "signed_data_hex": signed.hex(),
        "envelope": envelope,
    }


def _aad_examples(wrapper: FixedUser, recipient: FixedUser) -> dict[str, object]:
    """The three associated-data strings with their inputs, for checking LP on its own."""
    return {
        "key_blob": {
            "user_id": wrapper.user_id,
            "key_version": wrapper.key_version,
            "hex": key_blob_aad(wrapper.user_id, wrapper.key_version).hex(),
        },
        "epoch_key": {
            "conversation_id": CONVERSATION_ID,
            "epoch": EPOCH,
            "wrapper_id": wrapper.user_id,
            "wrapper_key_version": wrapper.key_version,
            "recipient_id": recipient.user_id,
            "recipient_key_version": recipient.key_version,
            "hex": epoch_wrap_aad(
                CONVERSATION_ID,
                EPOCH,
                wrapper_id=wrapper.user_id,
                wrapper_key_version=wrapper.key_version,
                recipient_id=recipient.user_id,
                recipient_key_version=recipient.key_version,
            ).hex(),
        },
        "message": {
            "conversation_id": CONVERSATION_ID,
            "epoch": EPOCH,
            "message_id": MESSAGE_ID,
            "sender_id": wrapper.user_id,
            "sender_key_version": wrapper.key_version,
            "hex": message_aad(
                CONVERSATION_ID, EPOCH, MESSAGE_ID, wrapper.user_id, wrapper.key_version
            ).hex(),
        },
    }


def _safety(a: FixedUser, b: FixedUser) -> dict[str, object]:
    """Section 9: the safety number of the two users' key version 1."""
    digits = safety_number(a.signer.public, b.signer.public)
    return {"users": [a.name, b.name], "digits": digits, "formatted": format_safety_number(digits)}


def build_vectors() -> dict[str, object]:
    """Compute every vector from the fixed inputs of this module."""
    derivation = _derivation(PASSWORD)
    wrap_key = bytes.fromhex(str(derivation["wrap_key_hex"]))
    return {
        "about": (
            "Test vectors of docs/protocol.md, suite p256-v1. Binary values are hex in *_hex "
            "members and base64 inside wire objects (keys, blob, wrap, envelope). AES-GCM and "
            "the derivations are deterministic and must be reproduced; signatures were made "
            "with RFC 6979 nonces and must verify (any valid signature is acceptable)."
        ),
        "protocol_version": PROTOCOL_VERSION,
        "suite": SUITE,
        "derivation": derivation,
        "derivation_nfc": _derivation(PASSWORD_NFD),
        "users": {user.name: _user(user) for user in (ALICE, BOB)},
        "aad": _aad_examples(ALICE, BOB),
        "key_blob": _key_blob(ALICE, wrap_key),
        "epoch_wrap": _epoch_wrap(ALICE, BOB),
        "envelope": _envelope(ALICE),
        "safety_number": _safety(ALICE, BOB),
    }


def render(vectors: dict[str, object]) -> str:
    """The file's text: pretty, sorted JSON (ASCII, so NFD vs NFC stays visible)."""
    return json.dumps(vectors, indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Write the vectors to ``argv[1]`` (default ``docs/protocol-vectors.json``)."""
    args = sys.argv if argv is None else argv
    path = Path(args[1] if len(args) > 1 else DEFAULT_PATH)
    path.write_text(render(build_vectors()), encoding="utf-8")


if __name__ == "__main__":
    main()

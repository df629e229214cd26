"""docs/protocol-vectors.json: every deterministic value is recomputed from its inputs.

This is what a second implementation has to do too, so the checks read the file, not the
generator's constants, and use the wire functions the client uses.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from securechat.client.crypto import (
    IdentityKeys,
    PublicKeys,
    Signer,
    decrypt_envelope,
    derive_keys,
    derive_wrap_kek,
    ecdh_shared_secret,
    encode_json,
    encrypt_envelope,
    envelope_signed_data,
    epoch_wrap_aad,
    key_blob_aad,
    key_blob_plaintext,
    load_private_key_pkcs8,
    message_aad,
    open_key_blob,
    private_key_pkcs8,
    public_key_bytes,
    seal_key_blob,
    unwrap_epoch_key,
    verify,
    wrap_epoch_key,
    wrap_signed_data,
)
from securechat.client.encoding import b64decode, b64encode, lp
from securechat.client.files import (
    FileEncryptor,
    decrypt_stream,
    encrypted_size,
    file_content,
    parse_file_content,
)
from securechat.client.safety import fingerprint_digits, format_safety_number, safety_number
from securechat.client.vectors import build_vectors, render
from securechat.protocol import (
    FILE_CHUNK_BYTES,
    KDF_ITERATIONS,
    LABEL_FILE_CHUNK,
    PROTOCOL_VERSION,
    SUITE,
)

# tests/client/test_vectors.py -> app/ -> repository root
VECTORS_PATH = Path(__file__).resolve().parents[3] / "docs" / "protocol-vectors.json"


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    return data


def h(value: str) -> bytes:
    return bytes.fromhex(value)


def scalar_key(scalar_hex: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int(scalar_hex, 16), ec.SECP256R1())


def signer(user: dict[str, Any]) -> Signer:
    identity = IdentityKeys(
        ecdh_private=scalar_key(user["ecdh_private_scalar_hex"]),
        ecdsa_private=scalar_key(user["ecdsa_private_scalar_hex"]),
    )
    return Signer(user["user_id"], user["key_version"], identity)


def public(user: dict[str, Any]) -> PublicKeys:
    return PublicKeys.from_json(user["user_id"], user["key_version"], user["keys"])


def test_header(vectors: dict[str, Any]) -> None:
    assert vectors["suite"] == SUITE
    assert vectors["protocol_version"] == PROTOCOL_VERSION


@pytest.mark.parametrize("section", ["derivation", "derivation_nfc"])
def test_derivation(section: str, vectors: dict[str, Any]) -> None:
    d = vectors[section]
    assert d["iterations"] == KDF_ITERATIONS
    assert d["password"].encode() != h(d["password_nfc_utf8_hex"]) or section == "derivation"
    keys = derive_keys(d["password"], h(d["salt_hex"]), d["iterations"])
    assert keys.master_key.hex() == d["master_key_hex"]
    assert keys.auth_key.hex() == d["auth_key_hex"]
    assert keys.wrap_key.hex() == d["wrap_key_hex"]
    assert b64encode(keys.auth_key) == d["auth_key_b64"]


@pytest.mark.parametrize("name", ["alice", "bob"])
def test_users(name: str, vectors: dict[str, Any]) -> None:
    user = vectors["users"][name]
    me = signer(user)
    assert me.public.to_json() == user["keys"]
    assert public(user) == me.public
    assert me.public.identity_bytes.hex() == user["identity_hex"]
    for kind in ("ecdh", "ecdsa"):
        pkcs8 = b64decode(user[f"{kind}_private_pkcs8_b64"])
        key = getattr(me.identity, f"{kind}_private")
        assert private_key_pkcs8(key) == pkcs8
        loaded = load_private_key_pkcs8(pkcs8)
        assert loaded.private_numbers().private_value == int(user[f"{kind}_private_scalar_hex"], 16)
    digits = fingerprint_digits(me.public.identity_bytes, me.user_id)
    assert digits == user["fingerprint_digits"]


def test_aad(vectors: dict[str, Any]) -> None:
    aad = vectors["aad"]
    blob = aad["key_blob"]
    assert key_blob_aad(blob["user_id"], blob["key_version"]).hex() == blob["hex"]
    wrap = aad["epoch_key"]
    assert (
        epoch_wrap_aad(
            wrap["conversation_id"],
            wrap["epoch"],
            wrapper_id=wrap["wrapper_id"],
            wrapper_key_version=wrap["wrapper_key_version"],
            recipient_id=wrap["recipient_id"],
            recipient_key_version=wrap["recipient_key_version"],
        ).hex()
        == wrap["hex"]
    )
    msg = aad["message"]
    computed = message_aad(
        msg["conversation_id"],
        msg["epoch"],
        msg["message_id"],
        msg["sender_id"],
        msg["sender_key_version"],
    )
    assert computed.hex() == msg["hex"]


def test_key_blob(vectors: dict[str, Any]) -> None:
    kb = vectors["key_blob"]
    owner = signer(vectors["users"][kb["user"]])
    assert (owner.user_id, owner.key_version) == (kb["user_id"], kb["key_version"])
    assert kb["wrap_key_hex"] == vectors["derivation"]["wrap_key_hex"]
    wrap_key = h(kb["wrap_key_hex"])
    aad = key_blob_aad(kb["user_id"], kb["key_version"])
    assert aad.hex() == kb["aad_hex"]
    assert key_blob_plaintext(owner.identity).decode() == kb["plaintext"]
    # AES-GCM is deterministic given key, nonce, plaintext and AAD.
    ciphertext = AESGCM(wrap_key).encrypt(h(kb["nonce_hex"]), kb["plaintext"].encode(), aad)
    assert kb["blob"] == {
        "nonce": b64encode(h(kb["nonce_hex"])),
        "ciphertext": b64encode(ciphertext),
    }
    sealed = seal_key_blob(
        wrap_key, kb["user_id"], kb["key_version"], owner.identity, nonce=h(kb["nonce_hex"])
    )
    assert sealed == kb["blob"]
    opened = open_key_blob(wrap_key, kb["user_id"], kb["key_version"], kb["blob"])
    assert opened.ecdh_public_bytes == owner.identity.ecdh_public_bytes
    assert opened.ecdsa_public_bytes == owner.identity.ecdsa_public_bytes


def test_epoch_wrap(vectors: dict[str, Any]) -> None:
    ew = vectors["epoch_wrap"]
    wrapper = signer(vectors["users"][ew["wrapper"]])
    recipient = signer(vectors["users"][ew["recipient"]])
    assert (wrapper.user_id, wrapper.key_version) == (ew["wrapper_id"], ew["wrapper_key_version"])
    wrap = ew["wrap"]
    assert (wrap["recipient_id"], wrap["recipient_key_version"]) == (
        recipient.user_id,
        recipient.key_version,
    )
    eph = scalar_key(ew["ephemeral_private_scalar_hex"])
    eph_public = public_key_bytes(eph.public_key())
    assert eph_public.hex() == ew["ephemeral_public_hex"]
    assert b64decode(wrap["ephemeral_public"]) == eph_public
    assert b64decode(wrap["nonce"]).hex() == ew["nonce_hex"]

    shared = ecdh_shared_secret(eph, recipient.public.ecdh_public)
    assert shared.hex() == ew["shared_hex"]
    assert ecdh_shared_secret(recipient.identity.ecdh_private, eph_public) == shared
    kek = derive_wrap_kek(shared, eph_public, recipient.public.ecdh_public)
    assert kek.hex() == ew["kek_hex"]
    aad = epoch_wrap_aad(
        ew["conversation_id"],
        ew["epoch"],
        wrapper_id=wrapper.user_id,
        wrapper_key_version=wrapper.key_version,
        recipient_id=recipient.user_id,
        recipient_key_version=recipient.key_version,
    )
    assert aad.hex() == ew["aad_hex"] == vectors["aad"]["epoch_key"]["hex"]
    ciphertext = AESGCM(kek).encrypt(h(ew["nonce_hex"]), h(ew["epoch_key_hex"]), aad)
    assert ciphertext.hex() == ew["ciphertext_hex"]
    assert b64decode(wrap["ciphertext"]) == ciphertext
    signed = wrap_signed_data(aad, eph_public, h(ew["nonce_hex"]), ciphertext)
    assert signed.hex() == ew["signed_data_hex"]
    verify(wrapper.public.ecdsa_public, b64decode(wrap["signature"]), signed)

    # The library reproduces the same wrap (up to its randomised signature) and opens it.
    again = wrap_epoch_key(
        h(ew["epoch_key_hex"]),
        ew["conversation_id"],
        ew["epoch"],
        wrapper,
        recipient.public,
        ephemeral=eph,
        nonce=h(ew["nonce_hex"]),
    )
    assert {k: v for k, v in again.items() if k != "signature"} == {
        k: v for k, v in wrap.items() if k != "signature"
    }
    verify(wrapper.public.ecdsa_public, b64decode(str(again["signature"])), signed)
    key = unwrap_epoch_key(wrap, ew["conversation_id"], ew["epoch"], wrapper.public, recipient)
    assert key.hex() == ew["epoch_key_hex"]


def test_envelope(vectors: dict[str, Any]) -> None:
    ev = vectors["envelope"]
    env = ev["envelope"]
    sender = signer(vectors["users"][ev["sender"]])
    assert (env["sender_id"], env["sender_key_version"]) == (sender.user_id, sender.key_version)
    assert (env["v"], env["suite"]) == (PROTOCOL_VERSION, SUITE)
    assert ev["epoch_key_hex"] == vectors["epoch_wrap"]["epoch_key_hex"]
    epoch_key = h(ev["epoch_key_hex"])
    plaintext = encode_json(ev["content"])
    assert plaintext.hex() == ev["plaintext_hex"]
    aad = message_aad(
        env["conversation_id"], env["epoch"], env["message_id"], sender.user_id, sender.key_version
    )
    assert aad.hex() == ev["aad_hex"] == vectors["aad"]["message"]["hex"]
    assert b64decode(env["nonce"]).hex() == ev["nonce_hex"]
    ciphertext = AESGCM(epoch_key).encrypt(h(ev["nonce_hex"]), plaintext, aad)
    assert b64decode(env["ciphertext"]) == ciphertext
    signed = envelope_signed_data(aad, h(ev["nonce_hex"]), ciphertext)
    assert signed.hex() == ev["signed_data_hex"]
    verify(sender.public.ecdsa_public, b64decode(env["signature"]), signed)

    again = encrypt_envelope(
        ev["content"],
        env["conversation_id"],
        env["epoch"],
        epoch_key,
        sender,
        message_id=env["message_id"],
        nonce=h(ev["nonce_hex"]),
    )
    assert {k: v for k, v in again.items() if k != "signature"} == {
        k: v for k, v in env.items() if k != "signature"
    }
    assert decrypt_envelope(again, epoch_key, sender.public) == ev["content"]
    assert decrypt_envelope(env, epoch_key, public(vectors["users"][ev["sender"]])) == ev["content"]


def test_safety_number(vectors: dict[str, Any]) -> None:
    sn = vectors["safety_number"]
    a, b = (public(vectors["users"][name]) for name in sn["users"])
    assert safety_number(a, b) == safety_number(b, a) == sn["digits"]
    assert format_safety_number(sn["digits"]) == sn["formatted"]
    digits = [vectors["users"][name]["fingerprint_digits"] for name in sn["users"]]
    assert sn["digits"] == "".join(sorted(digits))


def test_file(vectors: dict[str, Any]) -> None:
    fv = vectors["file"]
    assert fv["chunk_bytes"] == FILE_CHUNK_BYTES
    key = h(fv["file_key_hex"])
    pattern = h(fv["plaintext_pattern_hex"])
    size = fv["plaintext_size"]
    plaintext = (pattern * (size // len(pattern) + 1))[:size]
    assert hashlib.sha256(plaintext).hexdigest() == fv["plaintext_sha256_hex"]

    # Section 5.4 by hand: one record per chunk, the last one flagged in its AAD.
    chunks = [plaintext[i : i + FILE_CHUNK_BYTES] for i in range(0, size, FILE_CHUNK_BYTES)]
    nonces = [h(n) for n in fv["nonces_hex"]]
    assert len(chunks) == len(nonces) == len(fv["aad_hex"]) == 2
    blob = b""
    for index, (chunk, nonce) in enumerate(zip(chunks, nonces, strict=True)):
        aad = lp(LABEL_FILE_CHUNK, str(index), "1" if index == len(chunks) - 1 else "0")
        assert aad.hex() == fv["aad_hex"][index]
        blob += nonce + AESGCM(key).encrypt(nonce, chunk, aad)
    assert len(blob) == fv["blob_size"] == encrypted_size(size)
    assert hashlib.sha256(blob).hexdigest() == fv["blob_sha256_hex"]
    assert blob[:64].hex() == fv["blob_head_hex"]
    assert blob[-64:].hex() == fv["blob_tail_hex"]

    # The library produces the same blob and opens it.
    encryptor = FileEncryptor(key, nonces=nonces)
    assert b"".join(encryptor.encrypt_stream([plaintext])) == blob
    assert encryptor.sha256 == fv["blob_sha256_hex"]
    assert b"".join(decrypt_stream([blob], key, fv["blob_sha256_hex"])) == plaintext

    content = fv["content"]
    ref = parse_file_content(content)
    assert (ref.key, ref.size, ref.ciphertext_size) == (key, size, fv["blob_size"])
    assert ref.sha256 == fv["blob_sha256_hex"]
    again = file_content(ref.file_id, ref.name, ref.mime, encryptor, ref.text)
    assert again == content


def test_file_is_up_to_date(vectors: dict[str, Any]) -> None:
    # Deterministic (RFC 6979) signatures make the whole file reproducible byte for byte.
    assert render(build_vectors()) == VECTORS_PATH.read_text(encoding="utf-8")

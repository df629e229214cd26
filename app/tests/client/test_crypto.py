"""The cryptographic core (docs/protocol.md sections 3 to 5): round trips and tampering."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from securechat.client.crypto import (
    CryptoError,
    IdentityKeys,
    PublicKeys,
    Signer,
    decrypt_envelope,
    derive_keys,
    derive_wrap_kek,
    ecdh_shared_secret,
    encrypt_envelope,
    envelope_signed_data,
    epoch_wrap_aad,
    key_blob_aad,
    load_private_key_pkcs8,
    load_public_key,
    message_aad,
    new_epoch_key,
    open_key_blob,
    private_key_pkcs8,
    public_key_bytes,
    seal_key_blob,
    sign,
    unwrap_epoch_key,
    verify,
    wrap_epoch_key,
)
from securechat.client.encoding import b64decode, b64encode, lp
from securechat.protocol import (
    KDF_ITERATIONS,
    LABEL_EPOCH_KEY,
    LABEL_KEY_BLOB,
    LABEL_MESSAGE,
    PROTOCOL_VERSION,
    SUITE,
    UUID_RE,
)

FAST = 1000  # PBKDF2 iterations for tests that do not care about the cost
SALT = bytes(range(16))
CONVERSATION = str(uuid.uuid4())
EPOCH = 4


def make_signer(key_version: int = 1) -> Signer:
    return Signer(str(uuid.uuid4()), key_version, IdentityKeys.generate())


@pytest.fixture(scope="module")
def alice() -> Signer:
    return make_signer()


@pytest.fixture(scope="module")
def bob() -> Signer:
    return make_signer()


@pytest.fixture(scope="module")
def carol() -> Signer:
    return make_signer()


@pytest.fixture
def epoch_key() -> bytes:
    return new_epoch_key()


def flip_b64(text: object, index: int = 0) -> str:
    """Flip one bit of the decoded value and re-encode it."""
    data = bytearray(b64decode(str(text)))
    data[index] ^= 0x01
    return b64encode(bytes(data))


# --------------------------------------------------------------------------- derivation


def _hkdf_sha256_reference(ikm: bytes, info: bytes) -> bytes:
    """RFC 5869 by hand with a 32-byte zero salt and one output block, as a cross-check."""
    prk = hmac.new(bytes(32), ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def test_derive_keys_full_iterations_matches_reference() -> None:
    keys = derive_keys("correct horse battery staple", SALT, KDF_ITERATIONS)
    master = hashlib.pbkdf2_hmac("sha256", b"correct horse battery staple", SALT, 600_000, 32)
    assert keys.master_key == master
    assert keys.auth_key == _hkdf_sha256_reference(master, b"securechat/p256-v1/auth")
    assert keys.wrap_key == _hkdf_sha256_reference(master, b"securechat/p256-v1/wrap")


def test_derive_keys_is_deterministic_and_separates_keys() -> None:
    one = derive_keys("pw", SALT, FAST, min_iterations=FAST)
    assert one == derive_keys("pw", SALT, FAST, min_iterations=FAST)
    assert len({one.master_key, one.auth_key, one.wrap_key}) == 3
    assert all(len(k) == 32 for k in (one.master_key, one.auth_key, one.wrap_key))
    assert derive_keys("pw2", SALT, FAST, min_iterations=FAST) != one
    assert derive_keys("pw", bytes(16), FAST, min_iterations=FAST) != one
    assert derive_keys("pw", SALT, FAST + 1, min_iterations=FAST) != one


def test_derive_keys_normalises_to_nfc() -> None:
    composed = derive_keys("caf\u00e9", SALT, FAST, min_iterations=FAST)
    decomposed = derive_keys("cafe\u0301", SALT, FAST, min_iterations=FAST)
    assert composed == decomposed
    expected = hashlib.pbkdf2_hmac("sha256", "caf\u00e9".encode(), SALT, FAST, 32)
    assert composed.master_key == expected


def test_derive_keys_refuses_low_iterations() -> None:
    with pytest.raises(CryptoError, match="iterations"):
        derive_keys("pw", SALT, KDF_ITERATIONS - 1)
    with pytest.raises(CryptoError, match="iterations"):
        derive_keys("pw", SALT, FAST)
    with pytest.raises(CryptoError, match="iterations"):
        derive_keys("pw", SALT, FAST - 1, min_iterations=FAST)
    with pytest.raises(CryptoError, match="iterations"):
        derive_keys("pw", SALT, 0, min_iterations=0)
    with pytest.raises(CryptoError, match="iterations"):
        derive_keys("pw", SALT, True, min_iterations=1)


def test_derive_keys_refuses_short_salt() -> None:
    with pytest.raises(CryptoError, match="salt"):
        derive_keys("pw", b"", FAST, min_iterations=FAST)
    with pytest.raises(CryptoError, match="salt"):
        derive_keys("pw", bytes(15), FAST, min_iterations=FAST)


def test_derived_keys_repr_hides_secrets() -> None:
    keys = derive_keys("pw", SALT, FAST, min_iterations=FAST)
    text = repr(keys)
    for secret in (keys.master_key, keys.auth_key, keys.wrap_key):
        assert secret.hex() not in text
        assert repr(secret) not in text


# --------------------------------------------------------------------------- signatures


def test_sign_produces_p1363_that_verifies(alice: Signer) -> None:
    key = alice.identity.ecdsa_private
    signature = sign(key, b"data")
    assert len(signature) == 64
    verify(alice.identity.ecdsa_public_bytes, signature, b"data")
    # Randomised by default, RFC 6979 when asked.
    assert sign(key, b"data") != signature
    assert sign(key, b"data", deterministic=True) == sign(key, b"data", deterministic=True)
    verify(alice.identity.ecdsa_public_bytes, sign(key, b"data", deterministic=True), b"data")


def test_verify_rejects_bad_signatures(alice: Signer, bob: Signer) -> None:
    public = alice.identity.ecdsa_public_bytes
    signature = sign(alice.identity.ecdsa_private, b"data")
    der = alice.identity.ecdsa_private.sign(b"data", ec.ECDSA(hashes.SHA256()))
    bad: list[bytes] = [
        signature[:-1],
        signature + b"\x00",
        b"\x00" + signature,
        der,  # DER is not the wire format
        bytes(64),  # r = s = 0
        signature[:32] + bytes(32),
        bytes([signature[0] ^ 1]) + signature[1:],
        signature[:63] + bytes([signature[63] ^ 1]),
        b"\xff" * 64,  # r, s above the group order
    ]
    for candidate in bad:
        with pytest.raises(CryptoError):
            verify(public, candidate, b"data")
    with pytest.raises(CryptoError):
        verify(public, signature, b"other data")
    with pytest.raises(CryptoError):
        verify(bob.identity.ecdsa_public_bytes, signature, b"data")


def test_verify_rejects_malformed_public_keys(alice: Signer) -> None:
    signature = sign(alice.identity.ecdsa_private, b"data")
    point = alice.identity.ecdsa_public_bytes
    compressed = alice.identity.ecdsa_private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    off_curve = point[:-1] + bytes([point[-1] ^ 1])
    for public in (compressed, point[:-1], point + b"\x00", b"\x05" + point[1:], off_curve):
        with pytest.raises(CryptoError):
            verify(public, signature, b"data")


# --------------------------------------------------------------------------- keys


def test_public_keys_json_round_trip(alice: Signer) -> None:
    public = alice.public
    assert public.identity_bytes == public.ecdsa_public + public.ecdh_public
    assert len(public.identity_bytes) == 130
    assert public.ecdh_public[0] == 0x04
    assert len(public.ecdh_public) == 65
    wire = public.to_json()
    assert set(wire) == {"suite", "ecdh_public", "ecdsa_public"}
    assert wire["suite"] == SUITE
    assert PublicKeys.from_json(alice.user_id, alice.key_version, wire) == public
    # The key directory's answer carries its own ids and extra members; they are checked/ignored.
    directory = {**wire, "user_id": alice.user_id, "key_version": 1, "created_at": "x"}
    assert PublicKeys.from_json(alice.user_id, 1, directory) == public


def test_public_keys_from_json_rejects_bad_input(alice: Signer, bob: Signer) -> None:
    wire: dict[str, object] = dict(alice.public.to_json())
    uid = alice.user_id
    off_curve = alice.public.ecdh_public[:-1] + bytes([alice.public.ecdh_public[-1] ^ 1])
    bad_members: list[dict[str, object]] = [
        {**wire, "suite": "p384-v1"},
        {k: v for k, v in wire.items() if k != "suite"},
        {k: v for k, v in wire.items() if k != "ecdh_public"},
        {**wire, "ecdh_public": b64encode(off_curve)},
        {**wire, "ecdsa_public": b64encode(alice.public.ecdsa_public[:33])},
        {**wire, "ecdsa_public": str(wire["ecdsa_public"]).rstrip("=")},
        {**wire, "ecdh_public": 5},
        {**wire, "user_id": bob.user_id},
        {**wire, "key_version": 2},
    ]
    for keys in bad_members:
        with pytest.raises(CryptoError):
            PublicKeys.from_json(uid, 1, keys)
    for user_id, version in [(uid.upper(), 1), ("alice", 1), (uid, 0), (uid, True)]:
        with pytest.raises(CryptoError):
            PublicKeys.from_json(user_id, version, wire)


def test_identity_keys_generate_and_refuse_other_curves() -> None:
    one, two = IdentityKeys.generate(), IdentityKeys.generate()
    assert one.ecdh_public_bytes != one.ecdsa_public_bytes
    assert one.ecdh_public_bytes != two.ecdh_public_bytes
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(CryptoError):
        IdentityKeys(ecdh_private=p384, ecdsa_private=one.ecdsa_private)


def test_pkcs8_round_trip_and_rejects(alice: Signer) -> None:
    key = alice.identity.ecdh_private
    loaded = load_private_key_pkcs8(private_key_pkcs8(key))
    assert loaded.private_numbers() == key.private_numbers()
    p384 = ec.generate_private_key(ec.SECP384R1())
    for data in (private_key_pkcs8(p384), b"", b"\x30\x00", private_key_pkcs8(key)[:-1]):
        with pytest.raises(CryptoError):
            load_private_key_pkcs8(data)


def test_load_public_key_round_trip(alice: Signer) -> None:
    point = alice.identity.ecdh_public_bytes
    assert public_key_bytes(load_public_key(point)) == point


# --------------------------------------------------------------------------- associated data


def test_aad_layouts() -> None:
    assert key_blob_aad("u", 7) == (
        b"\x00\x00\x00\x1bsecurechat/p256-v1/key-blob" + b"\x00\x00\x00\x01u" + b"\x00\x00\x00\x017"
    )
    assert epoch_wrap_aad(
        "c", 12, wrapper_id="w", wrapper_key_version=1, recipient_id="r", recipient_key_version=2
    ) == lp(LABEL_EPOCH_KEY, "c", "12", "w", "1", "r", "2")
    assert message_aad("c", 3, "m", "s", 1) == lp(LABEL_MESSAGE, "c", "3", "m", "s", "1")
    assert key_blob_aad("u", 7) == lp(LABEL_KEY_BLOB, "u", 7)
    # LP prevents ambiguity: moving a character between fields changes the bytes.
    assert message_aad("ab", 3, "c", "s", 1) != message_aad("a", 3, "bc", "s", 1)


# --------------------------------------------------------------------------- key blob


@pytest.fixture(scope="module")
def wrap_key() -> bytes:
    return derive_keys("pw", SALT, FAST, min_iterations=FAST).wrap_key


def _same_identity(a: IdentityKeys, b: IdentityKeys) -> bool:
    return (a.ecdh_public_bytes, a.ecdsa_public_bytes) == (
        b.ecdh_public_bytes,
        b.ecdsa_public_bytes,
    )


def test_key_blob_round_trip(alice: Signer, wrap_key: bytes) -> None:
    blob = seal_key_blob(wrap_key, alice.user_id, 1, alice.identity)
    assert set(blob) == {"nonce", "ciphertext"}
    assert len(b64decode(blob["nonce"])) == 12
    opened = open_key_blob(wrap_key, alice.user_id, 1, blob)
    assert _same_identity(opened, alice.identity)
    assert seal_key_blob(wrap_key, alice.user_id, 1, alice.identity)["nonce"] != blob["nonce"]
    fixed = bytes(12)
    assert seal_key_blob(wrap_key, alice.user_id, 1, alice.identity, nonce=fixed) == seal_key_blob(
        wrap_key, alice.user_id, 1, alice.identity, nonce=fixed
    )


def test_key_blob_fails_under_wrong_context(alice: Signer, bob: Signer, wrap_key: bytes) -> None:
    blob = seal_key_blob(wrap_key, alice.user_id, 1, alice.identity)
    other_key = derive_keys("wrong", SALT, FAST, min_iterations=FAST).wrap_key
    with pytest.raises(CryptoError):
        open_key_blob(other_key, alice.user_id, 1, blob)
    with pytest.raises(CryptoError):
        open_key_blob(wrap_key, bob.user_id, 1, blob)
    with pytest.raises(CryptoError):
        open_key_blob(wrap_key, alice.user_id, 2, blob)
    for member in ("nonce", "ciphertext"):
        with pytest.raises(CryptoError):
            open_key_blob(wrap_key, alice.user_id, 1, {**blob, member: flip_b64(blob[member])})


@pytest.mark.parametrize(
    "blob",
    [
        {},
        {"nonce": "AAAAAAAAAAAAAAAA"},
        {"nonce": "AAAA", "ciphertext": "AAAAAAAAAAAAAAAAAAAAAA=="},
        {"nonce": "AAAAAAAAAAAAAAAA", "ciphertext": "AAAA"},
        {"nonce": 12, "ciphertext": "AAAAAAAAAAAAAAAAAAAAAA=="},
    ],
)
def test_key_blob_rejects_malformed_blob(blob: dict[str, object], wrap_key: bytes) -> None:
    with pytest.raises(CryptoError):
        open_key_blob(wrap_key, str(uuid.uuid4()), 1, blob)


def _blob_with_plaintext(wrap_key: bytes, user_id: str, plaintext: bytes) -> dict[str, object]:
    """A correctly encrypted blob around arbitrary plaintext (as a hostile writer could)."""
    nonce = bytes(12)
    ciphertext = AESGCM(wrap_key).encrypt(nonce, plaintext, key_blob_aad(user_id, 1))
    return {"nonce": b64encode(nonce), "ciphertext": b64encode(ciphertext)}


def test_key_blob_rejects_bad_content(alice: Signer, wrap_key: bytes) -> None:
    good = {
        "ecdh_private": b64encode(private_key_pkcs8(alice.identity.ecdh_private)),
        "ecdsa_private": b64encode(private_key_pkcs8(alice.identity.ecdsa_private)),
    }
    p384 = b64encode(private_key_pkcs8(ec.generate_private_key(ec.SECP384R1())))
    # Member order and whitespace do not matter to readers.
    reordered = json.dumps(dict(reversed(list(good.items()))), indent=1).encode()
    opened = open_key_blob(
        wrap_key, alice.user_id, 1, _blob_with_plaintext(wrap_key, alice.user_id, reordered)
    )
    assert _same_identity(opened, alice.identity)
    bad_plaintexts = [
        b"not json",
        b"[]",
        b"\xff",
        json.dumps({"ecdh_private": good["ecdh_private"]}).encode(),
        json.dumps({**good, "extra": "x"}).encode(),
        json.dumps({**good, "ecdsa_private": p384}).encode(),
        json.dumps({**good, "ecdsa_private": "not base64"}).encode(),
        json.dumps({**good, "ecdh_private": 1}).encode(),
    ]
    for plaintext in bad_plaintexts:
        blob = _blob_with_plaintext(wrap_key, alice.user_id, plaintext)
        with pytest.raises(CryptoError):
            open_key_blob(wrap_key, alice.user_id, 1, blob)


def test_key_blob_refuses_bad_arguments(alice: Signer, wrap_key: bytes) -> None:
    with pytest.raises(CryptoError):
        seal_key_blob(wrap_key[:16], alice.user_id, 1, alice.identity)
    with pytest.raises(CryptoError):
        seal_key_blob(wrap_key, alice.user_id, 1, alice.identity, nonce=bytes(8))


# --------------------------------------------------------------------------- epoch-key wraps


def test_wrap_round_trip(alice: Signer, bob: Signer, epoch_key: bytes) -> None:
    for recipient in (alice, bob):  # the wrapper wraps for itself too
        wrap = wrap_epoch_key(epoch_key, CONVERSATION, EPOCH, alice, recipient.public)
        assert set(wrap) == {
            "recipient_id",
            "recipient_key_version",
            "ephemeral_public",
            "nonce",
            "ciphertext",
            "signature",
        }
        assert wrap["recipient_id"] == recipient.user_id
        assert len(b64decode(str(wrap["ciphertext"]))) == 48
        assert unwrap_epoch_key(wrap, CONVERSATION, EPOCH, alice.public, recipient) == epoch_key


def test_wrap_uses_fresh_ephemeral_keys(alice: Signer, bob: Signer, epoch_key: bytes) -> None:
    one = wrap_epoch_key(epoch_key, CONVERSATION, EPOCH, alice, bob.public)
    two = wrap_epoch_key(epoch_key, CONVERSATION, EPOCH, alice, bob.public)
    assert one["ephemeral_public"] != two["ephemeral_public"]
    assert one["nonce"] != two["nonce"]


def test_wrap_kek_matches_both_sides(alice: Signer, bob: Signer, epoch_key: bytes) -> None:
    eph = ec.generate_private_key(ec.SECP256R1())
    eph_public = public_key_bytes(eph.public_key())
    shared = ecdh_shared_secret(eph, bob.public.ecdh_public)
    assert shared == ecdh_shared_secret(bob.identity.ecdh_private, eph_public)
    assert len(shared) == 32
    kek = derive_wrap_kek(shared, eph_public, bob.public.ecdh_public)
    wrap = wrap_epoch_key(
        epoch_key, CONVERSATION, EPOCH, alice, bob.public, ephemeral=eph, nonce=bytes(12)
    )
    aad = epoch_wrap_aad(
        CONVERSATION,
        EPOCH,
        wrapper_id=alice.user_id,
        wrapper_key_version=1,
        recipient_id=bob.user_id,
        recipient_key_version=1,
    )
    assert b64decode(str(wrap["ciphertext"])) == AESGCM(kek).encrypt(bytes(12), epoch_key, aad)


def test_wrap_for_another_recipient_fails(
    alice: Signer, bob: Signer, carol: Signer, epoch_key: bytes
) -> None:
    wrap = wrap_epoch_key(epoch_key, CONVERSATION, EPOCH, alice, bob.public)
    with pytest.raises(CryptoError):
        unwrap_epoch_key(wrap, CONVERSATION, EPOCH, alice.public, carol)
    # Bob after a key change (version 2) must not accept a wrap for his version 1.
    bob_v2 = Signer(bob.user_id, 2, bob.identity)
    with pytest.raises(CryptoError):
        unwrap_epoch_key(wrap, CONVERSATION, EPOCH, alice.public, bob_v2)
    # Relabelling the wrap for Carol breaks the signature.
    relabelled = {**wrap, "recipient_id": carol.user_id}
    with pytest.raises(CryptoError):
        unwrap_epoch_key(relabelled, CONVERSATION, EPOCH, alice.public, carol)


def test_wrap_signed_by_someone_else_fails(
    alice: Signer, bob: Signer, carol: Signer, epoch_key: bytes
) -> None:
    # Carol wraps a key of her choosing but the epoch says Alice is the wrapper.
    forged = wrap_epoch_key(
        epoch_key, CONVERSATION, EPOCH, Signer(alice.user_id, 1, carol.identity), bob.public
    )
    with pytest.raises(CryptoError):
        unwrap_epoch_key(forged, CONVERSATION, EPOCH, alice.public, bob)
    genuine = wrap_epoch_key(epoch_key, CONVERSATION, EPOCH, alice, bob.public)
    with pytest.raises(CryptoError):
        unwrap_epoch_key(genuine, CONVERSATION, EPOCH, carol.public, bob)


def test_wrap_bound_to_conversation_and_epoch(alice: Signer, bob: Signer, epoch_key: bytes) -> None:
    wrap = wrap_epoch_key(epoch_key, CONVERSATION, EPOCH, alice, bob.public)
    with pytest.raises(CryptoError):
        unwrap_epoch_key(wrap, str(uuid.uuid4()), EPOCH, alice.public, bob)
    with pytest.raises(CryptoError):
        unwrap_epoch_key(wrap, CONVERSATION, EPOCH + 1, alice.public, bob)
    alice_v2 = PublicKeys(alice.user_id, 2, alice.public.ecdh_public, alice.public.ecdsa_public)
    with pytest.raises(CryptoError):
        unwrap_epoch_key(wrap, CONVERSATION, EPOCH, alice_v2, bob)


WRAP_TAMPERING: dict[str, Callable[[dict[str, object]], object]] = {
    "recipient_key_version": lambda w: 2,
    "ephemeral_public": lambda w: b64encode(
        public_key_bytes(ec.generate_private_key(ec.SECP256R1()).public_key())
    ),
    "nonce": lambda w: flip_b64(w["nonce"]),
    "ciphertext": lambda w: flip_b64(w["ciphertext"], 40),
    "signature": lambda w: flip_b64(w["signature"], 10),
}


@pytest.mark.parametrize("member", sorted(WRAP_TAMPERING))
def test_wrap_tampering_fails(member: str, alice: Signer, bob: Signer, epoch_key: bytes) -> None:
    wrap = wrap_epoch_key(epoch_key, CONVERSATION, EPOCH, alice, bob.public)
    tampered = {**wrap, member: WRAP_TAMPERING[member](wrap)}
    with pytest.raises(CryptoError):
        unwrap_epoch_key(tampered, CONVERSATION, EPOCH, alice.public, bob)


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("recipient_id", None),
        ("recipient_key_version", True),
        ("recipient_key_version", "1"),
        ("recipient_key_version", -1),
        ("ephemeral_public", "AAAA"),
        ("nonce", "AAAA"),
        ("ciphertext", "AAAA"),
        ("signature", "AAAA"),
    ],
)
def test_wrap_rejects_malformed_members(
    member: str, value: object, alice: Signer, bob: Signer, epoch_key: bytes
) -> None:
    wrap = wrap_epoch_key(epoch_key, CONVERSATION, EPOCH, alice, bob.public)
    with pytest.raises(CryptoError):
        unwrap_epoch_key({**wrap, member: value}, CONVERSATION, EPOCH, alice.public, bob)
    missing = {k: v for k, v in wrap.items() if k != member}
    with pytest.raises(CryptoError):
        unwrap_epoch_key(missing, CONVERSATION, EPOCH, alice.public, bob)


def test_wrap_refuses_bad_arguments(alice: Signer, bob: Signer, epoch_key: bytes) -> None:
    with pytest.raises(CryptoError):
        wrap_epoch_key(epoch_key[:16], CONVERSATION, EPOCH, alice, bob.public)
    with pytest.raises(CryptoError):
        wrap_epoch_key(epoch_key, CONVERSATION, EPOCH, alice, bob.public, nonce=bytes(11))
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(CryptoError):
        wrap_epoch_key(epoch_key, CONVERSATION, EPOCH, alice, bob.public, ephemeral=p384)


def test_new_epoch_key_is_random() -> None:
    assert len(new_epoch_key()) == 32
    assert new_epoch_key() != new_epoch_key()


# --------------------------------------------------------------------------- envelopes

CONTENT: dict[str, object] = {"type": "text", "text": 'héllo 👋 "world"'}


def test_envelope_round_trip(alice: Signer, epoch_key: bytes) -> None:
    envelope = encrypt_envelope(CONTENT, CONVERSATION, EPOCH, epoch_key, alice)
    assert list(envelope) == [
        "v",
        "suite",
        "conversation_id",
        "epoch",
        "message_id",
        "sender_id",
        "sender_key_version",
        "nonce",
        "ciphertext",
        "signature",
    ]
    assert envelope["v"] == PROTOCOL_VERSION
    assert envelope["suite"] == SUITE
    assert UUID_RE.fullmatch(str(envelope["message_id"]))
    assert len(b64decode(str(envelope["signature"]))) == 64
    # Ciphertext is the compact UTF-8 JSON plus the 16-byte tag.
    plaintext = json.dumps(CONTENT, separators=(",", ":"), ensure_ascii=False).encode()
    assert len(b64decode(str(envelope["ciphertext"]))) == len(plaintext) + 16
    assert decrypt_envelope(envelope, epoch_key, alice.public) == CONTENT
    # A stored message carries seq and server_time as well; they are not signed.
    stored = {**envelope, "seq": 7, "server_time": "2026-11-25T16:48:31.123Z"}
    assert decrypt_envelope(stored, epoch_key, alice.public) == CONTENT


def test_envelope_fixed_message_id_and_nonce(alice: Signer, epoch_key: bytes) -> None:
    mid = str(uuid.uuid4())
    one = encrypt_envelope(
        CONTENT, CONVERSATION, EPOCH, epoch_key, alice, message_id=mid, nonce=bytes(12)
    )
    two = encrypt_envelope(
        CONTENT, CONVERSATION, EPOCH, epoch_key, alice, message_id=mid, nonce=bytes(12)
    )
    assert one["message_id"] == mid
    assert one["ciphertext"] == two["ciphertext"]
    aad = message_aad(CONVERSATION, EPOCH, mid, alice.user_id, 1)
    signed = envelope_signed_data(aad, bytes(12), b64decode(str(one["ciphertext"])))
    verify(alice.public.ecdsa_public, b64decode(str(one["signature"])), signed)


ENVELOPE_TAMPERING: dict[str, Callable[[dict[str, object]], object]] = {
    "conversation_id": lambda e: str(uuid.uuid4()),
    "epoch": lambda e: EPOCH + 1,
    "message_id": lambda e: str(uuid.uuid4()),
    "sender_id": lambda e: str(uuid.uuid4()),
    "sender_key_version": lambda e: 2,
    "nonce": lambda e: flip_b64(e["nonce"]),
    "ciphertext": lambda e: flip_b64(e["ciphertext"], 3),
    "signature": lambda e: flip_b64(e["signature"], 40),
    "v": lambda e: 2,
    "suite": lambda e: "p384-v1",
}


@pytest.mark.parametrize("member", sorted(ENVELOPE_TAMPERING))
def test_envelope_tampering_fails(member: str, alice: Signer, epoch_key: bytes) -> None:
    envelope = encrypt_envelope(CONTENT, CONVERSATION, EPOCH, epoch_key, alice)
    tampered = {**envelope, member: ENVELOPE_TAMPERING[member](envelope)}
    with pytest.raises(CryptoError):
        decrypt_envelope(tampered, epoch_key, alice.public)


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("v", True),
        ("v", "1"),
        ("epoch", True),
        ("epoch", 3.0),
        ("sender_key_version", None),
        ("conversation_id", 5),
        ("nonce", "AAAA"),
        ("ciphertext", "AAAA"),
        ("signature", "AAAA"),
        ("signature", 1),
    ],
)
def test_envelope_rejects_malformed_members(
    member: str, value: object, alice: Signer, epoch_key: bytes
) -> None:
    envelope = encrypt_envelope(CONTENT, CONVERSATION, EPOCH, epoch_key, alice)
    with pytest.raises(CryptoError):
        decrypt_envelope({**envelope, member: value}, epoch_key, alice.public)
    missing = {k: v for k, v in envelope.items() if k != member}
    with pytest.raises(CryptoError):
        decrypt_envelope(missing, epoch_key, alice.public)


def test_envelope_wrong_epoch_key_fails(alice: Signer, epoch_key: bytes) -> None:
    envelope = encrypt_envelope(CONTENT, CONVERSATION, EPOCH, epoch_key, alice)
    with pytest.raises(CryptoError):
        decrypt_envelope(envelope, new_epoch_key(), alice.public)
    with pytest.raises(CryptoError):
        decrypt_envelope(envelope, epoch_key[:31], alice.public)


def test_envelope_wrong_sender_fails(alice: Signer, bob: Signer, epoch_key: bytes) -> None:
    envelope = encrypt_envelope(CONTENT, CONVERSATION, EPOCH, epoch_key, alice)
    with pytest.raises(CryptoError):
        decrypt_envelope(envelope, epoch_key, bob.public)
    # Right signing key, but the directory entry is for someone else / another version.
    alias = PublicKeys(bob.user_id, 1, alice.public.ecdh_public, alice.public.ecdsa_public)
    with pytest.raises(CryptoError):
        decrypt_envelope(envelope, epoch_key, alias)
    other_version = PublicKeys(
        alice.user_id, 2, alice.public.ecdh_public, alice.public.ecdsa_public
    )
    with pytest.raises(CryptoError):
        decrypt_envelope(envelope, epoch_key, other_version)


def test_envelope_forged_by_member_fails(alice: Signer, bob: Signer, epoch_key: bytes) -> None:
    # Bob knows the epoch key and claims to be Alice: the signature gives him away.
    impostor = Signer(alice.user_id, 1, bob.identity)
    forged = encrypt_envelope(CONTENT, CONVERSATION, EPOCH, epoch_key, impostor)
    with pytest.raises(CryptoError):
        decrypt_envelope(forged, epoch_key, alice.public)


def _signed_envelope(sender: Signer, epoch_key: bytes, plaintext: bytes) -> dict[str, object]:
    """A validly signed envelope around arbitrary plaintext bytes."""
    mid, nonce = str(uuid.uuid4()), bytes(12)
    aad = message_aad(CONVERSATION, EPOCH, mid, sender.user_id, sender.key_version)
    ciphertext = AESGCM(epoch_key).encrypt(nonce, plaintext, aad)
    signature = sign(sender.identity.ecdsa_private, envelope_signed_data(aad, nonce, ciphertext))
    return {
        "v": 1,
        "suite": SUITE,
        "conversation_id": CONVERSATION,
        "epoch": EPOCH,
        "message_id": mid,
        "sender_id": sender.user_id,
        "sender_key_version": sender.key_version,
        "nonce": b64encode(nonce),
        "ciphertext": b64encode(ciphertext),
        "signature": b64encode(signature),
    }


@pytest.mark.parametrize(
    "plaintext", [b"[1]", b'"text"', b"not json", b"\xff\xfe", b"NaN", b'{"a":NaN}', b"[" * 100_000]
)
def test_envelope_content_must_be_a_json_object(
    plaintext: bytes, alice: Signer, epoch_key: bytes
) -> None:
    envelope = _signed_envelope(alice, epoch_key, plaintext)
    with pytest.raises(CryptoError):
        decrypt_envelope(envelope, epoch_key, alice.public)


def test_envelope_accepts_any_member_order(alice: Signer, epoch_key: bytes) -> None:
    envelope = _signed_envelope(alice, epoch_key, b'{ "text": "x", "type": "text" }')
    assert decrypt_envelope(envelope, epoch_key, alice.public) == {"type": "text", "text": "x"}


def test_encrypt_envelope_refuses_bad_arguments(alice: Signer, epoch_key: bytes) -> None:
    with pytest.raises(CryptoError):
        encrypt_envelope({"type": "text", "x": object()}, CONVERSATION, EPOCH, epoch_key, alice)
    with pytest.raises(CryptoError):
        encrypt_envelope({"type": "text", "x": float("nan")}, CONVERSATION, EPOCH, epoch_key, alice)
    with pytest.raises(CryptoError):
        encrypt_envelope({"type": "text", "text": "\ud800"}, CONVERSATION, EPOCH, epoch_key, alice)
    with pytest.raises(CryptoError):
        encrypt_envelope(CONTENT, CONVERSATION, EPOCH, bytes(16), alice)
    with pytest.raises(CryptoError):
        encrypt_envelope(CONTENT, CONVERSATION, EPOCH, epoch_key, alice, nonce=bytes(16))

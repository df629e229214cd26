"""Cryptographic core of suite ``p256-v1`` (docs/protocol.md sections 3 to 5).

Everything here is pure computation: no I/O besides the operating system's CSPRNG. Every
failure caused by data from the outside (a bad signature, a failed decryption, a malformed
field, a key on the wrong curve) raises :class:`CryptoError` with a short message that does
not tell an attacker which check failed in detail.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NoReturn

from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from securechat.client.encoding import b64decode, b64encode, lp
from securechat.protocol import (
    EPOCH_KEY_BYTES,
    GCM_TAG_BYTES,
    HKDF_INFO_AUTH,
    HKDF_INFO_EPOCH_WRAP,
    HKDF_INFO_WRAP,
    KDF_ITERATIONS,
    KDF_SALT_BYTES,
    LABEL_EPOCH_KEY,
    LABEL_KEY_BLOB,
    LABEL_MESSAGE,
    MASTER_KEY_BYTES,
    NONCE_BYTES,
    P256_PUBLIC_BYTES,
    P256_SIGNATURE_BYTES,
    PROTOCOL_VERSION,
    SUITE,
    UUID_RE,
)

# HKDF output and AES-256 key size; every symmetric key of the suite is 32 bytes.
_KEY_BYTES = 32
# Section 4.1: HKDF for auth_key/wrap_key uses an all-zero salt of the hash length.
_HKDF_ZERO_SALT = bytes(32)
# Half of an IEEE P1363 signature: one scalar (r or s) of P-256.
_SCALAR_BYTES = P256_SIGNATURE_BYTES // 2
# The members of the key blob's plaintext JSON (section 4.2), in the order we write them.
_BLOB_MEMBERS = ("ecdh_private", "ecdsa_private")


class CryptoError(Exception):
    """A verification, decryption or parsing step failed; the data must not be used."""


# --------------------------------------------------------------------------- helpers


def require_bytes(value: object, length: int, what: str) -> bytes:
    """Return ``value`` if it is bytes of exactly ``length``; CryptoError otherwise."""
    if not isinstance(value, bytes) or len(value) != length:
        raise CryptoError(f"{what} must be {length} bytes")
    return value


def field_b64(
    obj: Mapping[str, object], name: str, *, length: int | None = None, min_length: int = 0
) -> bytes:
    """Decode the base64 member ``name`` of a JSON object received from outside."""
    value = obj.get(name)
    if not isinstance(value, str):
        raise CryptoError(f"malformed {name}")
    try:
        data = b64decode(value, field=name, length=length)
    except ValueError:
        raise CryptoError(f"malformed {name}") from None
    if len(data) < min_length:
        raise CryptoError(f"malformed {name}")
    return data


def field_str(obj: Mapping[str, object], name: str) -> str:
    """Return the string member ``name``; CryptoError if missing or not a string."""
    value = obj.get(name)
    if not isinstance(value, str):
        raise CryptoError(f"malformed {name}")
    return value


def field_int(obj: Mapping[str, object], name: str) -> int:
    """Return the non-negative integer member ``name`` (a JSON bool is not an integer)."""
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CryptoError(f"malformed {name}")
    return value


def nonce_or_random(nonce: bytes | None) -> bytes:
    """Return a caller-fixed nonce (test vectors only) or 12 fresh random bytes."""
    if nonce is None:
        return os.urandom(NONCE_BYTES)
    return require_bytes(nonce, NONCE_BYTES, "nonce")


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) with a 32-byte output."""
    return HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=salt, info=info).derive(ikm)


def _check_p256(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> None:
    """Refuse keys on any curve other than P-256 (suite p256-v1 knows no other)."""
    if not isinstance(key.curve, ec.SECP256R1):
        raise CryptoError("key is not on P-256")


# --------------------------------------------------------------------------- key encodings


def public_key_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    """Uncompressed SEC1 encoding (0x04 || X || Y), 65 bytes."""
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def load_public_key(data: bytes) -> ec.EllipticCurvePublicKey:
    """Load an uncompressed P-256 point, refusing anything that is not on the curve."""
    if not isinstance(data, bytes) or len(data) != P256_PUBLIC_BYTES or data[0] != 0x04:
        raise CryptoError("malformed public key")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
    except ValueError:
        raise CryptoError("malformed public key") from None


def private_key_pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS #8 DER, unencrypted (the key blob's AES-GCM layer is the protection)."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key_pkcs8(data: bytes) -> ec.EllipticCurvePrivateKey:
    """Load a PKCS #8 DER private key and make sure it is a P-256 key."""
    try:
        key = serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CryptoError("malformed private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CryptoError("malformed private key")
    _check_p256(key)
    return key


# --------------------------------------------------------------------------- AEAD and JSON


def aes_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM; the 16-byte tag is appended to the returned ciphertext."""
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aes_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM decryption; any authentication failure becomes CryptoError."""
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise CryptoError("decryption failed") from None


def _reject_constant(name: str) -> NoReturn:
    """json.loads hook: NaN and Infinity are not JSON, so a peer must not send them."""
    raise ValueError(f"invalid JSON constant {name}")


def _loads_object(data: bytes) -> dict[str, object]:
    """Parse UTF-8 JSON that must be an object; CryptoError otherwise."""
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    # ValueError covers UnicodeDecodeError and JSONDecodeError; absurd nesting recurses.
    except (ValueError, RecursionError):
        raise CryptoError("malformed plaintext") from None
    if not isinstance(value, dict):
        raise CryptoError("malformed plaintext")
    return value


def encode_json(value: Mapping[str, object]) -> bytes:
    """Compact UTF-8 JSON, like JavaScript's JSON.stringify (no spaces, no \\u escapes)."""
    try:
        text = json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        # A lone surrogate cannot be UTF-8: encoding fails here (UnicodeEncodeError).
        return text.encode("utf-8")
    except (TypeError, ValueError):
        raise CryptoError("content is not JSON-serializable") from None


# --------------------------------------------------------------------------- signatures


def sign(private: ec.EllipticCurvePrivateKey, data: bytes, *, deterministic: bool = False) -> bytes:
    """ECDSA-P256-SHA256 signature of ``data`` as IEEE P1363 ``r || s`` (64 bytes).

    ``deterministic`` selects RFC 6979 nonces; only the test-vector generator uses it, so the
    vectors file regenerates byte for byte. Both kinds verify identically.
    """
    _check_p256(private)
    der = private.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=deterministic))
    # cryptography speaks DER; Web Crypto and the wire format speak fixed-width r || s.
    r, s = decode_dss_signature(der)
    return r.to_bytes(_SCALAR_BYTES, "big") + s.to_bytes(_SCALAR_BYTES, "big")


def verify(public_bytes: bytes, signature: bytes, data: bytes) -> None:
    """Verify a P1363 ECDSA-P256-SHA256 signature; CryptoError unless it is valid."""
    if not isinstance(signature, bytes) or len(signature) != P256_SIGNATURE_BYTES:
        raise CryptoError("invalid signature")
    key = load_public_key(public_bytes)
    r = int.from_bytes(signature[:_SCALAR_BYTES], "big")
    s = int.from_bytes(signature[_SCALAR_BYTES:], "big")
    try:
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise CryptoError("invalid signature") from None


# --------------------------------------------------------------------------- key derivation


@dataclass(frozen=True)
class DerivedKeys:
    """The keys derived from a password (section 4.1). Secrets stay out of ``repr``."""

    master_key: bytes = field(repr=False)
    auth_key: bytes = field(repr=False)
    wrap_key: bytes = field(repr=False)


def derive_keys(
    password: str, salt: bytes, iterations: int, *, min_iterations: int = KDF_ITERATIONS
) -> DerivedKeys:
    """Derive ``master_key``, ``auth_key`` and ``wrap_key`` from a password (section 4.1).

    ``iterations`` comes from the server; refusing fewer than ``min_iterations`` stops a
    malicious server from talking the client into a cheap derivation. Only tests lower it.
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int):
        raise CryptoError("iterations must be an integer")
    if iterations < max(min_iterations, 1):
        raise CryptoError(f"refusing {iterations} KDF iterations (minimum {min_iterations})")
    if not isinstance(password, str):
        raise CryptoError("password must be a str")
    # Section 4.1 salts are 16 random bytes; a short or empty one invites precomputed tables.
    if not isinstance(salt, bytes) or len(salt) < KDF_SALT_BYTES:
        raise CryptoError(f"salt must be at least {KDF_SALT_BYTES} bytes")
    # NFC so that "é" typed as one code point or as e + combining accent gives the same key.
    secret = unicodedata.normalize("NFC", password).encode("utf-8")
    master = hashlib.pbkdf2_hmac("sha256", secret, salt, iterations, dklen=MASTER_KEY_BYTES)
    return DerivedKeys(
        master_key=master,
        auth_key=_hkdf(master, _HKDF_ZERO_SALT, HKDF_INFO_AUTH),
        wrap_key=_hkdf(master, _HKDF_ZERO_SALT, HKDF_INFO_WRAP),
    )


# --------------------------------------------------------------------------- identity keys


@dataclass(frozen=True)
class PublicKeys:
    """One key version of a user as published in the key directory."""

    user_id: str
    key_version: int
    ecdh_public: bytes
    ecdsa_public: bytes

    @property
    def identity_bytes(self) -> bytes:
        """``ecdsa_public || ecdh_public``, the identity hashed into safety numbers."""
        return self.ecdsa_public + self.ecdh_public

    @classmethod
    def from_json(cls, user_id: str, key_version: int, keys: Mapping[str, object]) -> PublicKeys:
        """Read ``{"suite", "ecdh_public", "ecdsa_public"}`` for ``user_id``/``key_version``.

        Both points are checked to be on P-256. If the object also names a ``user_id`` or
        ``key_version`` (the key-directory answer does), they must be the ones asked for.
        """
        if not isinstance(user_id, str) or not UUID_RE.fullmatch(user_id):
            raise CryptoError("malformed user_id")
        if isinstance(key_version, bool) or not isinstance(key_version, int) or key_version < 1:
            raise CryptoError("malformed key_version")
        if keys.get("suite") != SUITE:
            raise CryptoError("unsupported suite")
        if keys.get("user_id", user_id) != user_id:
            raise CryptoError("keys belong to another user")
        if keys.get("key_version", key_version) != key_version:
            raise CryptoError("keys belong to another key version")
        ecdh = field_b64(keys, "ecdh_public", length=P256_PUBLIC_BYTES)
        ecdsa = field_b64(keys, "ecdsa_public", length=P256_PUBLIC_BYTES)
        load_public_key(ecdh)
        load_public_key(ecdsa)
        return cls(user_id=user_id, key_version=key_version, ecdh_public=ecdh, ecdsa_public=ecdsa)

    def to_json(self) -> dict[str, str]:
        """The ``keys`` object of registration and the key directory."""
        return {
            "suite": SUITE,
            "ecdh_public": b64encode(self.ecdh_public),
            "ecdsa_public": b64encode(self.ecdsa_public),
        }


@dataclass(frozen=True)
class IdentityKeys:
    """A user's two private keys of one key version: ECDH (receive wraps), ECDSA (sign)."""

    ecdh_private: ec.EllipticCurvePrivateKey
    ecdsa_private: ec.EllipticCurvePrivateKey

    def __post_init__(self) -> None:
        _check_p256(self.ecdh_private)
        _check_p256(self.ecdsa_private)

    @classmethod
    def generate(cls) -> IdentityKeys:
        """Two fresh, independent P-256 key pairs."""
        return cls(
            ecdh_private=ec.generate_private_key(ec.SECP256R1()),
            ecdsa_private=ec.generate_private_key(ec.SECP256R1()),
        )

    @property
    def ecdh_public_bytes(self) -> bytes:
        """The ECDH public key as an uncompressed point."""
        return public_key_bytes(self.ecdh_private.public_key())

    @property
    def ecdsa_public_bytes(self) -> bytes:
        """The ECDSA public key as an uncompressed point."""
        return public_key_bytes(self.ecdsa_private.public_key())

    def public(self, user_id: str, key_version: int) -> PublicKeys:
        """The public half, labelled with its owner and key version."""
        return PublicKeys(
            user_id=user_id,
            key_version=key_version,
            ecdh_public=self.ecdh_public_bytes,
            ecdsa_public=self.ecdsa_public_bytes,
        )


@dataclass(frozen=True)
class Signer:
    """The local party: who we are, which key version, and its private keys."""

    user_id: str
    key_version: int
    identity: IdentityKeys

    @property
    def public(self) -> PublicKeys:
        """Our own public keys, as the key directory should list them."""
        return self.identity.public(self.user_id, self.key_version)


# --------------------------------------------------------------------------- associated data


def key_blob_aad(user_id: str, key_version: int) -> bytes:
    """AAD of the key blob (section 4.2)."""
    return lp(LABEL_KEY_BLOB, user_id, key_version)


def epoch_wrap_aad(
    conversation_id: str,
    epoch: int,
    *,
    wrapper_id: str,
    wrapper_key_version: int,
    recipient_id: str,
    recipient_key_version: int,
) -> bytes:
    """AAD of an epoch-key wrap (section 5.1); the parties are keyword-only to avoid mix-ups."""
    return lp(
        LABEL_EPOCH_KEY,
        conversation_id,
        epoch,
        wrapper_id,
        wrapper_key_version,
        recipient_id,
        recipient_key_version,
    )


def message_aad(
    conversation_id: str, epoch: int, message_id: str, sender_id: str, sender_key_version: int
) -> bytes:
    """AAD of a message envelope (section 5.2)."""
    return lp(LABEL_MESSAGE, conversation_id, epoch, message_id, sender_id, sender_key_version)


def wrap_signed_data(aad: bytes, ephemeral_public: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    """The bytes a wrapper signs: ``LP(aad) || LP(eph.public) || LP(nonce) || LP(ciphertext)``."""
    return lp(aad, ephemeral_public, nonce, ciphertext)


def envelope_signed_data(aad: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    """The bytes a sender signs: ``LP(aad) || LP(nonce) || LP(ciphertext)``."""
    return lp(aad, nonce, ciphertext)


# --------------------------------------------------------------------------- key blob


def key_blob_plaintext(identity: IdentityKeys) -> bytes:
    """The key blob's plaintext as this client writes it: compact JSON, ECDH key first."""
    members = (identity.ecdh_private, identity.ecdsa_private)
    return encode_json(
        {
            name: b64encode(private_key_pkcs8(k))
            for name, k in zip(_BLOB_MEMBERS, members, strict=True)
        }
    )


def seal_key_blob(
    wrap_key: bytes,
    user_id: str,
    key_version: int,
    identity: IdentityKeys,
    *,
    nonce: bytes | None = None,
) -> dict[str, str]:
    """Encrypt the private keys under ``wrap_key`` into ``{"nonce", "ciphertext"}`` (4.2)."""
    key = require_bytes(wrap_key, _KEY_BYTES, "wrap_key")
    iv = nonce_or_random(nonce)
    plaintext = key_blob_plaintext(identity)
    ciphertext = aes_encrypt(key, iv, plaintext, key_blob_aad(user_id, key_version))
    return {"nonce": b64encode(iv), "ciphertext": b64encode(ciphertext)}


def open_key_blob(
    wrap_key: bytes, user_id: str, key_version: int, blob: Mapping[str, object]
) -> IdentityKeys:
    """Decrypt a key blob; CryptoError for a wrong password, owner, version or bad content."""
    key = require_bytes(wrap_key, _KEY_BYTES, "wrap_key")
    iv = field_b64(blob, "nonce", length=NONCE_BYTES)
    ciphertext = field_b64(blob, "ciphertext", min_length=GCM_TAG_BYTES)
    content = _loads_object(aes_decrypt(key, iv, ciphertext, key_blob_aad(user_id, key_version)))
    # The object has exactly these two members (section 4.2); anything else is not ours.
    if set(content) != set(_BLOB_MEMBERS):
        raise CryptoError("malformed key blob")
    ecdh, ecdsa = (load_private_key_pkcs8(field_b64(content, name)) for name in _BLOB_MEMBERS)
    return IdentityKeys(ecdh_private=ecdh, ecdsa_private=ecdsa)


# --------------------------------------------------------------------------- epoch keys


def new_epoch_key() -> bytes:
    """A fresh random 32-byte epoch key."""
    return os.urandom(EPOCH_KEY_BYTES)


def ecdh_shared_secret(private: ec.EllipticCurvePrivateKey, peer_public: bytes) -> bytes:
    """ECDH on P-256: the 32-byte X coordinate of ``private * peer_public``."""
    _check_p256(private)
    return private.exchange(ec.ECDH(), load_public_key(peer_public))


def derive_wrap_kek(shared: bytes, ephemeral_public: bytes, recipient_ecdh_public: bytes) -> bytes:
    """The key-encryption key of a wrap: HKDF over the ECDH secret, salted with both points.

    Salting with both public keys binds the KEK to this exact ephemeral/recipient pair.
    """
    return _hkdf(shared, ephemeral_public + recipient_ecdh_public, HKDF_INFO_EPOCH_WRAP)


def wrap_epoch_key(
    epoch_key: bytes,
    conversation_id: str,
    epoch: int,
    wrapper: Signer,
    recipient: PublicKeys,
    *,
    ephemeral: ec.EllipticCurvePrivateKey | None = None,
    nonce: bytes | None = None,
) -> dict[str, object]:
    """Wrap ``epoch_key`` for ``recipient`` and sign it as ``wrapper`` (section 5.1).

    ``ephemeral`` and ``nonce`` are fixed only by the test-vector generator.
    """
    require_bytes(epoch_key, EPOCH_KEY_BYTES, "epoch_key")
    eph = ec.generate_private_key(ec.SECP256R1()) if ephemeral is None else ephemeral
    _check_p256(eph)
    iv = nonce_or_random(nonce)
    eph_public = public_key_bytes(eph.public_key())
    shared = ecdh_shared_secret(eph, recipient.ecdh_public)
    kek = derive_wrap_kek(shared, eph_public, recipient.ecdh_public)
    aad = epoch_wrap_aad(
        conversation_id,
        epoch,
        wrapper_id=wrapper.user_id,
        wrapper_key_version=wrapper.key_version,
        recipient_id=recipient.user_id,
        recipient_key_version=recipient.key_version,
    )
    ciphertext = aes_encrypt(kek, iv, epoch_key, aad)
    signature = sign(
        wrapper.identity.ecdsa_private, wrap_signed_data(aad, eph_public, iv, ciphertext)
    )
    return {
        "recipient_id": recipient.user_id,
        "recipient_key_version": recipient.key_version,
        "ephemeral_public": b64encode(eph_public),
        "nonce": b64encode(iv),
        "ciphertext": b64encode(ciphertext),
        "signature": b64encode(signature),
    }


def unwrap_epoch_key(
    wrap: Mapping[str, object],
    conversation_id: str,
    epoch: int,
    wrapper: PublicKeys,
    me: Signer,
) -> bytes:
    """Verify and open a wrap addressed to ``me``; return the 32-byte epoch key.

    ``wrapper`` must be the wrapper's keys of the epoch's ``wrapper_key_version``, taken from
    the key directory. The signature is checked before any use of the ciphertext.
    """
    recipient_id = field_str(wrap, "recipient_id")
    recipient_key_version = field_int(wrap, "recipient_key_version")
    eph_public = field_b64(wrap, "ephemeral_public", length=P256_PUBLIC_BYTES)
    iv = field_b64(wrap, "nonce", length=NONCE_BYTES)
    ciphertext = field_b64(wrap, "ciphertext", length=EPOCH_KEY_BYTES + GCM_TAG_BYTES)
    signature = field_b64(wrap, "signature", length=P256_SIGNATURE_BYTES)
    aad = epoch_wrap_aad(
        conversation_id,
        epoch,
        wrapper_id=wrapper.user_id,
        wrapper_key_version=wrapper.key_version,
        recipient_id=recipient_id,
        recipient_key_version=recipient_key_version,
    )
    verify(wrapper.ecdsa_public, signature, wrap_signed_data(aad, eph_public, iv, ciphertext))
    if recipient_id != me.user_id or recipient_key_version != me.key_version:
        raise CryptoError("wrap is addressed to someone else")
    shared = ecdh_shared_secret(me.identity.ecdh_private, eph_public)
    kek = derive_wrap_kek(shared, eph_public, me.identity.ecdh_public_bytes)
    return aes_decrypt(kek, iv, ciphertext, aad)


# --------------------------------------------------------------------------- envelopes


def encrypt_envelope(
    content: Mapping[str, object],
    conversation_id: str,
    epoch: int,
    epoch_key: bytes,
    sender: Signer,
    *,
    message_id: str | None = None,
    nonce: bytes | None = None,
) -> dict[str, object]:
    """Encrypt and sign ``content`` into a message envelope (section 5.2).

    ``message_id`` defaults to a fresh UUID v4; re-sending after a lost ack must reuse the
    returned envelope unchanged rather than calling this again.
    """
    key = require_bytes(epoch_key, EPOCH_KEY_BYTES, "epoch_key")
    mid = str(uuid.uuid4()) if message_id is None else message_id
    iv = nonce_or_random(nonce)
    aad = message_aad(conversation_id, epoch, mid, sender.user_id, sender.key_version)
    ciphertext = aes_encrypt(key, iv, encode_json(content), aad)
    signature = sign(sender.identity.ecdsa_private, envelope_signed_data(aad, iv, ciphertext))
    return {
        "v": PROTOCOL_VERSION,
        "suite": SUITE,
        "conversation_id": conversation_id,
        "epoch": epoch,
        "message_id": mid,
        "sender_id": sender.user_id,
        "sender_key_version": sender.key_version,
        "nonce": b64encode(iv),
        "ciphertext": b64encode(ciphertext),
        "signature": b64encode(signature),
    }


def decrypt_envelope(
    envelope: Mapping[str, object], epoch_key: bytes, sender: PublicKeys
) -> dict[str, object]:
    """Verify and decrypt an envelope; return its content object.

    ``sender`` must be the keys of the envelope's ``sender_id``/``sender_key_version`` from
    the key directory. Members other than the envelope's (``seq``, ``server_time``) are ignored.
    """
    key = require_bytes(epoch_key, EPOCH_KEY_BYTES, "epoch_key")
    conversation_id = field_str(envelope, "conversation_id")
    epoch = field_int(envelope, "epoch")
    message_id = field_str(envelope, "message_id")
    sender_id = field_str(envelope, "sender_id")
    sender_key_version = field_int(envelope, "sender_key_version")
    iv = field_b64(envelope, "nonce", length=NONCE_BYTES)
    ciphertext = field_b64(envelope, "ciphertext", min_length=GCM_TAG_BYTES)
    signature = field_b64(envelope, "signature", length=P256_SIGNATURE_BYTES)
    aad = message_aad(conversation_id, epoch, message_id, sender_id, sender_key_version)
    verify(sender.ecdsa_public, signature, envelope_signed_data(aad, iv, ciphertext))
    # The signature proves who signed; these checks make sure it is who the envelope claims.
    if sender_id != sender.user_id or sender_key_version != sender.key_version:
        raise CryptoError("envelope sender does not match the signing key")
    if field_int(envelope, "v") != PROTOCOL_VERSION or envelope.get("suite") != SUITE:
        raise CryptoError("unsupported envelope version")
    return _loads_object(aes_decrypt(key, iv, ciphertext, aad))

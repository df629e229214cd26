"""Wire shapes of requests and events (docs/protocol.md), validated with pydantic.

Binary fields arrive as strict base64 and leave validation as bytes of the exact length
the protocol requires. Every model forbids unknown members and implicit type coercion.
"""

from __future__ import annotations

import base64
import binascii
import unicodedata
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from securechat.protocol import (
    AUTH_KEY_BYTES,
    EPOCH_KEY_BYTES,
    GCM_TAG_BYTES,
    GROUP_MAX_MEMBERS,
    KDF_NAME,
    KDF_SALT_BYTES,
    NONCE_BYTES,
    P256_PUBLIC_BYTES,
    P256_SIGNATURE_BYTES,
    PROTOCOL_VERSION,
    SUITE,
    TITLE_MAX_CHARS,
    USERNAME_RE,
    UUID_RE,
)

KEY_BLOB_MAX_BYTES = 4096
SYNC_MAX_CONVERSATIONS = 1000
MAX_INT = 2**53 - 1


def _base64_decoder(min_bytes: int, max_bytes: int) -> BeforeValidator:
    def decode(value: Any) -> bytes:
        if not isinstance(value, str):
            raise ValueError("must be a base64 string")  # noqa: TRY004 - pydantic wants ValueError
        # Bound the work before decoding: 4 characters carry 3 bytes.
        if len(value) > 4 * ((max_bytes + 2) // 3):
            raise ValueError(f"must decode to at most {max_bytes} bytes")
        try:
            data = base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise ValueError("must be standard base64 with padding") from None
        if not min_bytes <= len(data) <= max_bytes:
            size = f"{min_bytes}" if min_bytes == max_bytes else f"{min_bytes} to {max_bytes}"
            raise ValueError(f"must decode to {size} bytes, got {len(data)}")
        return data

    return BeforeValidator(decode)


def Base64(min_bytes: int, max_bytes: int | None = None) -> Any:  # noqa: N802 - a type factory
    """A base64 string in JSON, bytes of a bounded length in Python."""
    high = min_bytes if max_bytes is None else max_bytes
    return Annotated[
        bytes,
        _base64_decoder(min_bytes, high),
        WithJsonSchema(
            {
                "type": "string",
                "format": "byte",
                "description": f"base64, {min_bytes}..{high} bytes",
            }
        ),
    ]


def _p256_point(data: bytes) -> bytes:
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
    except ValueError:
        raise ValueError("is not an uncompressed P-256 point") from None
    if data[0] != 4:
        raise ValueError("must be an uncompressed point (0x04 || X || Y)")
    return data


def _no_control_characters(text: str) -> str:
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in text):
        raise ValueError("must not contain control or formatting characters")
    if text.strip() != text or not text:
        raise ValueError("must not be empty or start or end with white space")
    return text


Uuid = Annotated[str, StringConstraints(pattern=UUID_RE.pattern)]
Username = Annotated[str, StringConstraints(pattern=USERNAME_RE.pattern)]
Title = Annotated[
    str,
    StringConstraints(min_length=1, max_length=TITLE_MAX_CHARS),
    AfterValidator(_no_control_characters),
]
PositiveInt = Annotated[int, Field(ge=1, le=MAX_INT)]
Seq = Annotated[int, Field(ge=0, le=MAX_INT)]
Nonce = Base64(NONCE_BYTES)
Signature = Base64(P256_SIGNATURE_BYTES)
PublicPoint = Annotated[Base64(P256_PUBLIC_BYTES), AfterValidator(_p256_point)]


class Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PreloginRequest(Shape):
    username: Username


class KdfParams(Shape):
    name: Literal["pbkdf2-sha256"] = KDF_NAME
    iterations: Annotated[int, Field(ge=1000, le=10_000_000)]
    salt: Base64(KDF_SALT_BYTES)


class PublicKeysIn(Shape):
    suite: Literal["p256-v1"] = SUITE
    ecdh_public: PublicPoint
    ecdsa_public: PublicPoint


class KeyBlob(Shape):
    nonce: Nonce
    ciphertext: Base64(GCM_TAG_BYTES + 2, KEY_BLOB_MAX_BYTES)


class RegisterRequest(Shape):
    user_id: Uuid
    username: Username
    auth_key: Base64(AUTH_KEY_BYTES)
    kdf: KdfParams
    keys: PublicKeysIn
    key_blob: KeyBlob


class LoginRequest(Shape):
    username: Username
    auth_key: Base64(AUTH_KEY_BYTES)


class KeyChangeRequest(Shape):
    key_version: PositiveInt
    keys: PublicKeysIn
    key_blob: KeyBlob


class PasswordChangeRequest(Shape):
    auth_key: Base64(AUTH_KEY_BYTES)
    new_auth_key: Base64(AUTH_KEY_BYTES)
    kdf: KdfParams
    key_blob: KeyBlob


class WrappedKey(Shape):
    recipient_id: Uuid
    recipient_key_version: PositiveInt
    ephemeral_public: PublicPoint
    nonce: Nonce
    ciphertext: Base64(EPOCH_KEY_BYTES + GCM_TAG_BYTES)
    signature: Signature


MemberList = Annotated[list[Uuid], Field(min_length=1, max_length=GROUP_MAX_MEMBERS)]
WrapList = Annotated[list[WrappedKey], Field(min_length=1, max_length=GROUP_MAX_MEMBERS)]


class CreateConversationRequest(Shape):
    id: Uuid
    kind: Literal["direct", "group"]
    title: Title | None = None
    members: MemberList
    epoch_keys: WrapList


class NewEpochRequest(Shape):
    epoch: Annotated[int, Field(ge=2, le=MAX_INT)]
    members: MemberList
    epoch_keys: WrapList


class RenameRequest(Shape):
    title: Title


class RoleRequest(Shape):
    role: Literal["admin", "member"]


class Envelope(Shape):
    v: Literal[1] = PROTOCOL_VERSION
    suite: Literal["p256-v1"] = SUITE
    conversation_id: Uuid
    epoch: PositiveInt
    message_id: Uuid
    sender_id: Uuid
    sender_key_version: PositiveInt
    nonce: Nonce
    # The upper bound is a setting (SECURECHAT_MAX_CIPHERTEXT_BYTES), checked by the service.
    ciphertext: Base64(GCM_TAG_BYTES, 16 << 20)
    signature: Signature


class ReadRequest(Shape):
    conversation_id: Uuid
    seq: Seq


class ConversationRef(Shape):
    conversation_id: Uuid


class EmptyRequest(Shape):
    pass


class SyncRequest(Shape):
    since: Annotated[dict[Uuid, Seq], Field(max_length=SYNC_MAX_CONVERSATIONS)]
    limit: Annotated[int, Field(ge=1, le=500)] = 200


def describe_validation_error(error: ValidationError) -> tuple[str, str]:
    """(field path like `members[2]`, message) of the first problem, for the error body."""
    first = error.errors(include_url=False, include_input=False)[0]
    path = ""
    for part in first["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    message = str(first["msg"]).removeprefix("Value error, ")
    return path or "body", f"{path or 'body'}: {message}"

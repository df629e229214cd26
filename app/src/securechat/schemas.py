"""Wire shapes of requests and events (docs/protocol.md), validated with pydantic.

Binary fields arrive as strict base64 and leave validation as bytes of the exact length
the protocol requires. Every model forbids unknown members and implicit type coercion.
"""

from __future__ import annotations

import base64
import binascii
import unicodedata
from typing import Annotated, Any, Literal, TypeVar

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
    KDF_SALT_BYTES,
    NONCE_BYTES,
    P256_PUBLIC_BYTES,
    P256_SIGNATURE_BYTES,
    TITLE_MAX_CHARS,
    USERNAME_RE,
    UUID_RE,
)
from securechat.services.errors import ServiceError

KEY_BLOB_MAX_BYTES = 4096
MAX_FILES_PER_MESSAGE = 10
WRAP_CIPHERTEXT_BYTES = EPOCH_KEY_BYTES + GCM_TAG_BYTES
MESSAGE_CIPHERTEXT_CEILING = 16 << 20
SYNC_MAX_CONVERSATIONS = 1000
MAX_INT = 2**53 - 1


def _decoded(min_bytes: int, max_bytes: int) -> BeforeValidator:
    """Validator: a strict base64 string in, bytes of a bounded length out."""

    def decode(value: Any) -> bytes:
        if not isinstance(value, str):
            raise ValueError("must be a base64 string")
        # Bound the work before decoding: 4 characters carry 3 bytes.
        if len(value) > 4 * ((max_bytes + 2) // 3):
            raise ValueError(f"must decode to at most {max_bytes} bytes")
        try:
            data = base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise ValueError("must be standard base64 with padding") from None
        if base64.b64encode(data).decode("ascii") != value:
            # One spelling per value: non-zero trailing bits would let ciphertext carry extras.
            raise ValueError("must be canonical base64 (no stray trailing bits)")
        if not min_bytes <= len(data) <= max_bytes:
            size = f"{min_bytes}" if min_bytes == max_bytes else f"{min_bytes} to {max_bytes}"
            raise ValueError(f"must decode to {size} bytes, got {len(data)}")
        return data

    return BeforeValidator(decode)


def _documented(min_bytes: int, max_bytes: int) -> WithJsonSchema:
    size = f"{min_bytes}" if min_bytes == max_bytes else f"{min_bytes} to {max_bytes}"
    return WithJsonSchema(
        {"type": "string", "format": "byte", "description": f"base64 of {size} bytes"}
    )


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
Nonce = Annotated[bytes, _decoded(NONCE_BYTES, NONCE_BYTES), _documented(NONCE_BYTES, NONCE_BYTES)]
Signature = Annotated[
    bytes,
    _decoded(P256_SIGNATURE_BYTES, P256_SIGNATURE_BYTES),
    _documented(P256_SIGNATURE_BYTES, P256_SIGNATURE_BYTES),
]
PublicPoint = Annotated[
    bytes,
    _decoded(P256_PUBLIC_BYTES, P256_PUBLIC_BYTES),
    _documented(P256_PUBLIC_BYTES, P256_PUBLIC_BYTES),
    AfterValidator(_p256_point),
]
AuthKey = Annotated[
    bytes, _decoded(AUTH_KEY_BYTES, AUTH_KEY_BYTES), _documented(AUTH_KEY_BYTES, AUTH_KEY_BYTES)
]
Salt = Annotated[
    bytes, _decoded(KDF_SALT_BYTES, KDF_SALT_BYTES), _documented(KDF_SALT_BYTES, KDF_SALT_BYTES)
]
BlobCiphertext = Annotated[
    bytes,
    _decoded(GCM_TAG_BYTES + 2, KEY_BLOB_MAX_BYTES),
    _documented(GCM_TAG_BYTES + 2, KEY_BLOB_MAX_BYTES),
]
WrapCiphertext = Annotated[
    bytes,
    _decoded(WRAP_CIPHERTEXT_BYTES, WRAP_CIPHERTEXT_BYTES),
    _documented(WRAP_CIPHERTEXT_BYTES, WRAP_CIPHERTEXT_BYTES),
]
# The upper bound that applies is a setting (SECURECHAT_MAX_CIPHERTEXT_BYTES), checked by the
# service; this one only bounds decoding work.
MessageCiphertext = Annotated[
    bytes,
    _decoded(GCM_TAG_BYTES, MESSAGE_CIPHERTEXT_CEILING),
    _documented(GCM_TAG_BYTES, MESSAGE_CIPHERTEXT_CEILING),
]


class Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


ShapeT = TypeVar("ShapeT", bound=Shape)


class PreloginRequest(Shape):
    username: Username


class KdfParams(Shape):
    name: Literal["pbkdf2-sha256"]
    iterations: Annotated[int, Field(ge=1000, le=10_000_000)]
    salt: Salt


class PublicKeysIn(Shape):
    suite: Literal["p256-v1"]
    ecdh_public: PublicPoint
    ecdsa_public: PublicPoint


class KeyBlob(Shape):
    nonce: Nonce
    ciphertext: BlobCiphertext


class RegisterRequest(Shape):
    user_id: Uuid
    username: Username
    auth_key: AuthKey
    kdf: KdfParams
    keys: PublicKeysIn
    key_blob: KeyBlob


class LoginRequest(Shape):
    username: Username
    auth_key: AuthKey


class DeleteAccountRequest(Shape):
    auth_key: AuthKey


class KeyChangeRequest(Shape):
    key_version: PositiveInt
    keys: PublicKeysIn
    key_blob: KeyBlob


class PasswordChangeRequest(Shape):
    auth_key: AuthKey
    new_auth_key: AuthKey
    kdf: KdfParams
    key_blob: KeyBlob


class WrappedKey(Shape):
    recipient_id: Uuid
    recipient_key_version: PositiveInt
    ephemeral_public: PublicPoint
    nonce: Nonce
    ciphertext: WrapCiphertext
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


class AdminRoleRequest(Shape):
    is_admin: bool


class RoleRequest(Shape):
    role: Literal["admin", "member"]


class Envelope(Shape):
    v: Literal[1]
    suite: Literal["p256-v1"]
    conversation_id: Uuid
    epoch: PositiveInt
    message_id: Uuid
    sender_id: Uuid
    sender_key_version: PositiveInt
    nonce: Nonce
    ciphertext: MessageCiphertext
    signature: Signature
    # Ids of files this message shares (section 5.4): lets the server keep and serve them.
    files: Annotated[list[Uuid], Field(max_length=MAX_FILES_PER_MESSAGE)] | None = None


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


def validate(model: type[ShapeT], data: Any) -> ShapeT:
    """Validate `data` as `model`, or raise the 422 `validation_error` naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        field, message = describe_validation_error(error)
        raise ServiceError("validation_error", message, status=422, field=field) from None


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

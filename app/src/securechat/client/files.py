"""Encrypted files (docs/protocol.md section 5.4): chunked AES-256-GCM blobs, streamed.

A file is encrypted under its own random 32-byte ``file_key`` into a *blob*: a sequence of
records ``nonce || AES-256-GCM(file_key, nonce, chunk, aad)``, one per 64 KiB chunk of
plaintext. The associated data binds each record to its position and says whether it is the
last one, so truncation, reordering and appended data all fail authentication. The server
stores the blob without being able to read it; the key travels inside an ordinary encrypted
message (a ``file`` content, built by :func:`file_content` and read by
:func:`parse_file_content`).

Both directions stream: neither holds more than about two chunks (plus the caller's own piece)
in memory, whatever the size of the file. Decrypted chunks are authentic one by one, but the
file as a whole is only known to be complete and unmodified once :func:`decrypt_stream` is
exhausted without error; callers write to a temporary file and keep it only then.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO, Final, cast

from securechat.client.crypto import (
    CryptoError,
    aes_decrypt,
    aes_encrypt,
    field_b64,
    field_int,
    field_str,
    nonce_or_random,
    require_bytes,
)
from securechat.client.encoding import b64encode, lp
from securechat.protocol import (
    FILE_CHUNK_BYTES,
    GCM_TAG_BYTES,
    LABEL_FILE_CHUNK,
    NONCE_BYTES,
    UUID_RE,
)

CHUNK_BYTES: Final = FILE_CHUNK_BYTES
# Every record adds its nonce in front and the GCM tag behind the chunk.
RECORD_OVERHEAD: Final = NONCE_BYTES + GCM_TAG_BYTES
# The size of every record but the last; the last is RECORD_OVERHEAD..RECORD_BYTES bytes.
RECORD_BYTES: Final = CHUNK_BYTES + RECORD_OVERHEAD
FILE_KEY_BYTES: Final = 32
# File names: what common file systems accept as one path component.
NAME_MAX_BYTES: Final = 255
# Section 5.2's limit on a text message applies to a file's caption too.
CAPTION_MAX_CHARS: Final = 16_000
# Sizes are JSON integers, which section 2 keeps within 53 bits.
MAX_FILE_BYTES: Final = 2**53 - 1

_SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}$")
# RFC 6838 restricted-name "/" restricted-name, no parameters.
_MIME_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MIME_RE: Final = re.compile(rf"^{_MIME_NAME}/{_MIME_NAME}$")
# Bidirectional formatting characters turn "evil\u202etxt.exe" into "evilexe.txt" on screen.
_BIDI_CONTROLS: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e") | frozenset(
    "\u2066\u2067\u2068\u2069"
)
_SEPARATORS: Final = re.compile(r"[/\\]")
_FALLBACK_NAME: Final = "file"


def chunk_aad(index: int, last: bool) -> bytes:
    """AAD of chunk ``index`` (0-based): ``LP(label) || LP(decimal(i)) || LP("1"|"0")``."""
    return lp(LABEL_FILE_CHUNK, index, "1" if last else "0")


def encrypted_size(plaintext_size: int) -> int:
    """The exact blob size for a file of ``plaintext_size`` bytes.

    There are ``max(1, ceil(size / CHUNK_BYTES))`` records (an empty file is one empty
    record), each ``RECORD_OVERHEAD`` bytes larger than its chunk.
    """
    if isinstance(plaintext_size, bool) or not isinstance(plaintext_size, int):
        raise TypeError("plaintext_size must be an integer")
    if plaintext_size < 0:
        raise ValueError("plaintext_size must not be negative")
    records = max(1, -(-plaintext_size // CHUNK_BYTES))
    return plaintext_size + records * RECORD_OVERHEAD


# --------------------------------------------------------------------------- encryption


def _pieces(source: BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
    """The source's bytes in pieces: ``read(CHUNK_BYTES)`` for files, iteration otherwise.

    Iterating a binary file would yield "lines", which in binary data can be arbitrarily long.
    """
    if hasattr(source, "read"):
        stream = cast(BinaryIO, source)
        while True:
            piece = stream.read(CHUNK_BYTES)
            if piece is None:  # a non-blocking stream with no data: not a complete file
                raise ValueError("source is a non-blocking stream")
            if not piece:
                return
            yield piece
    else:
        yield from source


class FileEncryptor:
    """Encrypts one file into a blob of records (section 5.4).

    ``file_key`` defaults to 32 fresh random bytes. ``nonces`` fixes the records' nonces and
    exists only for tests and the test-vector generator; it must yield one 12-byte nonce per
    record. An encryptor encrypts a single file: each file gets its own key.
    """

    def __init__(
        self, file_key: bytes | None = None, *, nonces: Iterable[bytes] | None = None
    ) -> None:
        if file_key is None:
            self._key = os.urandom(FILE_KEY_BYTES)
        else:
            self._key = require_bytes(file_key, FILE_KEY_BYTES, "file_key")
        self._nonces = None if nonces is None else iter(nonces)
        self._hash = hashlib.sha256()
        self._plaintext_size = 0
        self._ciphertext_size = 0
        self._started = False
        self._sha256: str | None = None

    @property
    def key(self) -> bytes:
        """The 32-byte file key (it goes, base64-encoded, into the ``file`` content)."""
        return self._key

    @property
    def finished(self) -> bool:
        """Whether :meth:`encrypt_stream`'s iterator has been exhausted."""
        return self._sha256 is not None

    @property
    def sha256(self) -> str:
        """Lowercase hex SHA-256 of the whole blob; RuntimeError until encryption finished."""
        if self._sha256 is None:
            raise RuntimeError("the blob's sha256 is known only after encryption finished")
        return self._sha256

    @property
    def plaintext_size(self) -> int:
        """Plaintext bytes encrypted so far (the file's size once finished)."""
        return self._plaintext_size

    @property
    def ciphertext_size(self) -> int:
        """Blob bytes produced so far (the blob's size once finished)."""
        return self._ciphertext_size

    def encrypt_stream(self, source: BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
        """Return an iterator over the blob's records, reading ``source`` as it goes.

        ``source`` is a binary file object (read in ``CHUNK_BYTES`` pieces) or any iterable
        of byte strings of any sizes. At most one chunk plus the next piece is buffered: a
        chunk is sealed as soon as more data is known to follow it, and the final one is
        sealed as the last when the source ends.
        """
        if self._started:
            raise RuntimeError("a FileEncryptor encrypts one file only")
        self._started = True
        return self._records(source)

    def _records(self, source: BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
        buffer = bytearray()
        index = 0
        for piece in _pieces(source):
            buffer += piece
            # Strictly more than a chunk: only then is this chunk known not to be the last.
            while len(buffer) > CHUNK_BYTES:
                chunk = bytes(buffer[:CHUNK_BYTES])
                del buffer[:CHUNK_BYTES]
                yield self._seal(index, chunk, last=False)
                index += 1
        # 0..CHUNK_BYTES bytes remain: the last chunk (empty only for an empty file).
        yield self._seal(index, bytes(buffer), last=True)
        self._sha256 = self._hash.hexdigest()

    def _seal(self, index: int, chunk: bytes, *, last: bool) -> bytes:
        nonce = self._next_nonce()
        record = nonce + aes_encrypt(self._key, nonce, chunk, chunk_aad(index, last))
        self._hash.update(record)
        self._plaintext_size += len(chunk)
        self._ciphertext_size += len(record)
        return record

    def _next_nonce(self) -> bytes:
        if self._nonces is None:
            return nonce_or_random(None)
        fixed = next(self._nonces, None)
        if fixed is None:
            raise ValueError("ran out of fixed nonces")
        return nonce_or_random(fixed)


# --------------------------------------------------------------------------- decryption


def decrypt_stream(
    records: Iterable[bytes], file_key: bytes, expected_sha256: str | None = None
) -> Iterator[bytes]:
    """Decrypt a blob given in pieces of any sizes; yield the plaintext chunk by chunk.

    The pieces are re-framed into records of ``RECORD_BYTES``; the final record, whatever its
    length, is the last one. Raises CryptoError (while iterating) for an empty or truncated
    blob, reordered or modified records, appended data, a wrong key, or (checked before the
    last chunk is yielded) a blob whose SHA-256 is not ``expected_sha256``. The key and the
    hash are checked for form at once, before iteration starts.
    """
    key = require_bytes(file_key, FILE_KEY_BYTES, "file_key")
    if expected_sha256 is not None and (
        not isinstance(expected_sha256, str) or not _SHA256_RE.fullmatch(expected_sha256)
    ):
        raise CryptoError("malformed sha256")
    return _decrypt_records(records, key, expected_sha256)


def _decrypt_records(
    records: Iterable[bytes], key: bytes, expected_sha256: str | None
) -> Iterator[bytes]:
    digest = hashlib.sha256()
    buffer = bytearray()
    index = 0
    for piece in records:
        buffer += piece
        # As in encryption: a full record followed by more data is not the last one.
        while len(buffer) > RECORD_BYTES:
            record = bytes(buffer[:RECORD_BYTES])
            del buffer[:RECORD_BYTES]
            digest.update(record)
            yield _open_record(key, index, record, last=False)
            index += 1
    # The loop always leaves at least one byte, so an empty buffer means an empty blob.
    if not buffer:
        raise CryptoError("empty or truncated file")
    record = bytes(buffer)
    digest.update(record)
    if expected_sha256 is not None and not hmac.compare_digest(digest.hexdigest(), expected_sha256):
        raise CryptoError("file hash mismatch")
    chunk = _open_record(key, index, record, last=True)
    # Writers end a non-empty file with a non-empty chunk: one blob per plaintext and nonces.
    if index > 0 and not chunk:
        raise CryptoError("non-canonical file")
    yield chunk


def _open_record(key: bytes, index: int, record: bytes, *, last: bool) -> bytes:
    if len(record) < RECORD_OVERHEAD:
        raise CryptoError("empty or truncated file")
    nonce, ciphertext = record[:NONCE_BYTES], record[NONCE_BYTES:]
    return aes_decrypt(key, nonce, ciphertext, chunk_aad(index, last))


# --------------------------------------------------------------------------- names


def _forbidden_char(ch: str) -> bool:
    """Separators, control characters (NUL included), lone surrogates, bidi controls."""
    return ch in "/\\" or unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI_CONTROLS


def _check_name(name: str) -> str:
    """A file name as sent: one non-empty path component of at most 255 UTF-8 bytes."""
    if name in ("", ".", "..") or any(_forbidden_char(ch) for ch in name):
        raise CryptoError("malformed name")
    # No surrogates are left, so the name encodes.
    if len(name.encode("utf-8")) > NAME_MAX_BYTES:
        raise CryptoError("malformed name")
    return name


def safe_name(name: str) -> str:
    """A name that is safe to create inside a download directory.

    Keeps the part after the last ``/`` or ``\\``, drops control and bidi characters, trims
    white space and cuts to 255 UTF-8 bytes; what is left, or ``"file"`` if nothing usable is.
    Use it even on names :func:`parse_file_content` accepted (then it changes nothing unless
    the name has surrounding white space).
    """
    base = _SEPARATORS.split(name)[-1]
    cleaned = "".join(ch for ch in base if not _forbidden_char(ch)).strip()
    cleaned = cleaned.encode("utf-8")[:NAME_MAX_BYTES].decode("utf-8", "ignore").strip()
    if cleaned in ("", ".", ".."):
        return _FALLBACK_NAME
    return cleaned


# --------------------------------------------------------------------------- content


@dataclass(frozen=True)
class FileRef:
    """A validated ``file`` content: where the blob is and how to open it."""

    file_id: str
    name: str
    mime: str
    size: int
    ciphertext_size: int
    sha256: str
    key: bytes = field(repr=False)
    chunk_bytes: int = CHUNK_BYTES
    text: str | None = None


def file_content(
    file_id: str,
    name: str,
    mime: str,
    encryptor: FileEncryptor,
    caption: str | None = None,
) -> dict[str, object]:
    """The ``file`` content that shares a finished, uploaded blob (section 5.4).

    ``file_id`` is what the server assigned at upload. Raises ValueError for a malformed
    argument and RuntimeError if the encryptor has not finished.
    """
    content: dict[str, object] = {
        "type": "file",
        "file_id": file_id,
        "name": name,
        "mime": mime,
        "size": encryptor.plaintext_size,
        "ciphertext_size": encryptor.ciphertext_size,
        "sha256": encryptor.sha256,
        "key": b64encode(encryptor.key),
        "chunk_bytes": CHUNK_BYTES,
    }
    if caption is not None:
        content["text"] = caption
    # One set of rules: what we send is exactly what a receiver accepts.
    try:
        parse_file_content(content)
    except CryptoError as exc:
        raise ValueError(str(exc)) from None
    return content


def parse_file_content(content: Mapping[str, object]) -> FileRef:
    """Validate a received ``file`` content; CryptoError for anything malformed.

    Unknown members are ignored (section 5.2). ``ciphertext_size`` must be the exact blob size
    for ``size`` and ``chunk_bytes`` must be 65536, the only chunk size of version 1.
    """
    if content.get("type") != "file":
        raise CryptoError("not a file content")
    file_id = field_str(content, "file_id")
    if not UUID_RE.fullmatch(file_id):
        raise CryptoError("malformed file_id")
    name = _check_name(field_str(content, "name"))
    mime = field_str(content, "mime")
    if not _MIME_RE.fullmatch(mime):
        raise CryptoError("malformed mime")
    size = field_int(content, "size")
    if size > MAX_FILE_BYTES:
        raise CryptoError("malformed size")
    ciphertext_size = field_int(content, "ciphertext_size")
    if ciphertext_size != encrypted_size(size):
        raise CryptoError("malformed ciphertext_size")
    sha256 = field_str(content, "sha256")
    if not _SHA256_RE.fullmatch(sha256):
        raise CryptoError("malformed sha256")
    key = field_b64(content, "key", length=FILE_KEY_BYTES)
    if field_int(content, "chunk_bytes") != CHUNK_BYTES:
        raise CryptoError("unsupported chunk_bytes")
    text = content.get("text")
    if text is not None and (not isinstance(text, str) or len(text) > CAPTION_MAX_CHARS):
        raise CryptoError("malformed text")
    return FileRef(
        file_id=file_id,
        name=name,
        mime=mime,
        size=size,
        ciphertext_size=ciphertext_size,
        sha256=sha256,
        key=key,
        chunk_bytes=CHUNK_BYTES,
        text=text,
    )

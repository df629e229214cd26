"""Encrypted files (docs/protocol.md section 5.4): round trips, streaming, hostile blobs."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Iterable, Iterator

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from securechat.client.crypto import CryptoError
from securechat.client.encoding import b64encode, lp
from securechat.client.files import (
    CHUNK_BYTES,
    FILE_KEY_BYTES,
    RECORD_BYTES,
    RECORD_OVERHEAD,
    FileEncryptor,
    FileRef,
    chunk_aad,
    decrypt_stream,
    encrypted_size,
    file_content,
    parse_file_content,
    safe_name,
)
from securechat.protocol import FILE_CHUNK_BYTES, LABEL_FILE_CHUNK

KEY = bytes(range(32))
SIZES = [0, 1, 65535, 65536, 65537, 3 * 65536, 3 * 65536 + 5]


def data(size: int) -> bytes:
    """Deterministic, position-dependent bytes (so swapped chunks would differ)."""
    return hashlib.shake_256(size.to_bytes(8, "big")).digest(size) if size else b""


def split(blob: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(blob), size):
        yield blob[start : start + size]


def encrypt(plaintext: bytes, key: bytes = KEY) -> tuple[bytes, FileEncryptor]:
    encryptor = FileEncryptor(key)
    blob = b"".join(encryptor.encrypt_stream([plaintext]))
    return blob, encryptor


def decrypt(pieces: Iterable[bytes], key: bytes = KEY, sha256: str | None = None) -> bytes:
    return b"".join(decrypt_stream(pieces, key, sha256))


def records(blob: bytes) -> list[bytes]:
    return list(split(blob, RECORD_BYTES))


# --------------------------------------------------------------------------- format


def test_constants() -> None:
    assert CHUNK_BYTES == FILE_CHUNK_BYTES == 65536
    assert RECORD_OVERHEAD == 28
    assert RECORD_BYTES == 65564
    assert LABEL_FILE_CHUNK == "securechat/p256-v1/file-chunk"
    assert chunk_aad(0, False) == lp(LABEL_FILE_CHUNK, "0", "0")
    assert chunk_aad(12, True) == lp(LABEL_FILE_CHUNK, "12", "1")


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, 28),
        (1, 29),
        (65535, 65563),
        (65536, 65564),
        (65537, 65536 + 1 + 2 * 28),
        (3 * 65536, 3 * 65564),
        (3 * 65536 + 5, 3 * 65564 + 33),
    ],
)
def test_encrypted_size(size: int, expected: int) -> None:
    assert encrypted_size(size) == expected


def test_encrypted_size_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        encrypted_size(-1)
    with pytest.raises(TypeError):
        encrypted_size(True)


@pytest.mark.parametrize("size", SIZES)
def test_round_trip(size: int) -> None:
    plaintext = data(size)
    blob, enc = encrypt(plaintext)
    assert enc.finished
    assert len(blob) == encrypted_size(size) == enc.ciphertext_size
    assert enc.plaintext_size == size
    assert enc.sha256 == hashlib.sha256(blob).hexdigest()
    assert decrypt([blob], sha256=enc.sha256) == plaintext
    # Records: all full but the last, which is never empty unless the file is.
    parts = records(blob)
    assert len(parts) == max(1, -(-size // CHUNK_BYTES))
    assert all(len(p) == RECORD_BYTES for p in parts[:-1])
    assert len(parts[-1]) > RECORD_OVERHEAD or size == 0


@pytest.mark.parametrize(
    ("size", "piece"),
    # Tiny pieces only for small files: byte by byte over 200 KiB is slow and adds nothing.
    [(s, p) for s in SIZES for p in (1, 7, 1000, 65564, 70001) if p >= 1000 or s <= 65537],
)
def test_decrypt_accepts_any_split(size: int, piece: int) -> None:
    plaintext = data(size)
    blob, enc = encrypt(plaintext)
    assert decrypt(split(blob, piece), sha256=enc.sha256) == plaintext


@pytest.mark.parametrize("size", SIZES)
def test_encrypt_accepts_any_split_and_files(size: int) -> None:
    plaintext = data(size)
    nonces = [os.urandom(12) for _ in range(5)]
    whole = b"".join(FileEncryptor(KEY, nonces=nonces).encrypt_stream([plaintext]))
    pieces = b"".join(FileEncryptor(KEY, nonces=nonces).encrypt_stream(split(plaintext, 999)))
    stream = b"".join(FileEncryptor(KEY, nonces=nonces).encrypt_stream(io.BytesIO(plaintext)))
    # With fixed nonces the blob depends only on the plaintext, not on how it was fed in.
    assert whole == pieces == stream


def test_chunks_use_the_documented_layout() -> None:
    plaintext = data(CHUNK_BYTES + 10)
    nonces = [b"\x01" * 12, b"\x02" * 12]
    blob = b"".join(FileEncryptor(KEY, nonces=nonces).encrypt_stream([plaintext]))
    aes = AESGCM(KEY)
    first = nonces[0] + aes.encrypt(nonces[0], plaintext[:CHUNK_BYTES], chunk_aad(0, False))
    last = nonces[1] + aes.encrypt(nonces[1], plaintext[CHUNK_BYTES:], chunk_aad(1, True))
    assert blob == first + last


def test_random_key_and_nonces() -> None:
    a, b = FileEncryptor(), FileEncryptor()
    assert len(a.key) == FILE_KEY_BYTES
    assert a.key != b.key
    blob1 = b"".join(FileEncryptor(KEY).encrypt_stream([b"same"]))
    blob2 = b"".join(FileEncryptor(KEY).encrypt_stream([b"same"]))
    assert blob1[:12] != blob2[:12]
    assert decrypt([blob1]) == decrypt([blob2]) == b"same"


def test_five_mib_streams_with_odd_pieces() -> None:
    size = 5 * 1024 * 1024 + 3
    pattern = data(4099)

    def source() -> Iterator[bytes]:
        sent = 0
        while sent < size:
            piece = pattern[: min(1000, size - sent)]
            sent += len(piece)
            yield piece

    enc = FileEncryptor()
    blob = b"".join(enc.encrypt_stream(source()))
    assert len(blob) == encrypted_size(size) == enc.ciphertext_size
    expected = hashlib.sha256(b"".join(source())).hexdigest()
    out = hashlib.sha256()
    seen = 0
    for chunk in decrypt_stream(split(blob, 1000), enc.key, enc.sha256):
        assert len(chunk) <= CHUNK_BYTES
        out.update(chunk)
        seen += len(chunk)
    assert seen == size
    assert out.hexdigest() == expected


# --------------------------------------------------------------------------- memory


def test_encrypt_reads_at_most_two_chunks_ahead() -> None:
    consumed = 0

    def source() -> Iterator[bytes]:
        nonlocal consumed
        for _ in range(10 * CHUNK_BYTES // 1000):
            consumed += 1000
            yield bytes(1000)

    stream = FileEncryptor().encrypt_stream(source())
    assert consumed == 0  # nothing is read before the first record is asked for
    first = next(stream)
    assert len(first) == RECORD_BYTES
    assert CHUNK_BYTES < consumed <= 2 * CHUNK_BYTES
    next(stream)
    assert consumed <= 3 * CHUNK_BYTES


class CountingReader(io.RawIOBase):
    """A binary file that records how much was read from it."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self.remaining if size < 0 else min(size, self.remaining)
        self.remaining -= n
        self.consumed += n
        return bytes(n)


def test_encrypt_reads_files_in_chunks() -> None:
    reader = CountingReader(10 * CHUNK_BYTES)
    stream = FileEncryptor().encrypt_stream(reader)
    next(stream)
    assert reader.consumed <= 2 * CHUNK_BYTES
    assert sum(len(r) for r in stream) + RECORD_BYTES == encrypted_size(10 * CHUNK_BYTES)


def test_decrypt_buffers_at_most_one_record_ahead() -> None:
    blob, enc = encrypt(data(5 * CHUNK_BYTES))
    consumed = 0

    def source() -> Iterator[bytes]:
        nonlocal consumed
        for piece in split(blob, 1000):
            consumed += len(piece)
            yield piece

    stream = decrypt_stream(source(), KEY, enc.sha256)
    assert len(next(stream)) == CHUNK_BYTES
    assert RECORD_BYTES < consumed <= 2 * RECORD_BYTES


# --------------------------------------------------------------------------- encryptor API


def test_encryptor_is_single_use() -> None:
    enc = FileEncryptor()
    list(enc.encrypt_stream([b"x"]))
    with pytest.raises(RuntimeError):
        enc.encrypt_stream([b"y"])


def test_sha256_only_after_exhaustion() -> None:
    enc = FileEncryptor()
    stream = enc.encrypt_stream([data(2 * CHUNK_BYTES)])
    next(stream)
    assert not enc.finished
    assert enc.plaintext_size == CHUNK_BYTES
    with pytest.raises(RuntimeError):
        _ = enc.sha256
    list(stream)
    assert enc.finished
    assert enc.plaintext_size == 2 * CHUNK_BYTES


def test_encryptor_rejects_bad_keys_and_nonces() -> None:
    with pytest.raises(CryptoError):
        FileEncryptor(bytes(31))
    with pytest.raises(CryptoError):
        list(FileEncryptor(KEY, nonces=[bytes(11)]).encrypt_stream([b"x"]))
    with pytest.raises(ValueError):
        list(FileEncryptor(KEY, nonces=[bytes(12)]).encrypt_stream([data(CHUNK_BYTES + 1)]))


# --------------------------------------------------------------------------- hostile blobs

HOSTILE_SIZE = 3 * CHUNK_BYTES + 5  # four records, the last one short


@pytest.fixture(scope="module")
def hostile() -> tuple[bytes, str]:
    blob, enc = encrypt(data(HOSTILE_SIZE))
    return blob, enc.sha256


def fails(blob: bytes, sha256: str | None = None, key: bytes = KEY) -> None:
    """Decrypting ``blob`` (whole and in odd pieces) raises CryptoError."""
    for pieces in ([blob], list(split(blob, 777))):
        with pytest.raises(CryptoError):
            decrypt(pieces, key, sha256)


@pytest.mark.parametrize("boundary", [1, 2, 3])
def test_truncation_at_record_boundary(boundary: int, hostile: tuple[bytes, str]) -> None:
    blob, _ = hostile
    # Without the hash: the record now at the end was sealed as "not last".
    fails(blob[: boundary * RECORD_BYTES])


@pytest.mark.parametrize("cut", [1, 11, 12, 27, 28, 29, RECORD_BYTES - 1, RECORD_BYTES + 1, -1])
def test_truncation_inside_a_record(cut: int, hostile: tuple[bytes, str]) -> None:
    blob, _ = hostile
    fails(blob[:cut])


def test_dropping_the_last_record(hostile: tuple[bytes, str]) -> None:
    blob, _ = hostile
    parts = records(blob)
    fails(b"".join(parts[:-1]))
    fails(b"".join(parts[1:]))  # dropping the first one does not help either


@pytest.mark.parametrize(("i", "j"), [(0, 1), (1, 2), (0, 2)])
def test_swapping_records(i: int, j: int, hostile: tuple[bytes, str]) -> None:
    blob, _ = hostile
    parts = records(blob)
    parts[i], parts[j] = parts[j], parts[i]
    fails(b"".join(parts))


def test_swapping_a_full_last_record() -> None:
    # Two full records: swapping them keeps the lengths, only the AAD tells them apart.
    blob, _ = encrypt(data(2 * CHUNK_BYTES))
    first, second = records(blob)
    assert len(first) == len(second) == RECORD_BYTES
    fails(second + first)


@pytest.mark.parametrize("record", [0, 1, 2, 3])
@pytest.mark.parametrize("offset", [0, 11, 12, 500, -16, -1])
def test_flipped_byte(record: int, offset: int, hostile: tuple[bytes, str]) -> None:
    blob, _ = hostile
    start = record * RECORD_BYTES
    end = min(start + RECORD_BYTES, len(blob))
    position = min(start + offset, end - 1) if offset >= 0 else end + offset
    tampered = bytearray(blob)
    tampered[position] ^= 0x01
    fails(bytes(tampered))


@pytest.mark.parametrize("garbage", [b"\x00", b"x" * 100, bytes(RECORD_BYTES), bytes(70000)])
def test_appended_garbage(garbage: bytes, hostile: tuple[bytes, str]) -> None:
    blob, _ = hostile
    fails(blob + garbage)


def test_appended_garbage_after_full_last_record() -> None:
    blob, _ = encrypt(data(2 * CHUNK_BYTES))
    fails(blob + b"\x00")
    fails(blob + records(blob)[-1])


def test_wrong_key(hostile: tuple[bytes, str]) -> None:
    blob, sha = hostile
    fails(blob, sha, key=bytes(32))


def test_wrong_sha256_fails_before_the_last_chunk(hostile: tuple[bytes, str]) -> None:
    blob, sha = hostile
    wrong = hashlib.sha256(b"other").hexdigest()
    fails(blob, wrong)
    got: list[bytes] = []
    with pytest.raises(CryptoError):  # noqa: PT012
        for chunk in decrypt_stream([blob], KEY, wrong):
            got.append(chunk)
    assert len(got) == 3  # the three full chunks, never the last one
    assert decrypt([blob], KEY, sha) == data(HOSTILE_SIZE)


def test_malformed_arguments_fail_at_once(hostile: tuple[bytes, str]) -> None:
    blob, sha = hostile
    with pytest.raises(CryptoError):
        decrypt_stream([blob], KEY, sha.upper())
    with pytest.raises(CryptoError):
        decrypt_stream([blob], KEY, sha[:-1])
    with pytest.raises(CryptoError):
        decrypt_stream([blob], KEY[:16])


def test_empty_blob() -> None:
    fails(b"")
    with pytest.raises(CryptoError):
        decrypt([])
    with pytest.raises(CryptoError):
        decrypt([b"", b""])


def test_records_of_another_file_do_not_mix() -> None:
    # Every file has its own key; that is what keeps records of two files apart.
    a, _ = encrypt(data(2 * CHUNK_BYTES + 1))
    b, _ = encrypt(data(2 * CHUNK_BYTES + 2), key=os.urandom(32))
    fails(records(a)[0] + records(b)[1] + records(a)[2])


def test_extra_empty_last_record_is_refused() -> None:
    # A writer that ends a 64 KiB file with an extra empty chunk: valid AEAD, non-canonical.
    aes = AESGCM(KEY)
    n0, n1 = bytes(12), b"\x01" * 12
    blob = n0 + aes.encrypt(n0, data(CHUNK_BYTES), chunk_aad(0, False))
    blob += n1 + aes.encrypt(n1, b"", chunk_aad(1, True))
    fails(blob)


# --------------------------------------------------------------------------- content


def finished_encryptor(size: int = 10) -> FileEncryptor:
    enc = FileEncryptor(KEY)
    list(enc.encrypt_stream([data(size)]))
    return enc


FILE_ID = str(uuid.uuid4())


def valid_content() -> dict[str, object]:
    return file_content(FILE_ID, "report.pdf", "application/pdf", finished_encryptor(), "Q3")


def test_file_content_round_trip() -> None:
    enc = finished_encryptor(CHUNK_BYTES + 1)
    content = file_content(FILE_ID, "Ünïcödé 👋.txt", "text/plain", enc, "caption")
    assert content == {
        "type": "file",
        "file_id": FILE_ID,
        "name": "Ünïcödé 👋.txt",
        "mime": "text/plain",
        "size": CHUNK_BYTES + 1,
        "ciphertext_size": encrypted_size(CHUNK_BYTES + 1),
        "sha256": enc.sha256,
        "key": b64encode(KEY),
        "chunk_bytes": 65536,
        "text": "caption",
    }
    ref = parse_file_content(content)
    assert ref == FileRef(
        file_id=FILE_ID,
        name="Ünïcödé 👋.txt",
        mime="text/plain",
        size=CHUNK_BYTES + 1,
        ciphertext_size=encrypted_size(CHUNK_BYTES + 1),
        sha256=enc.sha256,
        key=KEY,
        chunk_bytes=CHUNK_BYTES,
        text="caption",
    )
    assert b64encode(KEY) not in repr(ref)
    assert KEY.hex() not in repr(ref)


def test_file_content_without_caption() -> None:
    content = file_content(FILE_ID, "a.bin", "application/octet-stream", finished_encryptor())
    assert "text" not in content
    assert parse_file_content(content).text is None
    # Unknown members are ignored; a null caption is no caption.
    assert parse_file_content({**content, "text": None, "extra": [1]}).text is None


def test_file_content_needs_a_finished_encryptor() -> None:
    with pytest.raises(RuntimeError):
        file_content(FILE_ID, "a.bin", "application/octet-stream", FileEncryptor())


@pytest.mark.parametrize(
    ("file_id", "name", "mime"),
    [
        ("not-a-uuid", "a.bin", "application/octet-stream"),
        (FILE_ID, "../etc/passwd", "application/octet-stream"),
        (FILE_ID, "a.bin", "not a mime"),
    ],
)
def test_file_content_validates_its_arguments(file_id: str, name: str, mime: str) -> None:
    with pytest.raises(ValueError):
        file_content(file_id, name, mime, finished_encryptor())


REQUIRED = ["type", "file_id", "name", "mime", "size", "ciphertext_size", "sha256", "key"]


@pytest.mark.parametrize("member", [*REQUIRED, "chunk_bytes"])
def test_parse_missing_member(member: str) -> None:
    content = valid_content()
    del content[member]
    with pytest.raises(CryptoError):
        parse_file_content(content)


BAD_VALUES: list[tuple[str, object]] = [
    ("type", "text"),
    ("type", None),
    ("file_id", 7),
    ("file_id", FILE_ID.upper()),
    ("file_id", "../" + FILE_ID),
    ("name", 5),
    ("name", None),
    ("name", ""),
    ("name", "."),
    ("name", ".."),
    ("name", "../x.txt"),
    ("name", "..\\x.txt"),
    ("name", "dir/x.txt"),
    ("name", "/etc/passwd"),
    ("name", "C:\\x.txt"),
    ("name", "x\x00.txt"),
    ("name", "x\n.txt"),
    ("name", "x\x7f.txt"),
    ("name", "evil\u202etxt.exe"),
    ("name", "\ud800.txt"),
    ("name", "a" * 256),
    ("name", "é" * 150),  # 150 code points, 300 UTF-8 bytes
    ("name", "x" * 300),
    ("mime", 1),
    ("mime", ""),
    ("mime", "text"),
    ("mime", "text/plain; charset=utf-8"),
    ("mime", "text/plain\n"),
    ("size", "10"),
    ("size", -1),
    ("size", 1.5),
    ("size", True),
    ("size", 2**53),
    ("ciphertext_size", "38"),
    ("ciphertext_size", 10),
    ("ciphertext_size", 39),
    ("sha256", 5),
    ("sha256", "0" * 63),
    ("sha256", "A" * 64),
    ("sha256", "g" * 64),
    ("key", 5),
    ("key", b64encode(bytes(31))),
    ("key", b64encode(bytes(33))),
    ("key", "not base64!"),
    ("key", b64encode(bytes(32)).rstrip("=")),
    ("key", b64encode(bytes(32))[:-2] + "B="),  # non-canonical trailing bits
    ("key", b64encode(bytes(32)).replace("A", "-")),
    ("chunk_bytes", 1024),
    ("chunk_bytes", "65536"),
    ("chunk_bytes", True),
    ("text", 5),
    ("text", ["x"]),
    ("text", "x" * 16001),
]


@pytest.mark.parametrize(("member", "value"), BAD_VALUES)
def test_parse_rejects(member: str, value: object) -> None:
    content = valid_content()
    content[member] = value
    with pytest.raises(CryptoError):
        parse_file_content(content)


def test_parse_accepts_limits() -> None:
    content = valid_content()
    for name in ("a" * 255, "é" * 127, "..x", ".hidden", "a b.txt"):
        assert parse_file_content({**content, "name": name}).name == name
    assert parse_file_content({**content, "text": "x" * 16000}).text == "x" * 16000
    huge = 2**53 - 1
    big = {**content, "size": huge, "ciphertext_size": encrypted_size(huge)}
    assert parse_file_content(big).size == huge


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\x.dll", "x.dll"),
        ("dir/", "file"),
        ("..", "file"),
        (".", "file"),
        ("", "file"),
        ("a\x00b\nc.txt", "abc.txt"),
        ("evil\u202etxt.exe", "eviltxt.exe"),
        ("  spaced.txt  ", "spaced.txt"),
        ("/..", "file"),
        ("\ud800x", "x"),
    ],
)
def test_safe_name(name: str, expected: str) -> None:
    assert safe_name(name) == expected


def test_safe_name_cuts_long_names_on_a_code_point() -> None:
    name = safe_name("é" * 200)
    assert name == "é" * 127
    assert len(name.encode("utf-8")) <= 255

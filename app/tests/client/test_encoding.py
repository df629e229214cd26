"""Strict base64 and LP encodings (docs/protocol.md section 2)."""

from __future__ import annotations

import pytest

from securechat.client.encoding import b64decode, b64encode, lp


def test_b64_round_trip() -> None:
    for size in range(40):
        data = bytes(range(size))
        assert b64decode(b64encode(data)) == data


def test_b64encode_is_standard_with_padding() -> None:
    assert b64encode(b"\xfb\xff") == "+/8="
    assert b64encode(b"") == ""


def test_b64decode_checks_length() -> None:
    assert b64decode("AAAA", length=3) == b"\x00\x00\x00"
    with pytest.raises(ValueError, match="nonce: expected 12 bytes, got 3"):
        b64decode("AAAA", field="nonce", length=12)


@pytest.mark.parametrize(
    "text",
    [
        "+/8",  # missing padding
        "-_8=",  # URL-safe alphabet
        "+/8= ",  # trailing space
        " +/8=",  # leading space
        "+/\n8=",  # newline inside
        "+/8=\n",  # trailing newline
        "+/\t8=",  # tab
        "+/8=AAAA",  # data after padding
        "+/8==",  # too much padding
        "A",  # impossible length
        "AB==",  # non-canonical: trailing bits set (decodes to the same byte as "AA==")
        "AAA==",  # padding in the wrong place
        "é===",  # non-ASCII
    ],
)
def test_b64decode_rejects_hostile_text(text: str) -> None:
    with pytest.raises(ValueError, match="signature"):
        b64decode(text, field="signature")


@pytest.mark.parametrize("value", [b"AAAA", bytearray(b"AAAA"), None, 1234, ["AAAA"]])
def test_b64decode_rejects_non_str(value: object) -> None:
    with pytest.raises(ValueError, match="ciphertext: expected a base64 string"):
        b64decode(value, field="ciphertext")  # type: ignore[arg-type]


def test_lp_encodes_bytes_str_and_int() -> None:
    assert lp() == b""
    assert lp(b"") == b"\x00\x00\x00\x00"
    assert lp(b"\x01\x02") == b"\x00\x00\x00\x02\x01\x02"
    assert lp("7") == lp(7) == b"\x00\x00\x00\x017"
    assert lp(0) == b"\x00\x00\x00\x010"
    assert lp(1234567890123) == b"\x00\x00\x00\x0d1234567890123"
    # Strings are UTF-8: the length counts bytes, not characters.
    assert lp("é") == b"\x00\x00\x00\x02\xc3\xa9"
    assert lp("a", b"b", 3) == lp("a") + lp("b") + lp("3")


def test_lp_length_is_big_endian() -> None:
    assert lp(b"x" * 0x0102)[:4] == b"\x00\x00\x01\x02"


@pytest.mark.parametrize("value", [True, False])
def test_lp_rejects_bool(value: bool) -> None:
    with pytest.raises(TypeError, match="bool"):
        lp(value)


def test_lp_rejects_negative_int() -> None:
    with pytest.raises(ValueError, match="negative"):
        lp(-1)


@pytest.mark.parametrize("value", [None, 1.5, ["a"], {"a": 1}])
def test_lp_rejects_other_types(value: object) -> None:
    with pytest.raises(TypeError):
        lp(value)  # type: ignore[arg-type]

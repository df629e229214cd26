"""SHA-256 of files and the SHA256SUMS format (as `sha256sum` writes and checks it)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def format_sums(entries: Iterable[tuple[str, str]]) -> str:
    """`<hex>  <relative path>` lines, sorted by path (binary mode, as sha256sum -b would)."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(entries))


class SumsError(ValueError):
    pass


def parse_sums(text: str) -> dict[str, str]:
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        digest, separator, name = line.partition("  ")
        if not separator or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise SumsError(f"SHA256SUMS line {number} is malformed")
        if name.startswith("/") or ".." in Path(name).parts or name in sums:
            raise SumsError(f"SHA256SUMS line {number} names an unsafe or repeated path: {name!r}")
        sums[name] = digest
    return sums

"""Which offline bundle the lab inventory points at: the one given, else the newest in dist/."""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from securechat_lab.commands import LabError

FINGERPRINT_MEMBER: Final = "signing-key.fingerprint"
_FINGERPRINT: Final = re.compile(r"^[0-9A-F]{40}$")


@dataclass(frozen=True)
class BundleChoice:
    path: Path
    fingerprint: str


def normalize_fingerprint(value: str) -> str:
    fingerprint = value.replace(" ", "").upper()
    if not _FINGERPRINT.match(fingerprint):
        raise LabError(f"fingerprint {value!r} is not 40 hex digits")
    return fingerprint


def newest_bundle(dist: Path) -> Path | None:
    tarballs = sorted(dist.glob("securechat-m2m-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return tarballs[-1].resolve() if tarballs else None


def read_fingerprint(tarball: Path) -> str:
    """The fingerprint the bundle names (its top directory's signing-key.fingerprint).

    It proves nothing by itself (docs/bundle.md); the lab trusts the bundles this repository
    built. Give --fingerprint to pin another one."""
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            for member in archive:
                parts = Path(member.name).parts
                if len(parts) == 2 and parts[1] == FINGERPRINT_MEMBER and member.isfile():
                    handle = archive.extractfile(member)
                    if handle is not None:
                        return normalize_fingerprint(handle.read(200).decode().strip())
    except (OSError, tarfile.TarError, UnicodeDecodeError) as exc:
        raise LabError(f"cannot read {tarball}: {exc}") from exc
    raise LabError(f"{tarball} has no {FINGERPRINT_MEMBER}: give --fingerprint")


def choose_bundle(path: Path | None, fingerprint: str | None, dist: Path) -> BundleChoice | None:
    """--bundle/--fingerprint if given, else the newest dist/ tarball, else None."""
    if path is not None:
        if not path.is_file():
            raise LabError(f"bundle {path} does not exist")
        found = normalize_fingerprint(fingerprint) if fingerprint else read_fingerprint(path)
        return BundleChoice(path.resolve(), found)
    if fingerprint is not None:
        raise LabError("--fingerprint needs --bundle")
    newest = newest_bundle(dist)
    return None if newest is None else BundleChoice(newest, read_fingerprint(newest))

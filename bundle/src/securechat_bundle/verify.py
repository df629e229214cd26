"""Verify a bundle: its signature with a given public key, and every file against SHA256SUMS,
naming each file that is missing, extra or altered."""

from __future__ import annotations

import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from securechat_bundle.archive import UnsafeArchiveError, safe_extract
from securechat_bundle.digests import SumsError, parse_sums, sha256_file
from securechat_bundle.signing import SigningError, verify_detached

SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.asc"
OWN_KEY = "signing-key.asc"
UNLISTED = {SUMS, SIGNATURE}


@dataclass
class Report:
    fingerprint: str | None = None
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.altered or self.errors)

    def lines(self) -> list[str]:
        out = [f"error: {e}" for e in self.errors]
        out += [f"missing: {name}" for name in self.missing]
        out += [f"extra: {name}" for name in self.extra]
        out += [f"altered: {name}" for name in self.altered]
        return out


def verify_tree(
    root: Path, public_key: Path | None, pinned_fingerprint: str | None = None
) -> Report:
    """Check the signature and every file. Without `public_key` the bundle's own
    signing-key.asc is used, which is trustworthy only through the pinned fingerprint."""
    report = Report()
    sums_file, signature = root / SUMS, root / SIGNATURE
    if not sums_file.is_file() or not signature.is_file():
        report.errors.append(f"{SUMS} or {SIGNATURE} is missing: this is not a signed bundle")
        return report
    key = public_key or _own_key(root, pinned_fingerprint)
    if isinstance(key, str):
        report.errors.append(key)
        return report
    try:
        report.fingerprint = verify_detached(key, signature, sums_file)
    except SigningError as error:
        report.errors.append(str(error))
        return report
    if pinned_fingerprint and report.fingerprint.upper() != _normal(pinned_fingerprint):
        report.errors.append(
            f"signed by {report.fingerprint}, but the inventory pins {pinned_fingerprint}"
        )
        return report
    try:
        sums = parse_sums(sums_file.read_text())
    except (SumsError, UnicodeDecodeError) as error:
        report.errors.append(str(error))
        return report
    present = {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()} - UNLISTED
    report.missing = sorted(set(sums) - present)
    report.extra = sorted(present - set(sums))
    for name in sorted(set(sums) & present):
        report.checked += 1
        if sha256_file(root / name) != sums[name]:
            report.altered.append(name)
    return report


def _own_key(root: Path, pinned_fingerprint: str | None) -> Path | str:
    """The bundle's own public key, or why it cannot be used."""
    if not pinned_fingerprint:
        return f"the bundle's own {OWN_KEY} is trusted only with a pinned fingerprint"
    if not (root / OWN_KEY).is_file():
        return f"{OWN_KEY} is missing from the bundle: give --key"
    return root / OWN_KEY


def verify_bundle(
    bundle: Path, public_key: Path | None, pinned_fingerprint: str | None = None
) -> Report:
    with tempfile.TemporaryDirectory(prefix="securechat-bundle-") as scratch:
        try:
            root = safe_extract(bundle, Path(scratch))
        except (UnsafeArchiveError, OSError, EOFError, tarfile.TarError) as error:
            return Report(errors=[f"cannot read {bundle.name}: {error}"])
        return verify_tree(root, public_key, pinned_fingerprint)


def _normal(fingerprint: str) -> str:
    return fingerprint.replace(" ", "").upper()

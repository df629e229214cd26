"""The bundle signing key (gpg): created on first use outside the repository, or given by ops.

Only the public key and its fingerprint ever go into a bundle; the secret key stays in the
GnuPG home (default `~/.local/share/securechat-bundle/gnupg`, mode 700).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path.home() / ".local" / "share" / "securechat-bundle" / "gnupg"
KEY_UID = "Secure Chat M2M bundle signing key"


class SigningError(RuntimeError):
    pass


@dataclass(frozen=True)
class SigningKey:
    home: Path
    fingerprint: str

    def export_public(self, *, armor: bool = True) -> bytes:
        return _gpg(self.home, *_armor(armor), "--export", self.fingerprint).stdout

    def sign_detached(self, path: Path, *, armor: bool = True, output: Path | None = None) -> Path:
        signature = output or path.with_name(path.name + ".asc")
        self._sign(path, signature, *_armor(armor), "--detach-sign")
        return signature

    def clearsign(self, path: Path, output: Path) -> None:
        self._sign(path, output, "--clearsign")

    def _sign(self, path: Path, output: Path, *mode: str) -> None:
        output.unlink(missing_ok=True)
        _gpg(
            self.home,
            "--batch",
            "--yes",
            "--local-user",
            self.fingerprint,
            *mode,
            "--output",
            str(output),
            str(path),
        )


def _armor(armor: bool) -> tuple[str, ...]:
    return ("--armor",) if armor else ()


def _gpg(home: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    if shutil.which("gpg") is None:
        raise SigningError("gpg is missing: apt-get install gnupg")
    command = ["gpg", "--homedir", str(home), "--no-tty", "--quiet", *args]
    result = subprocess.run(command, input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        raise SigningError(
            f"gpg {' '.join(args[:2])} failed: {result.stderr.decode(errors='replace').strip()}"
        )
    return result


def _secret_fingerprints(home: Path) -> list[str]:
    listing = _gpg(home, "--batch", "--with-colons", "--list-secret-keys").stdout.decode()
    return [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]


def signing_key(home: Path = DEFAULT_HOME, fingerprint: str | None = None) -> SigningKey:
    """The key to sign with: the given one, the only one in `home`, or a new Ed25519 key."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
    known = _secret_fingerprints(home)
    if fingerprint:
        if fingerprint.upper() not in (f.upper() for f in known):
            raise SigningError(f"no secret key {fingerprint} in {home}")
        return SigningKey(home, fingerprint.upper())
    if len(known) > 1:
        raise SigningError(f"{home} holds several secret keys; choose one with --key-id")
    if not known:
        _gpg(
            home,
            "--batch",
            "--passphrase",
            "",
            "--quick-generate-key",
            KEY_UID,
            "ed25519",
            "sign",
            "never",
        )
        known = _secret_fingerprints(home)
    return SigningKey(home, known[0])


def verify_detached(public_key: Path, signature: Path, data: Path) -> str:
    """Verify with ONLY `public_key` trusted (a throwaway keyring); return its fingerprint."""
    with tempfile.TemporaryDirectory(prefix="securechat-verify-gpg-") as scratch:
        home = Path(scratch)
        os.chmod(home, 0o700)
        _gpg(home, "--batch", "--import", str(public_key))
        status = subprocess.run(
            [
                "gpg",
                "--homedir",
                str(home),
                "--no-tty",
                "--batch",
                "--status-fd",
                "1",
                "--verify",
                str(signature),
                str(data),
            ],
            capture_output=True,
            check=False,
        )
        lines = status.stdout.decode(errors="replace").splitlines()
        valid = [line.split()[2] for line in lines if line.startswith("[GNUPG:] VALIDSIG ")]
        if status.returncode != 0 or not valid:
            raise SigningError("the signature of SHA256SUMS does not verify with the given key")
        return valid[0]

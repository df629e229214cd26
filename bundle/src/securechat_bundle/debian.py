"""Debian packages for the air-gapped hosts, as a signed local apt repository.

The dependency closure is computed where it will be used: over a minimal Debian 12 base
(`debootstrap --variant=minbase`), `apt-get install --download-only` of the packages the roles
install leaves exactly the .deb files a fresh host lacks. They are published as a flat
repository (Packages, Release, InRelease and Release.gpg signed with the bundle key), which
hosts use through `signed-by=`, never `trusted=yes`.

The base and the download chroot are cached (default ~/.cache/securechat-bundle), so a second
build only fetches what changed. The Debian mirror is the build machine's own apt source.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from securechat_bundle.signing import SigningKey

SUITE = "bookworm"
# Every package a role installs (docs/bundle.md); their dependencies come along.
PACKAGES = (
    "mariadb-server",
    "nginx-light",
    "nftables",
    "netplan.io",
    "avahi-daemon",
    "python3",
    "python3-venv",
    "python3-apt",  # ansible.builtin.apt runs on the host with it
    "python3-pymysql",  # community.mysql modules run on the database host with it
    "redis-server",
    "openssl",
    "ca-certificates",
    "sudo",
    # The Docker deployment (roles/docker): Docker Engine and Debian's docker-compose 1.29.
    "docker.io",
    "docker-compose",
)
KEYRING_NAME = "securechat-bundle.gpg"
DEFAULT_CACHE = Path.home() / ".cache" / "securechat-bundle"
Progress = Callable[[str], None]


class DebianError(RuntimeError):
    pass


@dataclass(frozen=True)
class Deb:
    path: Path
    name: str
    version: str
    architecture: str


def run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-5:])
        raise DebianError(f"{' '.join(command[:3])}… failed: {tail}")
    return result.stdout


def host_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this build machine uses (first http(s) URI of its apt sources)."""
    candidates = sorted(sources.glob("sources.list.d/*.sources"))
    candidates += [sources / "sources.list", *sorted(sources.glob("sources.list.d/*.list"))]
    for path in candidates:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            match = re.search(r"(https?://\S+/debian)/?(\s|$)", line)
            if match and not line.lstrip().startswith("#"):
                return match.group(1)
    raise DebianError("no Debian mirror in /etc/apt: this must run on a connected Debian machine")


def base_image(cache: Path, mirror: str, progress: Progress) -> Path:
    """A pristine minimal Debian 12 tree (debootstrap minbase), made once and cached."""
    base = cache / f"base-{SUITE}"
    if (base / "etc" / "debian_version").is_file():
        return base
    if shutil.which("debootstrap") is None:
        raise DebianError("debootstrap is missing: apt-get install debootstrap")
    progress(f"debootstrap {SUITE} minbase (once, about a minute)…")
    partial = cache / f"base-{SUITE}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    run("debootstrap", "--variant=minbase", SUITE, str(partial), mirror)
    partial.rename(base)
    return base


def download_closure(
    cache: Path, base: Path, mirror: str, packages: tuple[str, ...], progress: Progress
) -> list[Deb]:
    """The .deb files `packages` need on top of the base, via a cached download chroot."""
    chroot = cache / f"download-{SUITE}"
    if not chroot.is_dir():
        run("cp", "-a", str(base), str(chroot))
    sources = chroot / "etc" / "apt" / "sources.list"
    sources.write_text(f"deb {mirror} {SUITE} main\ndeb {mirror} {SUITE}-updates main\n")
    archives = chroot / "var" / "cache" / "apt" / "archives"
    for old in archives.glob("*.deb"):
        old.unlink()  # only what this closure needs
    progress(f"resolving and downloading {len(packages)} packages and their dependencies…")
    run("chroot", str(chroot), "apt-get", "-qq", "update")
    run(
        "chroot",
        str(chroot),
        "apt-get",
        "-qq",
        "install",
        "--download-only",
        "--yes",
        "--no-install-recommends",
        *packages,
    )
    return [parse_deb(path) for path in sorted(archives.glob("*.deb"))]


def parse_deb(path: Path) -> Deb:
    name, version, architecture = path.stem.split("_")
    return Deb(path, name, version.replace("%3a", ":"), architecture)


def build_repository(debs: list[Deb], repository: Path, key: SigningKey) -> None:
    """A flat, signed apt repository: `deb [signed-by=…/securechat-bundle.gpg] file:<dir> ./`."""
    repository.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        shutil.copy2(deb.path, repository / deb.path.name)
    (repository / "Packages").write_text(_ftparchive(repository, "packages", "."))
    release = _ftparchive(
        repository,
        "-o",
        "APT::FTPArchive::Release::Origin=Secure Chat M2M bundle",
        "-o",
        "APT::FTPArchive::Release::Label=securechat-bundle",
        "-o",
        f"APT::FTPArchive::Release::Suite={SUITE}",
        "-o",
        "APT::FTPArchive::Release::Architectures=amd64 all",
        "release",
        ".",
    )
    (repository / "Release").write_text(release)
    key.clearsign(repository / "Release", repository / "InRelease")
    key.sign_detached(repository / "Release", armor=False, output=repository / "Release.gpg")
    (repository / KEYRING_NAME).write_bytes(key.export_public(armor=False))


def _ftparchive(repository: Path, *args: str) -> str:
    if shutil.which("apt-ftparchive") is None:
        raise DebianError("apt-ftparchive is missing: apt-get install apt-utils")
    result = subprocess.run(
        ["apt-ftparchive", *args], capture_output=True, text=True, check=False, cwd=repository
    )
    if result.returncode != 0:
        raise DebianError(f"apt-ftparchive {args[-2]} failed: {result.stderr.strip()}")
    return result.stdout

"""Build the bundle: wheelhouse, locks, Ansible collection tree, manifest, sums, signature."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from securechat_bundle import __version__
from securechat_bundle.archive import copy_tree, write_tarball
from securechat_bundle.digests import format_sums, sha256_file
from securechat_bundle.signing import SigningKey
from securechat_bundle.verify import SIGNATURE, SUMS
from securechat_bundle.wheelhouse import (
    LOCAL_PACKAGES,
    LOCKS,
    Platform,
    build_local,
    download,
    local_requirements,
)

# Repository paths carried in the bundle when they exist (the Ansible collection and its
# inventory examples arrive with their own issue).
COLLECTION_PATHS = ("galaxy.yml", "ansible.cfg", "meta", "roles", "playbooks", "inventory")
TOOL_PATHS = ("offline-bundle.sh", "bundle/src/securechat_bundle")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    tarball: Path
    version: str
    parts: dict[str, int]  # part -> bytes


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def bundle_version(root: Path) -> str:
    return git(root, "describe", "--always", "--dirty", "--tags").lstrip("v")


def commit_time(root: Path) -> int:
    return int(git(root, "log", "-1", "--format=%ct"))


def build(
    root: Path,
    output_dir: Path,
    platform: Platform,
    key: SigningKey,
    progress: Progress = lambda line: print(line, file=sys.stderr),
) -> BuildResult:
    version = bundle_version(root)
    epoch = commit_time(root)
    name = f"securechat-m2m-{version}"
    with tempfile.TemporaryDirectory(prefix="securechat-bundle-build-") as scratch:
        tree = Path(scratch) / name
        wheelhouse = tree / "wheelhouse"
        wheelhouse.mkdir(parents=True)
        requirements = tree / "requirements"
        requirements.mkdir()
        artifacts: list[dict[str, object]] = []

        for lock in LOCKS:
            progress(f"[1/5] wheels of {lock}.lock for {platform.name}…")
            source = root / "requirements" / f"{lock}.lock"
            shutil.copy2(source, requirements / source.name)
            download(source, wheelhouse, platform)
        progress("[2/5] building the securechat and securechat-verify wheels…")
        local = build_local(root, wheelhouse, epoch)
        for lock, projects in LOCAL_PACKAGES.items():
            (requirements / f"{lock}-local.txt").write_text(local_requirements(local, projects))
        for wheel in sorted(wheelhouse.glob("*.whl")):
            origin = (
                "built from this commit" if wheel in local.values() else "pypi.org (hash-locked)"
            )
            wheel_name, wheel_version = wheel.name.split("-")[:2]
            artifacts.append(_artifact(tree, wheel, wheel_name, wheel_version, origin))

        progress("[3/5] the Ansible collection and the bundle tools…")
        for relative in (*COLLECTION_PATHS, *TOOL_PATHS):
            source = root / relative
            target = tree / ("collection" if relative in COLLECTION_PATHS else "tools") / relative
            if source.is_dir():
                copy_tree(source, target)
            elif source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)

        progress("[4/5] manifest, checksums and signature…")
        (tree / "signing-key.asc").write_bytes(key.export_public())
        (tree / "signing-key.fingerprint").write_text(key.fingerprint + "\n")
        manifest = {
            "bundle": name,
            "version": version,
            "commit": git(root, "rev-parse", "HEAD"),
            "built_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "target": platform.name,
            "signing_key_fingerprint": key.fingerprint,
            "builder": f"securechat-bundle {__version__}",
            "artifacts": sorted(artifacts, key=lambda a: str(a["path"])),
        }
        (tree / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        sums = [
            (str(path.relative_to(tree)), sha256_file(path))
            for path in tree.rglob("*")
            if path.is_file()
        ]
        (tree / SUMS).write_text(format_sums(sums))
        key.sign_detached(tree / SUMS)
        assert (tree / SIGNATURE).is_file()

        progress("[5/5] writing the tarball…")
        tarball = output_dir / f"{name}.tar.gz"
        write_tarball(tree, tarball, epoch)
        parts = {
            "wheelhouse": _size(wheelhouse),
            "collection": _size(tree / "collection"),
            "tools": _size(tree / "tools"),
            "total (compressed)": tarball.stat().st_size,
        }
    return BuildResult(tarball, version, parts)


def _artifact(tree: Path, path: Path, name: str, version: str, origin: str) -> dict[str, object]:
    return {
        "path": str(path.relative_to(tree)),
        "name": name,
        "version": version,
        "sha256": sha256_file(path),
        "size": path.stat().st_size,
        "origin": origin,
    }


def _size(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def elapsed(started: float) -> str:
    return f"{time.monotonic() - started:.0f} s"

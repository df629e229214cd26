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
from securechat_bundle.archive import write_tarball
from securechat_bundle.debian import (
    DEFAULT_CACHE,
    PACKAGES,
    SUITE,
    base_image,
    build_repository,
    download_closure,
    host_mirror,
)
from securechat_bundle.digests import format_sums, sha256_file
from securechat_bundle.images import (
    build_images,
    copy_deployment,
    docker_tag,
    manifest_entries,
    save_images,
)
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

# Repository paths carried in the bundle's collection/ (the Ansible collection, its example
# inventories and the documentation), as far as git would commit them: files .gitignore
# excludes (lab inventories, generated secrets and keys, backups) never go in.
COLLECTION_PATHS = (
    "galaxy.yml",
    "ansible.cfg",
    "CHANGELOG.md",
    "README.md",
    "meta",
    "roles",
    "playbooks",
    "inventory",
    "docs",
)
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
    *,
    debs: bool = True,
    cache: Path = DEFAULT_CACHE,
    docker_images: bool = False,
) -> BuildResult:
    if docker_images and not debs:
        raise ValueError("the Docker images are built from the apt repository: drop --no-debs")
    version = bundle_version(root)
    epoch = commit_time(root)
    name = f"securechat-m2m-{version}"
    with tempfile.TemporaryDirectory(prefix="securechat-bundle-build-") as scratch:
        tree = Path(scratch) / name
        artifacts = _wheelhouse(root, tree, platform, epoch, progress)
        if debs:
            progress("[3/5] Debian packages as a signed apt repository…")
            artifacts += _apt_repository(tree, key, cache, progress)
        else:
            progress("[3/5] Debian packages left out (--no-debs)")
        images: list[dict[str, str]] | None = None
        if docker_images:
            progress("[3/5] Docker images from the bundle's own packages and wheels…")
            entries, images = _docker_images(root, tree, version, cache, progress)
            artifacts += entries
        progress("[4/5] the Ansible collection, the bundle tools, manifest and signature…")
        _copy_sources(root, tree)
        _sign(
            root,
            tree,
            key,
            version=version,
            platform=platform,
            artifacts=artifacts,
            docker_images=images,
        )
        progress("[5/5] writing the tarball…")
        tarball = output_dir / f"{name}.tar.gz"
        write_tarball(tree, tarball, epoch)
        extra = ("docker",) if docker_images else ()
        names = ("wheelhouse", "apt", *extra, "collection", "tools")
        parts = {part: _size(tree / part) for part in names}
        parts["total (compressed)"] = tarball.stat().st_size
    return BuildResult(tarball, version, parts)


def _wheelhouse(
    root: Path, tree: Path, platform: Platform, epoch: int, progress: Progress
) -> list[dict[str, object]]:
    wheelhouse, requirements = tree / "wheelhouse", tree / "requirements"
    wheelhouse.mkdir(parents=True)
    requirements.mkdir()
    for lock in LOCKS:
        progress(f"[1/5] wheels of {lock}.lock for {platform.name}…")
        source = root / "requirements" / f"{lock}.lock"
        shutil.copy2(source, requirements / source.name)
        download(source, wheelhouse, platform)
    progress("[2/5] building the securechat and securechat-verify wheels…")
    local = build_local(root, wheelhouse, epoch)
    for lock, projects in LOCAL_PACKAGES.items():
        (requirements / f"{lock}-local.txt").write_text(local_requirements(local, projects))
    artifacts = []
    for wheel in sorted(wheelhouse.glob("*.whl")):
        origin = "built from this commit" if wheel in local.values() else "PyPI (hash-locked)"
        wheel_name, wheel_version = wheel.name.split("-")[:2]
        artifacts.append(_artifact(tree, wheel, wheel_name, wheel_version, origin))
    return artifacts


def _apt_repository(
    tree: Path, key: SigningKey, cache: Path, progress: Progress
) -> list[dict[str, object]]:
    mirror = host_mirror()
    base = base_image(cache, mirror, progress)
    closure = download_closure(cache, base, mirror, PACKAGES, progress)
    build_repository(closure, tree / "apt", key)
    return [
        _artifact(tree, tree / "apt" / deb.path.name, deb.name, deb.version, f"Debian {SUITE}")
        for deb in closure
    ]


def _docker_images(
    root: Path, tree: Path, version: str, cache: Path, progress: Progress
) -> tuple[list[dict[str, object]], list[dict[str, str]]]:
    base = base_image(cache, host_mirror(), progress)
    tag = docker_tag(version)
    images = build_images(root, tree, base, tag)
    archive = save_images(tree, images)
    copy_deployment(root, tree, tag)
    artifact = _artifact(tree, archive, "securechat-images", tag, "built from this commit")
    return [artifact], manifest_entries(images)


def source_files(root: Path, paths: tuple[str, ...]) -> list[str]:
    """The files under `paths` that git tracks or would add: never what .gitignore excludes."""
    listed = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *paths)
    return sorted({name for name in listed.split("\0") if name and (root / name).is_file()})


def _copy_sources(root: Path, tree: Path) -> None:
    for part, paths in (("collection", COLLECTION_PATHS), ("tools", TOOL_PATHS)):
        for relative in source_files(root, paths):
            target = tree / part / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / relative, target)


def _sign(
    root: Path,
    tree: Path,
    key: SigningKey,
    *,
    version: str,
    platform: Platform,
    artifacts: list[dict[str, object]],
    docker_images: list[dict[str, str]] | None = None,
) -> None:
    (tree / "signing-key.asc").write_bytes(key.export_public())
    (tree / "signing-key.fingerprint").write_text(key.fingerprint + "\n")
    manifest = {
        "bundle": tree.name,
        "version": version,
        "commit": git(root, "rev-parse", "HEAD"),
        "built_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "target": platform.name,
        "signing_key_fingerprint": key.fingerprint,
        "builder": f"securechat-bundle {__version__}",
        "artifacts": sorted(artifacts, key=lambda a: str(a["path"])),
    }
    if docker_images is not None:
        manifest["docker_images"] = docker_images
    (tree / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    sums = [(str(p.relative_to(tree)), sha256_file(p)) for p in tree.rglob("*") if p.is_file()]
    (tree / SUMS).write_text(format_sums(sums))
    key.sign_detached(tree / SUMS)
    if not (tree / SIGNATURE).is_file():
        raise RuntimeError("gpg made no signature")


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

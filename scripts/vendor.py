#!/usr/bin/env python3
"""Vendor the browser client's third-party libraries (`make vendor`).

For each pinned npm package: `npm pack` it into a temporary directory, check the tarball
against the registry's `dist.integrity`, copy the listed files and the LICENSE into
`app/src/securechat/static/vendor/<name>-<version>/` (older versions of that library are
removed), and rewrite the import map in `static/index.html` between the markers
`<!-- importmap:start -->` and `<!-- importmap:end -->`, with an SRI `integrity` entry
(sha384) for every vendored file.

The browser loads nothing from anywhere but the chat server: no CDN. Run this only to change
a pinned version; commit the result (the files, their LICENSE and index.html) together.
Standard library only, so it runs with any Python 3.11 and `npm` on the PATH.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "app" / "src" / "securechat" / "static"
VENDOR = STATIC / "vendor"
INDEX = STATIC / "index.html"
START_MARKER = "<!-- importmap:start -->"
END_MARKER = "<!-- importmap:end -->"
LICENSE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "license", "license.md")


@dataclass(frozen=True)
class Package:
    """One pinned npm package: `entry` is the import-map target, `files` everything copied."""

    name: str
    version: str
    entry: str
    files: tuple[str, ...]

    @property
    def directory(self) -> str:
        return f"{self.name}-{self.version}"


PACKAGES: tuple[Package, ...] = (
    Package(
        "socket.io-client",
        "4.8.3",
        entry="dist/socket.io.esm.min.js",
        files=("dist/socket.io.esm.min.js",),
    ),
    # dist/index.mjs is uqr's ESM build ("exports"."."."import"); it imports nothing.
    Package("uqr", "0.1.3", entry="dist/index.mjs", files=("dist/index.mjs",)),
)

# A bare specifier in a static or dynamic import: anything but "./", "../", "/" or a URL.
BARE_IMPORT = re.compile(
    r"""(?:\bimport\s*(?:[\w*{}\s,$]+\s*from\s*)?|\bexport\s*[\w*{}\s,$]+\s*from\s*|\bimport\s*\()"""
    r"""\s*["'](?![./])([^"']+)["']"""
)


class VendorError(Exception):
    pass


def run(command: list[str], cwd: Path) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argument lists, no shell
        command, cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise VendorError(f"{' '.join(command)} failed:\n{result.stderr.strip()}")
    return result.stdout


def sri(data: bytes, algorithm: str = "sha384") -> str:
    digest = hashlib.new(algorithm, data).digest()
    return f"{algorithm}-{base64.b64encode(digest).decode('ascii')}"


def check_integrity(tarball: Path, expected: str) -> None:
    """`expected` is the registry's SRI string (possibly several space-separated hashes)."""
    data = tarball.read_bytes()
    checked = False
    for token in expected.split():
        algorithm, _, _digest = token.partition("-")
        if algorithm not in ("sha512", "sha384", "sha256"):
            continue
        if not hmac.compare_digest(sri(data, algorithm), token):
            raise VendorError(f"{tarball.name}: integrity mismatch ({algorithm})")
        checked = True
    if not checked:
        raise VendorError(f"{tarball.name}: the registry gave no usable integrity ({expected!r})")


def fetch(package: Package, scratch: Path) -> Path:
    """`npm pack` the pinned version and check it against `npm view … dist.integrity`."""
    spec = f"{package.name}@{package.version}"
    packed = json.loads(run(["npm", "pack", spec, "--json", "--ignore-scripts"], scratch))
    if len(packed) != 1 or packed[0]["version"] != package.version:
        raise VendorError(f"npm pack {spec} returned {packed!r}")
    tarball = scratch / str(packed[0]["filename"])
    expected = run(["npm", "view", spec, "dist.integrity"], scratch).strip()
    check_integrity(tarball, expected)
    return tarball


def read_member(archive: tarfile.TarFile, path: str) -> bytes | None:
    """A regular file of the tarball (npm tarballs put everything under `package/`)."""
    try:
        member = archive.getmember(f"package/{path}")
    except KeyError:
        return None
    if not member.isfile():
        raise VendorError(f"{path} is not a regular file in the tarball")
    handle = archive.extractfile(member)
    if handle is None:
        raise VendorError(f"cannot read {path}")
    return handle.read()


def check_self_contained(name: str, text: str) -> None:
    """The file must be an ES module the browser can load alone: no bare imports."""
    bare = sorted(set(BARE_IMPORT.findall(text)))
    if bare:
        raise VendorError(f"{name} imports {', '.join(bare)}; vendor a self-contained ESM build")
    if not re.search(r"\bexport\s*[{*\w]", text):
        raise VendorError(f"{name} exports nothing; it is not an ES module")


def install(package: Package, tarball: Path) -> dict[str, str]:
    """Copy the files into vendor/<name>-<version>/; returns {url: sri} of the copied files."""
    target = VENDOR / package.directory
    contents: dict[str, bytes] = {}
    with tarfile.open(tarball, "r:gz") as archive:
        for path in package.files:
            data = read_member(archive, path)
            if data is None:
                raise VendorError(f"{package.name}@{package.version} has no {path}")
            name = PurePosixPath(path).name
            check_self_contained(f"{package.name}/{path}", data.decode("utf-8"))
            contents[name] = data
        for candidate in LICENSE_NAMES:
            license_text = read_member(archive, candidate)
            if license_text is not None:
                contents["LICENSE"] = license_text
                break
        else:
            raise VendorError(f"{package.name}@{package.version} ships no LICENSE")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name, data in contents.items():
        (target / name).write_bytes(data)
    older = re.compile(re.escape(package.name) + r"-\d[0-9A-Za-z.+-]*")
    for other in VENDOR.iterdir():
        if other.is_dir() and other.name != target.name and older.fullmatch(other.name):
            shutil.rmtree(other)
    return {
        f"/vendor/{package.directory}/{name}": sri(data)
        for name, data in contents.items()
        if name != "LICENSE"
    }


def import_map(integrity: dict[str, str]) -> dict[str, dict[str, str]]:
    imports = {
        package.name: f"/vendor/{package.directory}/{PurePosixPath(package.entry).name}"
        for package in PACKAGES
    }
    return {"imports": imports, "integrity": dict(sorted(integrity.items()))}


def render_import_map(document: dict[str, dict[str, str]], indent: str) -> str:
    body = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True)
    lines = [f"{indent}  {line}" for line in body.splitlines()]
    return "\n".join([f'{indent}<script type="importmap">', *lines, f"{indent}</script>"])


def rewrite_index(document: dict[str, dict[str, str]], index: Path = INDEX) -> None:
    html = index.read_text(encoding="utf-8")
    pattern = re.compile(
        r"^(?P<indent>[ \t]*)" + re.escape(START_MARKER) + r".*?" + re.escape(END_MARKER),
        re.DOTALL | re.MULTILINE,
    )
    found = list(pattern.finditer(html))
    if len(found) != 1:
        raise VendorError(f"{index}: expected one {START_MARKER} … {END_MARKER} block")
    indent = found[0].group("indent")
    block = "\n".join(
        [f"{indent}{START_MARKER}", render_import_map(document, indent), f"{indent}{END_MARKER}"]
    )
    start, end = found[0].span()
    index.write_text(html[:start] + block + html[end:], encoding="utf-8", newline="\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    if shutil.which("npm") is None:
        print("vendor: npm is not on the PATH", file=sys.stderr)
        return 2
    integrity: dict[str, str] = {}
    try:
        VENDOR.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="securechat-vendor-") as scratch:
            for package in PACKAGES:
                tarball = fetch(package, Path(scratch))
                integrity.update(install(package, tarball))
                print(f"vendored {package.name}@{package.version} -> vendor/{package.directory}/")
        rewrite_index(import_map(integrity))
    except VendorError as error:
        print(f"vendor: {error}", file=sys.stderr)
        return 1
    print(f"import map written to {INDEX.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The browser client's vendored libraries: pinned, integrity-checked, licensed, no CDN.

`make vendor` (scripts/vendor.py) writes static/vendor/ and the import map in index.html;
these tests check what is committed, without the network.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "app" / "src" / "securechat" / "static"
VENDOR = STATIC / "vendor"
INDEX = STATIC / "index.html"
IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.DOTALL)
SCANNED = (".js", ".mjs", ".html", ".css")

# URLs that appear as plain strings and are never fetched from a third party: XML namespace
# names (SVG built with createElementNS, uqr's SVG output) and a link inside an error message
# of socket.io-client.
HARMLESS_URLS = frozenset(
    {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
        "http://www.w3.org/1999/xhtml",
        "https://socket.io/docs/v3/migrating-from-2-x-to-3-0/",
    }
)
URL = re.compile(r"""https?://[^\s"'`<>()\\]+""", re.IGNORECASE)
# Addresses shown to the user that point at this server: its own host, computed at run time
# from `location` (`https://${here.host}…`), or the loopback address.
OWN_HOST = re.compile(
    r"https?://(?:\$\{|(?:localhost|127\.0\.0\.1|\[::1\])(?![\w.-]))", re.IGNORECASE
)


def is_allowed(url: str) -> bool:
    return url in HARMLESS_URLS or OWN_HOST.match(url) is not None


# Protocol-relative references (`//cdn.example/x.js`) in markup and style sheets.
RELATIVE_URL = re.compile(r"""(?:\b(?:src|href)\s*=\s*["']?|url\(\s*["']?|@import\s+["'])//""")


def import_map() -> dict[str, dict[str, str]]:
    found = IMPORT_MAP.findall(INDEX.read_text(encoding="utf-8"))
    assert len(found) == 1
    document: dict[str, dict[str, str]] = json.loads(found[0])
    return document


def load_vendor_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vendor_script", ROOT / "scripts" / "vendor.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def sha384(path: Path) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def vendored_files() -> list[Path]:
    return sorted(p for p in VENDOR.rglob("*") if p.is_file())


# -- the import map and the files -----------------------------------------------------------


def test_import_map_shape() -> None:
    document = import_map()
    assert set(document) == {"imports", "integrity"}
    assert document["imports"] == {
        "socket.io-client": "/vendor/socket.io-client-4.8.3/socket.io.esm.min.js",
        "uqr": "/vendor/uqr-0.1.3/index.mjs",
    }
    # Every imported file is pinned by its hash.
    assert set(document["imports"].values()) <= set(document["integrity"])


def test_every_integrity_matches_the_committed_file() -> None:
    integrity = import_map()["integrity"]
    assert integrity
    for url, expected in integrity.items():
        assert url.startswith("/vendor/"), url
        path = STATIC / url.removeprefix("/")
        assert path.resolve().is_relative_to(VENDOR.resolve()), url
        assert path.is_file(), f"{url} is in the import map but not vendored"
        assert expected == sha384(path), f"{url}: integrity does not match the file"


def test_every_vendored_file_is_pinned_or_a_license() -> None:
    pinned = {STATIC / url.removeprefix("/") for url in import_map()["integrity"]}
    for path in vendored_files():
        assert path.name == "LICENSE" or path in pinned, f"{path} is vendored but not pinned"


def test_every_vendored_directory_has_a_license() -> None:
    directories = [p for p in VENDOR.iterdir() if p.is_dir()]
    # Exactly the pinned versions: `make vendor` removes the directories of older ones.
    assert {p.name for p in directories} == {p.directory for p in load_vendor_script().PACKAGES}
    for directory in directories:
        license_file = directory / "LICENSE"
        assert license_file.is_file(), f"{directory.name} has no LICENSE"
        assert "Permission is hereby granted" in license_file.read_text(encoding="utf-8")


def test_vendored_modules_are_self_contained() -> None:
    vendor = load_vendor_script()
    for url in import_map()["imports"].values():
        text = (STATIC / url.removeprefix("/")).read_text(encoding="utf-8")
        vendor.check_self_contained(url, text)  # no bare imports, exports something


def test_bare_imports_are_refused() -> None:
    vendor = load_vendor_script()
    with pytest.raises(vendor.VendorError, match=r"engine\.io-client"):
        vendor.check_self_contained("x", 'import{a as b}from"engine.io-client";export{b};')
    vendor.check_self_contained("x", 'import{a}from"./local.js";export{a};')


# -- scripts/vendor.py agrees with what is committed ----------------------------------------


def test_pinned_packages_match_the_import_map() -> None:
    vendor = load_vendor_script()
    expected = {
        package.name: f"/vendor/{package.directory}/{Path(package.entry).name}"
        for package in vendor.PACKAGES
    }
    assert import_map()["imports"] == expected


def test_index_is_what_the_vendor_script_writes(tmp_path: Path) -> None:
    """Rewriting the import map from the committed files changes nothing: deterministic."""
    vendor = load_vendor_script()
    copy = tmp_path / "index.html"
    shutil.copy(INDEX, copy)
    integrity = {url: sha384(STATIC / url.removeprefix("/")) for url in import_map()["integrity"]}
    vendor.rewrite_index(vendor.import_map(integrity), copy)
    assert copy.read_text(encoding="utf-8") == INDEX.read_text(encoding="utf-8")


def test_integrity_check_of_tarballs(tmp_path: Path) -> None:
    vendor = load_vendor_script()
    tarball = tmp_path / "x.tgz"
    tarball.write_bytes(b"package")
    good = vendor.sri(b"package", "sha512")
    vendor.check_integrity(tarball, good)
    vendor.check_integrity(tarball, f"sha1-abc= {good}")
    with pytest.raises(vendor.VendorError, match="mismatch"):
        vendor.check_integrity(tarball, vendor.sri(b"other", "sha512"))
    with pytest.raises(vendor.VendorError, match="no usable integrity"):
        vendor.check_integrity(tarball, "sha1-abc=")


# -- no CDN: nothing under static/ points anywhere but the server ---------------------------


def strip_js_comments(text: str) -> str:
    """JavaScript (and CSS) without its comments; strings, templates and regexes kept."""
    out: list[str] = []
    i, n = 0, len(text)
    regex_allowed = True
    while i < n:
        char = text[i]
        if char in "\"'`":
            j = i + 1
            while j < n and text[j] != char:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i, regex_allowed = j + 1, False
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
        elif char == "/" and regex_allowed:
            j, in_class = i + 1, False
            while j < n and text[j] != "\n":
                if text[j] == "\\":
                    j += 2
                    continue
                if text[j] == "[":
                    in_class = True
                elif text[j] == "]":
                    in_class = False
                elif text[j] == "/" and not in_class:
                    break
                j += 1
            out.append(text[i : j + 1])
            i, regex_allowed = j + 1, False
        else:
            out.append(char)
            if not char.isspace():
                regex_allowed = char in "(,=:[!&|?{};+-*%<>~^}"
            i += 1
    return "".join(out)


def without_comments(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".html":
        return re.sub(r"<!--.*?-->", " ", text, flags=re.DOTALL)
    if path.suffix == ".css":
        return re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    return strip_js_comments(text)


def test_comment_stripping() -> None:
    source = (
        "const a = 'http://x.example/1'; // http://comment.example\n"
        "/* https://block.example */ const b = /^(https?):\\/\\//.test(c) ? 1 : 2;\n"
        "const d = `https://template.example`; const e = f / 2 / g;"
    )
    found = URL.findall(strip_js_comments(source))
    assert found == ["http://x.example/1", "https://template.example"]


def test_allowed_urls() -> None:
    assert is_allowed("https://${here.host}${here.pathname}")
    assert is_allowed("http://localhost")
    assert is_allowed("http://localhost:8000/")
    assert is_allowed("http://www.w3.org/2000/svg")
    for url in ("https://cdn.example/x.js", "http://localhost.evil.example/", "https://unpkg.com/"):
        assert not is_allowed(url), url


def test_no_remote_urls_under_static() -> None:
    scanned = [p for p in STATIC.rglob("*") if p.is_file() and p.suffix in SCANNED]
    assert INDEX in scanned
    offending = []
    for path in scanned:
        code = without_comments(path)
        offending += [f"{path}: {url}" for url in URL.findall(code) if not is_allowed(url)]
        if path.suffix in (".html", ".css"):
            offending += [f"{path}: {m.group(0)}" for m in RELATIVE_URL.finditer(code)]
    assert offending == []

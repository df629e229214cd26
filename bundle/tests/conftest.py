"""Fixtures: a throwaway signing key and a small signed bundle tree (no network needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from securechat_bundle.archive import write_tarball
from securechat_bundle.digests import format_sums, sha256_file
from securechat_bundle.signing import SigningKey, signing_key

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed")
    return signing_key(tmp_path_factory.mktemp("gnupg"))


@pytest.fixture(scope="session")
def public_key(key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pub") / "signing-key.asc"
    path.write_bytes(key.export_public())
    return path


def make_tree(root: Path, key: SigningKey) -> Path:
    tree = root / "securechat-m2m-test"
    (tree / "wheelhouse").mkdir(parents=True)
    (tree / "wheelhouse" / "demo-1.0-py3-none-any.whl").write_bytes(
        b"PK\x03\x04 not really a wheel"
    )
    (tree / "requirements").mkdir()
    (tree / "requirements" / "server.lock").write_text("demo==1.0 --hash=sha256:00\n")
    (tree / "manifest.json").write_text('{"bundle": "securechat-m2m-test"}\n')
    (tree / "signing-key.asc").write_bytes(key.export_public())
    sums = [(str(p.relative_to(tree)), sha256_file(p)) for p in tree.rglob("*") if p.is_file()]
    (tree / "SHA256SUMS").write_text(format_sums(sums))
    key.sign_detached(tree / "SHA256SUMS")
    return tree


@pytest.fixture
def bundle(tmp_path: Path, key: SigningKey) -> Path:
    tree = make_tree(tmp_path / "tree", key)
    output = tmp_path / "securechat-m2m-test.tar.gz"
    write_tarball(tree, output, mtime=1_700_000_000)
    return output


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, key: SigningKey) -> Path:
    """A real bundle, built once per run (needs the package index and a Debian mirror)."""
    from securechat_bundle.build import build
    from securechat_bundle.wheelhouse import TARGETS

    result = build(
        REPO,
        tmp_path_factory.mktemp("dist"),
        TARGETS["manylinux_x86_64-cp311"],
        key,
        lambda _: None,
    )
    return result.tarball


@pytest.fixture(scope="session")
def tree(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from securechat_bundle.archive import safe_extract

    return safe_extract(built, tmp_path_factory.mktemp("tree"))

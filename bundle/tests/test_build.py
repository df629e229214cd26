"""The real build from the package index, then offline installs from the bundle alone.

Marked `network`: it downloads the locked wheels (about 130 MB; pip's cache makes a second
build fast). The install runs in a network namespace that has no network at all.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from securechat_bundle.archive import safe_extract
from securechat_bundle.build import build
from securechat_bundle.signing import SigningKey
from securechat_bundle.verify import verify_bundle
from securechat_bundle.wheelhouse import TARGETS
from tests.conftest import REPO

pytestmark = pytest.mark.network
PRIVATE_MARKERS = (b"PRIVATE KEY-----", b"BEGIN PGP PRIVATE KEY BLOCK", b"SECURECHAT_SECRET_KEY=")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, key: SigningKey) -> Path:
    result = build(
        REPO,
        tmp_path_factory.mktemp("dist"),
        TARGETS["manylinux_x86_64-cp311"],
        key,
        lambda _: None,
    )
    return result.tarball


@pytest.fixture(scope="module")
def tree(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return safe_extract(built, tmp_path_factory.mktemp("tree"))


def test_the_bundle_verifies_and_lists_every_artifact(
    built: Path, tree: Path, public_key: Path, key: SigningKey
) -> None:
    report = verify_bundle(built, public_key, key.fingerprint)
    assert report.ok, report.lines()
    manifest = json.loads((tree / "manifest.json").read_text())
    assert manifest["target"] == "manylinux_x86_64-cp311"
    wheels = {a["path"] for a in manifest["artifacts"]}
    assert wheels == {str(p.relative_to(tree)) for p in (tree / "wheelhouse").glob("*.whl")}
    assert all(a["sha256"] and a["size"] > 0 and a["origin"] for a in manifest["artifacts"])
    assert not list((tree / "wheelhouse").glob("*.tar.gz")), "no sdist"
    names = {a["name"].lower().replace("_", "-") for a in manifest["artifacts"]}
    assert {"securechat", "securechat-verify", "ansible", "uvicorn", "playwright"} <= names


def test_no_secret_and_no_private_key_in_the_bundle(tree: Path) -> None:
    for path in tree.rglob("*"):
        if path.is_file() and path.suffix != ".whl":
            content = path.read_bytes()
            assert not any(marker in content for marker in PRIVATE_MARKERS), path


@pytest.mark.netns
def test_offline_install_in_a_namespace_without_network(tree: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for a network namespace")
    namespace = f"scb-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        routes = subprocess.run(
            ["ip", "-n", namespace, "route"], capture_output=True, text=True, check=True
        )
        assert routes.stdout.strip() == ""  # no route anywhere: nothing can be downloaded
        venv = tmp_path / "venv"
        env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_CACHE_DIR": "1"}

        def inside(*command: str) -> str:
            result = subprocess.run(
                ["ip", "netns", "exec", namespace, *command],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            assert result.returncode == 0, result.stderr[-2000:]
            return result.stdout

        inside(sys.executable, "-m", "venv", str(venv))
        inside(
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--no-index",
            "--find-links",
            str(tree / "wheelhouse"),
            "--require-hashes",
            "--only-binary",
            ":all:",
            "-r",
            str(tree / "requirements" / "verify.lock"),
            "-r",
            str(tree / "requirements" / "verify-local.txt"),
        )
        assert "securechat" in inside(str(venv / "bin" / "securechat"), "--version")
        assert "securechat-verify" in inside(str(venv / "bin" / "securechat-verify"), "--version")
    finally:
        subprocess.run(["ip", "netns", "delete", namespace], check=False)

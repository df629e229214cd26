"""The real build from the package index, then offline installs from the bundle alone.

Marked `network`: it downloads the locked wheels (about 130 MB; pip's cache makes a second
build fast). The install runs in a network namespace that has no network at all.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from securechat_bundle.signing import SigningKey
from securechat_bundle.verify import verify_bundle

pytestmark = pytest.mark.network
PRIVATE_MARKERS = (b"PRIVATE KEY-----", b"BEGIN PGP PRIVATE KEY BLOCK")
# A secret key's value: the documentation and templates only name the variable.
SECRET_VALUE = re.compile(rb"SECURECHAT_(SECRET|AUDIT)_KEY=[\"']?[A-Za-z0-9_\-]{32,}")


def test_the_bundle_verifies_and_lists_every_artifact(
    built: Path, tree: Path, public_key: Path, key: SigningKey
) -> None:
    report = verify_bundle(built, public_key, key.fingerprint)
    assert report.ok, report.lines()
    manifest = json.loads((tree / "manifest.json").read_text())
    assert manifest["target"] == "manylinux_x86_64-cp311"
    listed = {a["path"] for a in manifest["artifacts"]}
    on_disk = {str(p.relative_to(tree)) for p in (tree / "wheelhouse").glob("*.whl")}
    on_disk |= {str(p.relative_to(tree)) for p in (tree / "apt").glob("*.deb")}
    assert listed == on_disk
    assert any(path.startswith("apt/mariadb-server") for path in listed)
    assert all(a["sha256"] and a["size"] > 0 and a["origin"] for a in manifest["artifacts"])
    assert not list((tree / "wheelhouse").glob("*.tar.gz")), "no sdist"
    names = {a["name"].lower().replace("_", "-") for a in manifest["artifacts"]}
    assert {"securechat", "securechat-verify", "ansible", "uvicorn", "playwright"} <= names


def test_no_secret_and_no_private_key_in_the_bundle(tree: Path) -> None:
    for path in tree.rglob("*"):
        if path.is_file() and path.suffix != ".whl":
            content = path.read_bytes()
            assert not any(marker in content for marker in PRIVATE_MARKERS), path
            assert SECRET_VALUE.search(content) is None, path


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


def _chroot(root: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` in `root` with /proc, in a network namespace of its own: no network."""
    return subprocess.run(
        [
            "unshare",
            "--net",
            "--mount",
            "--fork",
            "sh",
            "-c",
            f"mount -t proc proc {root}/proc && chroot {root} sh -c '{script}'",
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.netns
def test_apt_installs_from_the_bundle_alone_with_signatures_checked(
    tree: Path, tmp_path: Path
) -> None:
    from securechat_bundle.debian import DEFAULT_CACHE, KEYRING_NAME, SUITE

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare")
    repository = tree / "apt"
    for name in ("Packages", "Release", "InRelease", "Release.gpg", KEYRING_NAME):
        assert (repository / name).is_file(), name
    root = tmp_path / "host"
    subprocess.run(["cp", "-a", str(DEFAULT_CACHE / f"base-{SUITE}"), str(root)], check=True)
    shutil.copytree(repository, root / "srv" / "bundle" / "apt")
    keyrings = root / "usr" / "share" / "keyrings"
    shutil.copy2(repository / KEYRING_NAME, keyrings / KEYRING_NAME)
    (root / "etc" / "apt" / "sources.list").write_text(
        f"deb [signed-by=/usr/share/keyrings/{KEYRING_NAME}] file:/srv/bundle/apt ./\n"
    )
    for extra in (root / "etc" / "apt" / "sources.list.d").glob("*"):
        extra.unlink()
    policy = root / "usr" / "sbin" / "policy-rc.d"  # a chroot starts no services
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)

    # Signed by a key the host does not trust: apt refuses the repository.
    shutil.copy2(keyrings / "debian-archive-keyring.gpg", keyrings / "stranger.gpg")
    (root / "etc" / "apt" / "sources.list").write_text(
        "deb [signed-by=/usr/share/keyrings/stranger.gpg] file:/srv/bundle/apt ./\n"
    )
    refused = _chroot(root, "apt-get -q update")
    assert "NO_PUBKEY" in refused.stdout + refused.stderr or refused.returncode != 0
    (root / "etc" / "apt" / "sources.list").write_text(
        f"deb [signed-by=/usr/share/keyrings/{KEYRING_NAME}] file:/srv/bundle/apt ./\n"
    )
    installed = _chroot(
        root,
        "apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
        "--no-install-recommends mariadb-server nginx-light nftables",
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    for binary in ("usr/sbin/mariadbd", "usr/sbin/nginx", "usr/sbin/nft"):
        assert (root / binary).exists(), binary

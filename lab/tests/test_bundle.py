from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from securechat_lab.bundle import choose_bundle, newest_bundle, read_fingerprint
from securechat_lab.commands import LabError

FINGERPRINT = "6685AA687125B25801AB44359B8937F2F2C21F2E"


def make_bundle(path: Path, fingerprint: str | None = FINGERPRINT) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        members = {"securechat-m2m-1.0/manifest.json": b"{}\n"}
        if fingerprint is not None:
            members["securechat-m2m-1.0/signing-key.fingerprint"] = f"{fingerprint}\n".encode()
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_fingerprint_from_the_tarball(tmp_path: Path) -> None:
    assert read_fingerprint(make_bundle(tmp_path / "b.tar.gz")) == FINGERPRINT


def test_a_bundle_without_fingerprint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="--fingerprint"):
        read_fingerprint(make_bundle(tmp_path / "b.tar.gz", None))


def test_newest_bundle_in_dist(tmp_path: Path) -> None:
    assert newest_bundle(tmp_path) is None
    old = make_bundle(tmp_path / "securechat-m2m-1.0.tar.gz")
    new = make_bundle(tmp_path / "securechat-m2m-1.1.tar.gz")
    os.utime(old, (1, 1))
    assert newest_bundle(tmp_path) == new.resolve()
    choice = choose_bundle(None, None, tmp_path)
    assert choice is not None
    assert choice.path == new.resolve()
    assert choice.fingerprint == FINGERPRINT


def test_given_bundle_and_fingerprint(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "x.tar.gz", None)
    spaced = "6685 AA68 7125 B258 01AB 4435 9B89 37F2 F2C2 1F2E".lower()
    choice = choose_bundle(bundle, spaced, tmp_path / "dist")
    assert choice is not None
    assert choice.fingerprint == FINGERPRINT
    assert choose_bundle(None, None, tmp_path / "dist") is None
    with pytest.raises(LabError, match="needs --bundle"):
        choose_bundle(None, FINGERPRINT, tmp_path)
    with pytest.raises(LabError, match="40 hex"):
        choose_bundle(bundle, "abc", tmp_path)
    with pytest.raises(LabError, match="does not exist"):
        choose_bundle(tmp_path / "missing.tar.gz", FINGERPRINT, tmp_path)

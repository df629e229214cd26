"""Verification names every missing, extra or altered file and refuses foreign signatures."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from securechat_bundle.archive import safe_extract, write_tarball
from securechat_bundle.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from securechat_bundle.digests import SumsError, parse_sums
from securechat_bundle.signing import signing_key
from securechat_bundle.verify import verify_bundle, verify_tree
from tests.conftest import make_tree


def rewrite(bundle: Path, change) -> Path:  # type: ignore[no-untyped-def]
    """Extract, apply `change(tree)`, repack (without re-signing)."""
    scratch = bundle.parent / "tamper"
    tree = safe_extract(bundle, scratch)
    change(tree)
    output = bundle.parent / "tampered.tar.gz"
    write_tarball(tree, output, mtime=1_700_000_000)
    return output


def test_a_good_bundle_verifies(bundle: Path, public_key: Path) -> None:
    report = verify_bundle(bundle, public_key)
    assert report.ok, report.lines()
    assert report.checked == 4
    assert main(["verify", str(bundle), "--key", str(public_key)]) == EXIT_OK


def test_every_flipped_byte_is_named(bundle: Path, public_key: Path, tmp_path: Path) -> None:
    tree = safe_extract(bundle, tmp_path / "x")
    for member in (
        "wheelhouse/demo-1.0-py3-none-any.whl",
        "requirements/server.lock",
        "manifest.json",
    ):
        original = (tree / member).read_bytes()
        for index in range(len(original)):
            mutated = bytearray(original)
            mutated[index] ^= 0x01
            (tree / member).write_bytes(bytes(mutated))
            report = verify_tree(tree, public_key)
            assert report.altered == [member], (member, index)
        (tree / member).write_bytes(original)
    assert verify_tree(tree, public_key).ok


def test_removed_and_added_files_are_named(bundle: Path, public_key: Path) -> None:
    removed = rewrite(bundle, lambda tree: (tree / "requirements" / "server.lock").unlink())
    report = verify_bundle(removed, public_key)
    assert report.missing == ["requirements/server.lock"]
    added = rewrite(
        bundle, lambda tree: (tree / "wheelhouse" / "evil-6.6-py3-none-any.whl").write_bytes(b"x")
    )
    report = verify_bundle(added, public_key)
    assert report.extra == ["wheelhouse/evil-6.6-py3-none-any.whl"]
    assert main(["verify", str(added), "--key", str(public_key)]) == EXIT_FAILED


def test_tampered_sums_or_signature_fail(bundle: Path, public_key: Path) -> None:
    def edit_sums(tree: Path) -> None:
        sums = tree / "SHA256SUMS"
        sums.write_text(sums.read_text().replace("a", "b", 1))

    report = verify_bundle(rewrite(bundle, edit_sums), public_key)
    assert not report.ok
    assert "signature" in report.errors[0]
    unsigned = rewrite(bundle, lambda tree: (tree / "SHA256SUMS.asc").unlink())
    assert "not a signed bundle" in verify_bundle(unsigned, public_key).errors[0]


def test_another_key_is_refused(bundle: Path, tmp_path: Path) -> None:
    stranger = signing_key(tmp_path / "stranger")
    foreign = tmp_path / "foreign.asc"
    foreign.write_bytes(stranger.export_public())
    report = verify_bundle(bundle, foreign)
    assert not report.ok
    assert "does not verify" in report.errors[0]


def test_a_pinned_fingerprint_must_match(bundle: Path, public_key: Path, key) -> None:  # type: ignore[no-untyped-def]
    assert verify_bundle(bundle, public_key, key.fingerprint.lower()).ok
    report = verify_bundle(bundle, public_key, "0" * 40)
    assert "pins" in report.errors[0]


def test_the_bundles_own_key_is_trusted_only_with_its_pinned_fingerprint(
    bundle: Path,
    key,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    report = verify_bundle(bundle, None, key.fingerprint)
    assert report.ok, report.lines()
    assert main(["verify", str(bundle), "--fingerprint", key.fingerprint]) == EXIT_OK
    assert "pinned fingerprint" in verify_bundle(bundle, None, None).errors[0]
    assert "pins" in verify_bundle(bundle, None, "A" * 40).errors[0]
    assert main(["verify", str(bundle)]) == EXIT_USAGE
    keyless = rewrite(bundle, lambda tree: (tree / "signing-key.asc").unlink())
    assert "missing from the bundle" in verify_bundle(keyless, None, key.fingerprint).errors[0]


def _tar_with(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> bytes:
    raw = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=raw, mode="wb") as zipped,
        tarfile.open(fileobj=zipped, mode="w") as tar,
    ):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = link
        tar.addfile(info, io.BytesIO(b""))
    return raw.getvalue()


@pytest.mark.parametrize(
    ("name", "kind", "link"),
    [
        ("../escape", tarfile.REGTYPE, ""),
        ("/etc/passwd", tarfile.REGTYPE, ""),
        ("top/link", tarfile.SYMTYPE, "/etc/shadow"),
        ("top/hard", tarfile.LNKTYPE, "top/x"),
        ("top/dev", tarfile.CHRTYPE, ""),
    ],
)
def test_hostile_archives_are_refused(
    tmp_path: Path, public_key: Path, name: str, kind: bytes, link: str
) -> None:
    hostile = tmp_path / "hostile.tar.gz"
    hostile.write_bytes(_tar_with(name, kind, link))
    report = verify_bundle(hostile, public_key)
    assert not report.ok
    assert "cannot read" in report.errors[0]
    assert not (tmp_path.parent / "escape").exists()


def test_garbage_and_usage_errors(tmp_path: Path, public_key: Path) -> None:
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not a tarball")
    assert not verify_bundle(garbage, public_key).ok
    assert main(["verify", str(tmp_path / "absent.tar.gz"), "--key", str(public_key)]) == EXIT_USAGE


@pytest.mark.parametrize(
    "text",
    [
        "zz  file\n",
        "a" * 64 + " file\n",
        "a" * 64 + "  ../up\n",
        "a" * 64 + "  /abs\n",
        ("a" * 64 + "  x\n") * 2,
    ],
)
def test_hostile_sums(text: str) -> None:
    with pytest.raises(SumsError):
        parse_sums(text)


def test_tarballs_are_deterministic(tmp_path: Path, key) -> None:  # type: ignore[no-untyped-def]
    tree = make_tree(tmp_path / "tree", key)
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    write_tarball(tree, first, mtime=1_700_000_000)
    for path in tree.rglob("*"):
        path.touch()  # other mtimes on disk change nothing
    write_tarball(tree, second, mtime=1_700_000_000)
    assert first.read_bytes() == second.read_bytes()

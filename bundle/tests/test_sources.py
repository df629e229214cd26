"""The collection/ part of a bundle holds what git would commit, never what .gitignore excludes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from securechat_bundle.build import source_files


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_ignored_secrets_keys_and_lab_inventories_stay_out(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text(
        "inventory/lab-*/\ninventory/*/secrets/\ninventory/*/pki/\n"
    )
    files = {
        "roles/app/tasks/main.yml": True,  # tracked
        "inventory/example-single/hosts.yml": True,
        "roles/app/tasks/new.yml": True,  # untracked, not ignored: work in progress goes in
        "inventory/lab-lead/hosts.yml": False,
        "inventory/site-a/secrets/db_password": False,
        "inventory/site-a/pki/private/ca.key": False,
        "inventory/example-single/pki/hosts/chat1.key": False,
        "elsewhere/file.txt": False,  # not under the requested paths
    }
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")
    _git(tmp_path, "add", "roles/app/tasks/main.yml", "inventory/example-single/hosts.yml")
    listed = source_files(tmp_path, ("roles", "inventory", "galaxy.yml"))
    assert listed == sorted(name for name, wanted in files.items() if wanted)


def test_a_tracked_file_deleted_from_the_tree_is_left_out(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "runtime.yml").write_text("---\n")
    _git(tmp_path, "add", "meta")
    (tmp_path / "meta" / "runtime.yml").unlink()
    assert source_files(tmp_path, ("meta",)) == []
